// leaselock/detail/posix/robust_mutex.hpp — a mutex in shared memory that survives its holder.
//
// A process-shared, robust pthread mutex lives inside a mapped file, so every process that
// maps the file locks the same mutex with no system call when it is free. When a holder
// dies, the next locker gets EOWNERDEAD: lock_robust_mutex_for() marks the mutex consistent
// again and tells the caller, who must treat what the dead holder was doing as unfinished.
// A holder that is stopped (SIGSTOP) or hung keeps it locked: it gives up after a while.
#pragma once

#include <pthread.h>
#include <time.h>

#include <cerrno>
#include <chrono>

// ThreadSanitizer intercepts pthread_mutex_trylock and _timedlock but not _clocklock, so a
// lock taken by _clocklock would be invisible to it: it is announced by hand.
#if defined(__SANITIZE_THREAD__)
#define LEASELOCK_ANNOUNCE_LOCKS_TO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LEASELOCK_ANNOUNCE_LOCKS_TO_TSAN 1
#endif
#endif
#ifdef LEASELOCK_ANNOUNCE_LOCKS_TO_TSAN
extern "C" void __tsan_mutex_pre_lock(void* addr, unsigned flags);
extern "C" void __tsan_mutex_post_lock(void* addr, unsigned flags, int recursion);
#endif

namespace leaselock::detail::posix {

/// pthread_mutex_clocklock, seen by ThreadSanitizer as a timed try-lock.
inline int clocklock(pthread_mutex_t& mutex, const timespec& deadline) noexcept {
#ifdef LEASELOCK_ANNOUNCE_LOCKS_TO_TSAN
  constexpr unsigned try_lock = 1u << 4, try_lock_failed = 1u << 5;  // tsan_interface.h
  __tsan_mutex_pre_lock(&mutex, try_lock);
  const int error = pthread_mutex_clocklock(&mutex, CLOCK_MONOTONIC, &deadline);
  const bool locked = error == 0 || error == EOWNERDEAD;
  __tsan_mutex_post_lock(&mutex, locked ? try_lock : try_lock | try_lock_failed, 0);
  return error;
#else
  return pthread_mutex_clocklock(&mutex, CLOCK_MONOTONIC, &deadline);
#endif
}

/// Makes `mutex` (in memory shared between processes) a fresh, unlocked, robust,
/// process-shared mutex. Returns 0, or the error of pthread_mutex_init.
inline int init_robust_mutex(pthread_mutex_t& mutex) noexcept {
  pthread_mutexattr_t attributes;
  pthread_mutexattr_init(&attributes);
  pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
  const int error = pthread_mutex_init(&mutex, &attributes);
  pthread_mutexattr_destroy(&attributes);
  return error;
}

/// Locks `mutex`, waiting at most `timeout` (CLOCK_MONOTONIC; <= 0: one try). Returns 0;
/// EOWNERDEAD when its last holder died holding it (it is locked and consistent again);
/// ETIMEDOUT if it stayed locked that long, or another error: then it is not locked.
inline int lock_robust_mutex_for(pthread_mutex_t& mutex,
                                 std::chrono::nanoseconds timeout) noexcept {
  int error = pthread_mutex_trylock(&mutex);
  if (error == EBUSY) {
    if (timeout.count() <= 0) return ETIMEDOUT;
    timespec deadline{};
    ::clock_gettime(CLOCK_MONOTONIC, &deadline);
    const long long total = static_cast<long long>(deadline.tv_nsec) + timeout.count();
    deadline.tv_sec += static_cast<time_t>(total / 1000000000);
    deadline.tv_nsec = static_cast<long>(total % 1000000000);
    error = clocklock(mutex, deadline);
  }
  if (error == EOWNERDEAD) pthread_mutex_consistent(&mutex);
  return error;
}

}  // namespace leaselock::detail::posix
