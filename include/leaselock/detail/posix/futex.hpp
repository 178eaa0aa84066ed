// leaselock/detail/posix/futex.hpp — sleeping on a word of shared memory (Linux futex).
//
// A waiter reads the word under the record's lock, lets go of the lock, and sleeps while
// the word still holds what it read; a writer changes the word under the lock and wakes
// the sleepers. The futexes are process-shared (no FUTEX_PRIVATE_FLAG): the kernel finds
// them by the file page, so processes that map the record at different addresses meet.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <climits>
#include <cstdint>

#include <leaselock/detail/time.hpp>

namespace leaselock::detail::posix {

/// Sleeps while *word == expected, at most `timeout` nanoseconds (kForever: no limit).
/// Returns early on a wake, a signal, or a changed word; callers re-check.
inline void futex_wait(std::uint32_t* word, std::uint32_t expected, Nanos timeout) noexcept {
  if (timeout <= 0) return;
  timespec relative{};
  timespec* limit = nullptr;
  if (timeout != kForever) {
    relative.tv_sec = static_cast<time_t>(timeout / 1'000'000'000);
    relative.tv_nsec = static_cast<long>(timeout % 1'000'000'000);
    limit = &relative;
  }
  ::syscall(SYS_futex, word, FUTEX_WAIT, expected, limit, nullptr, 0);
}

/// Wakes every thread of any process sleeping on `word`.
inline void futex_wake_all(std::uint32_t* word) noexcept {
  ::syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

}  // namespace leaselock::detail::posix
