// leaselock/detail/file/waiting.hpp — how waiters of a record file sleep and are woken.
//
// Each record file has a futex word (RecordHeader::wake). A waiter reads it under the
// record's mutex, lets go, and sleeps while it is unchanged; a change that waiters should
// see bumps it under the mutex, and wakes every sleeper of every process after letting
// go (detail/posix/futex.hpp). Threads waiting on a clock with a park hook (ManualClock)
// sleep on their own Parker instead: such clocks are process-local, so they are woken by
// this process's changes to the file (ParkedThreads), whichever backend instance makes
// them.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include <leaselock/detail/file/record_layout.hpp>
#include <leaselock/detail/parker.hpp>
#include <leaselock/detail/posix/futex.hpp>
#include <leaselock/detail/time.hpp>

namespace leaselock::detail::file {

/// Under the record's mutex: what a waiter about to sleep has seen.
inline std::uint32_t wake_count(const RecordHeader& header) noexcept {
  return __atomic_load_n(&header.wake, __ATOMIC_RELAXED);
}

/// Under the record's mutex: tells sleepers that something changed (then wake_sleepers()).
inline void announce_change(RecordHeader& header) noexcept {
  __atomic_fetch_add(&header.wake, 1u, __ATOMIC_RELAXED);
}

/// After announce_change() and letting go of the mutex: wakes every sleeper of the record.
inline void wake_sleepers(RecordHeader& header) noexcept { posix::futex_wake_all(&header.wake); }

/// Sleeps at most `timeout` while no change was announced since `seen` was read.
inline void sleep_for_change(RecordHeader& header, std::uint32_t seen, Nanos timeout) noexcept {
  posix::futex_wait(&header.wake, seen, timeout);
}

/// The threads of this process parked on a process-local clock, by record file.
class ParkedThreads {
 public:
  static ParkedThreads& instance() {
    static ParkedThreads parked;
    return parked;
  }

  void add(dev_t device, ino_t inode, Parker& parker) {
    std::lock_guard<std::mutex> lock(mutex_);
    parkers_.emplace_back(std::make_pair(device, inode), &parker);
    count_.fetch_add(1, std::memory_order_relaxed);
  }

  void remove(Parker& parker) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = std::find_if(parkers_.begin(), parkers_.end(),
                                 [&](const auto& entry) { return entry.second == &parker; });
    if (it == parkers_.end()) return;
    parkers_.erase(it);
    count_.fetch_sub(1, std::memory_order_relaxed);
  }

  /// Unparks the threads parked on record file (device, inode).
  void wake(dev_t device, ino_t inode) noexcept {
    if (count_.load(std::memory_order_relaxed) == 0) return;
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& entry : parkers_)
      if (entry.first.first == device && entry.first.second == inode) entry.second->unpark();
  }

 private:
  std::mutex mutex_;
  std::vector<std::pair<std::pair<dev_t, ino_t>, Parker*>> parkers_;
  std::atomic<std::size_t> count_{0};
};

}  // namespace leaselock::detail::file
