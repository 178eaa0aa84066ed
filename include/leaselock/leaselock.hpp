// leaselock/leaselock.hpp — the whole library in one include.
//
// Start with LockManager (lock_manager.hpp): it hands out Leases (lease.hpp) on keys,
// stored by a Backend — InProcessBackend (backends/in_process.hpp) for threads, and
// FileBackend (backends/file.hpp) for processes — and timed by a Clock (clock.hpp:
// ManualClock for tests). NamedMutex (named_mutex.hpp) makes a key usable with
// std::unique_lock and std::shared_lock; Observer (observer.hpp) reports every lease event.
//
// Everything but FileBackend compiles with any C++17 compiler and standard library.
// FileBackend needs Linux; this header includes it only there (LEASELOCK_HAS_FILE_BACKEND,
// detail/platform.hpp).
#pragma once

#include <leaselock/detail/platform.hpp>
#if LEASELOCK_HAS_FILE_BACKEND
#include <leaselock/backends/file.hpp>
#endif
#include <leaselock/backends/in_process.hpp>
#include <leaselock/clock.hpp>
#include <leaselock/holder_process.hpp>
#include <leaselock/info.hpp>
#include <leaselock/lease.hpp>
#include <leaselock/limits.hpp>
#include <leaselock/lock_manager.hpp>
#include <leaselock/mode.hpp>
#include <leaselock/named_mutex.hpp>
#include <leaselock/observer.hpp>
#include <leaselock/storage_error.hpp>
#include <leaselock/token.hpp>
#include <leaselock/version.hpp>
