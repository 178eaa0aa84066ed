// leaselock/backends/file_options.hpp — how a FileBackend behaves (backends/file.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>

#include <leaselock/storage_error.hpp>

namespace leaselock {

/// The options of a FileBackend (leaselock/backends/file.hpp).
struct FileBackendOptions {
  /// Create files 0660 and accept a group-writable directory (for agents of one group).
  /// Otherwise files are 0600 and the directory must be writable by its owner only.
  bool group_shared = false;
  /// How often a waiter blocked by another process's holder checks whether that process
  /// has died (zero: never; such leases then free themselves at their TTL only).
  std::chrono::milliseconds liveness_check{10};
  /// Record files a backend keeps mapped while no lease of it holds them (the mappings of
  /// held keys are always kept). Idle ones beyond a few per shard are removed.
  std::size_t cached_records = 4096;
  /// Called by list() and remove_idle() — which go on with the other records — with the
  /// error of each record file they skip because it is damaged or cannot be read:
  /// what() says which file and what is wrong with it, path() is the file. The file is
  /// left untouched, and a request for its key still throws that StorageError. Called on
  /// the thread that lists or removes; empty (the default): such files are skipped.
  std::function<void(const StorageError&)> on_damaged_record;
  /// How long an operation without a deadline of its own (release, renew, bind, adopt)
  /// waits for a record's mutex, which another process holds that long only when it is
  /// stopped (SIGSTOP) or hung inside an operation on the key; past it, StorageError.
  /// A one-try acquisition waits at most 1 ms and finds the key busy; a waiting one
  /// waits for the mutex until its deadline; status() and list() read the last
  /// published record instead; idle-record removal skips the key.
  std::chrono::milliseconds stall_timeout{2000};
};

}  // namespace leaselock
