// leaselock/detail/small_vector.hpp — a vector that keeps its first N elements inline.
//
// Most keys have one holder, so a record keeps its first holder inside itself: holding
// a key costs one allocation (the record), not two, and the record frees as one block.
// Only what the lock semantics use is here; elements must be nothrow-movable.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace leaselock::detail {

template <class T, std::size_t N>
class SmallVector {
  static_assert(N >= 1, "SmallVector keeps at least one element inline");
  static_assert(std::is_nothrow_move_constructible_v<T>, "elements must be nothrow-movable");

 public:
  using value_type = T;
  using iterator = T*;
  using const_iterator = const T*;

  SmallVector() noexcept = default;
  SmallVector(const SmallVector& other) : SmallVector() {
    reserve(other.size_);
    for (const T& value : other) push_back(value);
  }
  SmallVector(SmallVector&& other) noexcept : SmallVector() { take(other); }
  SmallVector& operator=(const SmallVector& other) {
    if (this != &other) {
      SmallVector copy(other);
      clear();
      release_heap();
      take(copy);
    }
    return *this;
  }
  SmallVector& operator=(SmallVector&& other) noexcept {
    if (this != &other) {
      clear();
      release_heap();
      take(other);
    }
    return *this;
  }
  ~SmallVector() {
    clear();
    release_heap();
  }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::size_t capacity() const noexcept { return capacity_; }

  T* begin() noexcept { return data(); }
  T* end() noexcept { return data() + size_; }
  const T* begin() const noexcept { return data(); }
  const T* end() const noexcept { return data() + size_; }
  T& operator[](std::size_t i) noexcept { return data()[i]; }
  const T& operator[](std::size_t i) const noexcept { return data()[i]; }
  T& back() noexcept { return data()[size_ - 1]; }
  const T& back() const noexcept { return data()[size_ - 1]; }

  void reserve(std::size_t wanted) {
    if (wanted <= capacity_) return;
    T* fresh = static_cast<T*>(::operator new (wanted * sizeof(T), std::align_val_t{alignof(T)}));
    T* old = data();
    for (std::size_t i = 0; i < size_; ++i) {
      ::new (static_cast<void*>(fresh + i)) T(std::move(old[i]));
      old[i].~T();
    }
    release_heap();
    heap_ = fresh;
    capacity_ = wanted;
  }

  template <class... Args>
  T& emplace_back(Args&&... args) {
    if (size_ == capacity_) {
      // Build the element first: if that throws, nothing moved.
      T value(std::forward<Args>(args)...);
      reserve(capacity_ * 2);
      return *::new (static_cast<void*>(data() + size_++)) T(std::move(value));
    }
    T* slot = data() + size_;
    ::new (static_cast<void*>(slot)) T(std::forward<Args>(args)...);
    ++size_;
    return *slot;
  }
  void push_back(const T& value) { emplace_back(value); }
  void push_back(T&& value) { emplace_back(std::move(value)); }

  void pop_back() noexcept { data()[--size_].~T(); }

  /// Removes [first, last), keeping the order of what follows.
  T* erase(T* first, T* last) noexcept {
    T* const stop = end();
    T* to = first;
    for (T* from = last; from != stop; ++from, ++to) *to = std::move(*from);
    while (size_ > static_cast<std::size_t>(to - data())) pop_back();
    return first;
  }
  T* erase(T* position) noexcept { return erase(position, position + 1); }

  /// Destroys the elements; keeps the storage.
  void clear() noexcept {
    while (size_) pop_back();
  }

 private:
  T* data() noexcept { return heap_ ? heap_ : reinterpret_cast<T*>(inline_); }
  const T* data() const noexcept { return heap_ ? heap_ : reinterpret_cast<const T*>(inline_); }

  void release_heap() noexcept {
    if (!heap_) return;
    ::operator delete (heap_, std::align_val_t{alignof(T)});
    heap_ = nullptr;
    capacity_ = N;
  }

  // Takes other's elements; this must be empty with inline storage.
  void take(SmallVector& other) noexcept {
    if (other.heap_) {
      heap_ = std::exchange(other.heap_, nullptr);
      capacity_ = std::exchange(other.capacity_, N);
      size_ = std::exchange(other.size_, 0);
      return;
    }
    for (std::size_t i = 0; i < other.size_; ++i) {
      ::new (static_cast<void*>(data() + i)) T(std::move(other.data()[i]));
    }
    size_ = other.size_;
    other.clear();
  }

  T* heap_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = N;
  alignas(T) unsigned char inline_[N * sizeof(T)];
};

}  // namespace leaselock::detail
