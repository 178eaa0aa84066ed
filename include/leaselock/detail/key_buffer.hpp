// leaselock/detail/key_buffer.hpp — a key kept inline when short, on the heap when long.
//
// A Lease keeps a copy of its key. Most keys are short (an id, a relative path), so the
// copy lives inside the Lease and taking a lease allocates nothing; a long key (a deep
// absolute path) goes to the heap.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>

namespace leaselock::detail {

class KeyBuffer {
 public:
  static constexpr std::size_t kInline = 56;

  KeyBuffer() noexcept = default;
  explicit KeyBuffer(std::string_view key) { assign(key); }
  KeyBuffer(const KeyBuffer&) = delete;
  KeyBuffer& operator=(const KeyBuffer&) = delete;
  KeyBuffer(KeyBuffer&& other) noexcept { take(other); }
  KeyBuffer& operator=(KeyBuffer&& other) noexcept {
    if (this != &other) take(other);
    return *this;
  }
  ~KeyBuffer() = default;

  std::string_view view() const noexcept { return {heap_ ? heap_.get() : inline_, size_}; }

  void assign(std::string_view key) {
    if (key.size() <= kInline) {
      heap_.reset();
      copy_short(inline_, key.data(), key.size());
    } else {
      auto heap = std::make_unique<char[]>(key.size());
      std::memcpy(heap.get(), key.data(), key.size());
      heap_ = std::move(heap);
    }
    size_ = key.size();
  }

  void clear() noexcept {
    heap_.reset();
    size_ = 0;
  }

 private:
  void take(KeyBuffer& other) noexcept {
    heap_ = std::move(other.heap_);
    size_ = std::exchange(other.size_, 0);
    if (!heap_) copy_short(inline_, other.inline_, size_);
  }

  // Copies up to kInline bytes with fixed-size moves (the sizes the compiler sees are
  // constants, so no call to memcpy): whole words, then the last 8 bytes overlapping.
  static void copy_short(char* to, const char* from, std::size_t size) noexcept {
    if (size >= 8) {
      for (std::size_t i = 0; i + 8 <= size; i += 8) std::memcpy(to + i, from + i, 8);
      std::memcpy(to + size - 8, from + size - 8, 8);
    } else {
      for (std::size_t i = 0; i < size; ++i) to[i] = from[i];
    }
  }

  std::unique_ptr<char[]> heap_;
  std::size_t size_ = 0;
  char inline_[kInline];
};

}  // namespace leaselock::detail
