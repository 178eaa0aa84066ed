// leaselock/detail/posix/robust_mutex.hpp — a mutex in shared memory that survives its holder.
//
// A process-shared, robust pthread mutex lives inside a mapped file, so every process that
// maps the file locks the same mutex with no system call when it is free. When a holder
// dies, the next locker gets EOWNERDEAD: lock_robust_mutex() marks the mutex consistent
// again and tells the caller, who must treat what the dead holder was doing as unfinished.
#pragma once

#include <pthread.h>

#include <cerrno>

namespace leaselock::detail::posix {

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

/// Locks `mutex`. Returns 0; EOWNERDEAD when its last holder died holding it (it is
/// locked and consistent again); or another error, and then it is not locked.
inline int lock_robust_mutex(pthread_mutex_t& mutex) noexcept {
  const int error = pthread_mutex_lock(&mutex);
  if (error == EOWNERDEAD) pthread_mutex_consistent(&mutex);
  return error;
}

}  // namespace leaselock::detail::posix
