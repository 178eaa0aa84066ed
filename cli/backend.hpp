// cli/backend.hpp — the lock manager the command line (and the MCP server) works on.
//
// open_manager() opens the storage CommonOptions name: the lock directory, through
// file_lock_manager, so C++ programs using the same directory share leases with the
// command. A PostgreSQL URL is refused (exit 69) until that backend is built. A
// StorageError (directory missing its parent, writable by others, a symbolic link...)
// becomes StorageUnavailable with the library's reason.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include <leaselock/backends/file.hpp>
#include <leaselock/lock_manager.hpp>
#include <leaselock/storage_error.hpp>

#include "errors.hpp"
#include "options.hpp"

namespace leaselock::cli {

using Manager = file_lock_manager;
using Lease = Manager::Lease;
using LockInfo = Manager::LockInfo;
using HolderInfo = Manager::HolderInfo;

/// The library's message without its "leaselock: " prefix (ours names the subcommand).
inline std::string reason(const std::exception& error) {
  std::string what = error.what();
  constexpr std::string_view prefix = "leaselock: ";
  if (what.compare(0, prefix.size(), prefix) == 0) what.erase(0, prefix.size());
  return what;
}

/// The manager over `common`'s storage; `default_owner` when --owner and
/// $LEASELOCK_OWNER name none (empty: the library's "pid@hostname").
inline std::unique_ptr<Manager> open_manager(const CommonOptions& common,
                                             std::string default_owner = {}) {
  if (!common.postgres.empty())
    throw StorageUnavailable(
        "the PostgreSQL backend is not available in this build; use --dir DIR (or "
        "$LEASELOCK_DIR) for a lock directory shared by the processes of this machine");
  std::string owner = !common.owner.empty() ? common.owner : std::move(default_owner);
  try {
    FileBackend backend{common.dir};
    if (owner.empty()) return std::make_unique<Manager>(std::move(backend));
    return std::make_unique<Manager>(std::move(backend), std::chrono::steady_clock{},
                                     std::move(owner));
  } catch (const StorageError& error) {
    throw StorageUnavailable(reason(error) +
                             " (choose a usable lock directory with --dir DIR or $LEASELOCK_DIR)");
  }
}

}  // namespace leaselock::cli
