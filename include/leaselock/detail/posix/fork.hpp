// leaselock/detail/posix/fork.hpp — a counter that changes in every child after fork(2).
//
// Per-thread random generators compare it with the value they were seeded under, so a
// forked child never hands out the same tokens as its parent.
#pragma once

#include <pthread.h>

#include <atomic>

namespace leaselock::detail::posix {

inline std::atomic<unsigned long>& fork_generation_counter() noexcept {
  static std::atomic<unsigned long> counter{0};
  return counter;
}

inline void on_fork_in_child() noexcept {
  fork_generation_counter().fetch_add(1, std::memory_order_relaxed);
}

/// The current fork generation; the first call installs the pthread_atfork handler.
inline unsigned long fork_generation() noexcept {
  static const bool installed = (::pthread_atfork(nullptr, nullptr, &on_fork_in_child), true);
  (void)installed;
  return fork_generation_counter().load(std::memory_order_relaxed);
}

}  // namespace leaselock::detail::posix
