// leaselock/leaselock.hpp — the whole library in one include.
//
// Start with LockManager (lock_manager.hpp): it hands out Leases (lease.hpp) on keys,
// stored by a Backend — InProcessBackend (backends/in_process.hpp) for threads, and
// later FileBackend for processes — and timed by a Clock (clock.hpp: ManualClock for
// tests). NamedMutex (named_mutex.hpp) makes a key usable with std::unique_lock and
// std::shared_lock; Observer (observer.hpp) reports every lease event.
#pragma once

#include <leaselock/backends/file.hpp>
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
