// leaselock/named_mutex.hpp — a key seen as a std mutex (SharedTimedLockable).
//
// NamedMutex lets std::unique_lock, std::shared_lock, std::scoped_lock and std::lock work
// with a leaselock key: every lock() / lock_shared() takes a lease on the key for the
// mutex's TTL, and unlock() / unlock_shared() releases it. Get one from
// LockManager::mutex(key, ttl). One NamedMutex may be shared by threads like a
// std::shared_mutex: each thread's shared lock is its own lease.
//
// @code
//   auto m = locks.mutex("inventory.db", std::chrono::seconds(30));
//   {
//     std::unique_lock<decltype(m)> write(m);                 // exclusive lease
//   }
//   if (std::shared_lock<decltype(m)> read(m, std::chrono::milliseconds(100)); read) { }
// @endcode
//
// A lease can run out while "locked" (a TTL is a promise, not a mutex): then unlock()
// has nothing to release and does nothing; lost_lock() tells whether that happened.
// unlock() of a mutex this thread does not hold does nothing either.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <leaselock/limits.hpp>
#include <leaselock/mode.hpp>

namespace leaselock {

template <class Manager>
class NamedMutex {
 public:
  using clock_type = typename Manager::clock_type;
  using duration = typename Manager::duration;
  using time_point = typename Manager::time_point;
  using Lease = typename Manager::Lease;

  NamedMutex(Manager& manager, std::string_view key, duration ttl)
      : manager_(&manager), key_(key), ttl_(ttl) {
    // Validate now, so that lock() fails for the same reason any time.
    detail::validate_key(key_);
    detail::validate_ttl(ttl_);
  }
  NamedMutex(NamedMutex&& other) noexcept
      : manager_(other.manager_), key_(std::move(other.key_)), ttl_(other.ttl_) {
    std::lock_guard<std::mutex> lock(other.mutex_);
    exclusive_ = std::move(other.exclusive_);
    shared_ = std::move(other.shared_);
  }
  NamedMutex(const NamedMutex&) = delete;
  NamedMutex& operator=(const NamedMutex&) = delete;
  NamedMutex& operator=(NamedMutex&&) = delete;

  const std::string& key() const noexcept { return key_; }

  // Exclusive (Lockable, TimedLockable).
  void lock() { keep_exclusive(manager_->acquire(key_, Mode::exclusive, ttl_)); }
  bool try_lock() { return keep_exclusive(manager_->try_acquire(key_, Mode::exclusive, ttl_)); }
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& wait) {
    return keep_exclusive(manager_->try_acquire(key_, Mode::exclusive, ttl_, to_wait(wait)));
  }
  template <class C, class D>
  bool try_lock_until(const std::chrono::time_point<C, D>& deadline) {
    return keep_exclusive(acquire_until(Mode::exclusive, deadline));
  }
  void unlock() {
    Lease lease;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      lease = std::move(exclusive_);
    }
    lost_ = lease && !lease.release();
  }

  // Shared (SharedLockable, SharedTimedLockable).
  void lock_shared() { keep_shared(manager_->acquire(key_, Mode::shared, ttl_)); }
  bool try_lock_shared() { return keep_shared(manager_->try_acquire(key_, Mode::shared, ttl_)); }
  template <class Rep, class Period>
  bool try_lock_shared_for(const std::chrono::duration<Rep, Period>& wait) {
    return keep_shared(manager_->try_acquire(key_, Mode::shared, ttl_, to_wait(wait)));
  }
  template <class C, class D>
  bool try_lock_shared_until(const std::chrono::time_point<C, D>& deadline) {
    return keep_shared(acquire_until(Mode::shared, deadline));
  }
  void unlock_shared() {
    Lease lease;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const auto self = std::this_thread::get_id();
      for (auto it = shared_.begin(); it != shared_.end(); ++it) {
        if (it->first != self) continue;
        lease = std::move(it->second);
        shared_.erase(it);
        break;
      }
    }
    lost_ = lease && !lease.release();
  }

  /// True if the last unlock found its lease already expired.
  bool lost_lock() const noexcept { return lost_; }

 private:
  template <class Rep, class Period>
  static duration to_wait(const std::chrono::duration<Rep, Period>& wait) {
    return std::chrono::duration_cast<duration>(wait);
  }

  template <class C, class D>
  Lease acquire_until(Mode mode, const std::chrono::time_point<C, D>& deadline) {
    if constexpr (std::is_same_v<C, clock_type>) {
      return manager_->try_acquire_until(key_, mode, ttl_,
                                         std::chrono::time_point_cast<duration>(deadline));
    } else {
      return manager_->try_acquire(key_, mode, ttl_, to_wait(deadline - C::now()));
    }
  }

  bool keep_exclusive(Lease lease) {
    if (!lease) return false;
    std::lock_guard<std::mutex> lock(mutex_);
    exclusive_ = std::move(lease);
    return true;
  }

  bool keep_shared(Lease lease) {
    if (!lease) return false;
    std::lock_guard<std::mutex> lock(mutex_);
    shared_.emplace_back(std::this_thread::get_id(), std::move(lease));
    return true;
  }

  Manager* manager_;
  std::string key_;
  duration ttl_;
  std::mutex mutex_;
  Lease exclusive_;
  std::vector<std::pair<std::thread::id, Lease>> shared_;
  std::atomic<bool> lost_{false};
};

}  // namespace leaselock
