// leaselock/named_mutex.hpp — a key seen as a std mutex (SharedTimedLockable).
//
// NamedMutex lets std::unique_lock, std::shared_lock, std::scoped_lock and std::lock work
// with a leaselock key: every lock() / lock_shared() takes a lease on the key for the
// mutex's TTL, and unlock() / unlock_shared() releases it. Get one from
// LockManager::mutex(key, ttl). One NamedMutex may be shared by threads like a
// std::shared_mutex: each lock belongs to the thread that took it, as a std mutex's does,
// and is its own lease.
//
// @code
//   auto m = locks.mutex("inventory.db", std::chrono::seconds(30));
//   {
//     std::unique_lock<decltype(m)> write(m);                 // exclusive lease
//   }
//   if (std::shared_lock<decltype(m)> read(m, std::chrono::milliseconds(100)); read) { }
// @endcode
//
// A lease can run out while "locked" (a TTL is a promise, not a mutex): another thread,
// through this view or any other, may then take the key. The thread's unlock() still
// ends only its own grant — releasing nothing, since it expired — and lost_lock() says
// so; it never touches a grant another thread got meanwhile.
//
// What std leaves undefined, done here:
// - unlock() / unlock_shared() by a thread that holds no lock of that kind on this view
//   does nothing (and lost_lock() turns false).
// - A call that may wait — lock(), lock_shared(), try_lock_for/until and
//   try_lock_shared_for/until — by a thread that already holds a lock of either kind on
//   this view throws std::system_error (resource_deadlock_would_occur): with leases it
//   would wait out the thread's own TTL (an exclusive request behind its own lease, or a
//   shared one queued behind a writer that waits for it). Checked in every build; it
//   costs one look at this view's list of grants. The one-try forms try as any thread
//   would: try_lock() fails, try_lock_shared() beside the thread's own shared lock
//   takes a second lease, which the next unlock_shared() ends first.
// Timeouts: any std::chrono duration, and deadlines on any clock. A duration too long for
// 64-bit nanoseconds (hours::max(), seconds::max()) or time_point::max() waits as long as
// it takes. A deadline on another clock than the manager's is re-checked on its own
// clock each time the wait ends, so the call returns false only once that clock has
// reached the deadline; zero, negative or past: one try.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iterator>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <leaselock/detail/time.hpp>
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

  /// A view of `key` whose every lock is a lease for `ttl` (any std::chrono duration).
  /// Throws std::invalid_argument for a bad key or a ttl <= 0.
  NamedMutex(Manager& manager, std::string_view key, detail::AnyDuration ttl)
      : manager_(&manager), key_(key), ttl_(ttl) {
    // Validate now, so that lock() fails for the same reason any time.
    detail::validate_key(key_);
    detail::validate_ttl(ttl_.count());
  }
  NamedMutex(NamedMutex&& other) noexcept
      : manager_(other.manager_), key_(std::move(other.key_)), ttl_(other.ttl_) {
    std::lock_guard<std::mutex> lock(other.mutex_);
    grants_ = std::move(other.grants_);
  }
  NamedMutex(const NamedMutex&) = delete;
  NamedMutex& operator=(const NamedMutex&) = delete;
  NamedMutex& operator=(NamedMutex&&) = delete;

  const std::string& key() const noexcept { return key_; }

  // Exclusive (Lockable, TimedLockable).

  /// Waits as long as it takes for an exclusive lease.
  void lock() {
    keep(Mode::exclusive, kWaits, [&] { return manager_->acquire(key_, Mode::exclusive, ttl_); });
  }
  /// One try; false if the key is busy.
  [[nodiscard]] bool try_lock() {
    return keep(Mode::exclusive, kOneTry,
                [&] { return manager_->try_acquire(key_, Mode::exclusive, ttl_); });
  }
  /// Waits up to `wait` (any duration); false on timeout.
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(const std::chrono::duration<Rep, Period>& wait) {
    return keep(Mode::exclusive, kWaits,
                [&] { return manager_->try_acquire(key_, Mode::exclusive, ttl_, wait); });
  }
  /// Waits until `deadline` (any clock, any duration); false once it has passed.
  template <class C, class D>
  [[nodiscard]] bool try_lock_until(const std::chrono::time_point<C, D>& deadline) {
    return keep(Mode::exclusive, kWaits, [&] { return acquire_until(Mode::exclusive, deadline); });
  }
  /// Releases the calling thread's exclusive lock; nothing if it holds none.
  void unlock() { end(Mode::exclusive); }

  // Shared (SharedLockable, SharedTimedLockable).

  void lock_shared() {
    keep(Mode::shared, kWaits, [&] { return manager_->acquire(key_, Mode::shared, ttl_); });
  }
  [[nodiscard]] bool try_lock_shared() {
    return keep(Mode::shared, kOneTry,
                [&] { return manager_->try_acquire(key_, Mode::shared, ttl_); });
  }
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_shared_for(const std::chrono::duration<Rep, Period>& wait) {
    return keep(Mode::shared, kWaits,
                [&] { return manager_->try_acquire(key_, Mode::shared, ttl_, wait); });
  }
  template <class C, class D>
  [[nodiscard]] bool try_lock_shared_until(const std::chrono::time_point<C, D>& deadline) {
    return keep(Mode::shared, kWaits, [&] { return acquire_until(Mode::shared, deadline); });
  }
  /// Releases the calling thread's shared lock; nothing if it holds none.
  void unlock_shared() { end(Mode::shared); }

  /// True if the last unlock (by any thread) found its lease already expired.
  bool lost_lock() const noexcept { return lost_; }

 private:
  // One lock: the thread it belongs to, and its lease.
  struct Grant {
    std::thread::id thread;
    Mode mode;
    Lease lease;
  };

  static constexpr bool kWaits = true;
  static constexpr bool kOneTry = false;

  // Takes a lease with `take` for the calling thread; a request that `waits` is refused
  // if the thread holds a lock here already.
  template <class Take>
  bool keep(Mode mode, bool waits, Take&& take) {
    const std::thread::id self = std::this_thread::get_id();
    if (waits) {
      std::lock_guard<std::mutex> lock(mutex_);
      for (const Grant& grant : grants_)
        if (grant.thread == self)
          throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur),
                                  "leaselock: this thread already holds NamedMutex '" + key_ +
                                      "'; a second lock would wait out its own lease");
    }
    Lease lease = take();
    if (!lease) return false;
    std::lock_guard<std::mutex> lock(mutex_);
    grants_.push_back(Grant{self, mode, std::move(lease)});
    return true;
  }

  // Ends the calling thread's lock in `mode`, if it has one.
  void end(Mode mode) {
    Lease lease;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const auto self = std::this_thread::get_id();
      // The thread's latest lock of that kind first.
      const auto it = std::find_if(grants_.rbegin(), grants_.rend(), [&](const Grant& grant) {
        return grant.thread == self && grant.mode == mode;
      });
      if (it != grants_.rend()) {
        lease = std::move(it->lease);
        grants_.erase(std::next(it).base());
      }
    }
    lost_ = lease && !lease.release();
  }

  template <class C, class D>
  Lease acquire_until(Mode mode, const std::chrono::time_point<C, D>& deadline) {
    if constexpr (std::is_same_v<C, clock_type>) {
      return manager_->try_acquire_until(key_, mode, ttl_, deadline);
    } else {
      // Wait on the manager's clock for what is left by the caller's clock, as often as
      // that wait ends before the caller's clock reaches the deadline.
      for (;;) {
        const detail::Nanos left = detail::nanos_until(deadline);
        Lease lease = manager_->try_acquire(key_, mode, ttl_, std::chrono::nanoseconds(left));
        if (lease || left <= 0 || detail::nanos_until(deadline) <= 0) return lease;
      }
    }
  }

  Manager* manager_;
  std::string key_;
  detail::AnyDuration ttl_;
  std::mutex mutex_;
  std::vector<Grant> grants_;
  std::atomic<bool> lost_{false};
};

}  // namespace leaselock
