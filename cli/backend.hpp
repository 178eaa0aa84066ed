// cli/backend.hpp — the lock manager the command line (and the MCP server) works on.
//
// with_manager() opens the storage CommonOptions name and calls its function with the
// manager: over --dir a file_lock_manager, so C++ programs using the same directory share
// leases with the command; over --postgres a postgres_lock_manager, so programs on other
// machines using the same database do. The subcommands are written once, as generic
// functions of the manager, and work over either.
//
// A StorageError (a directory missing its parent or writable by others, a server that
// cannot be reached, a refused login, a connection lost) becomes StorageUnavailable with
// the library's reason on one line, the password of the connection URL hidden
// (ConnectionSecrets). A build without libpq refuses --postgres the same way.
#pragma once

#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <leaselock/backends/file.hpp>
#include <leaselock/lock_manager.hpp>
#include <leaselock/storage_error.hpp>
#if LEASELOCK_CLI_POSTGRES
#include <leaselock/backends/postgres.hpp>
#endif

#include "errors.hpp"
#include "options.hpp"
#include "secrets.hpp"

namespace leaselock::cli {

/// The library's message without its "leaselock: " prefix (ours names the subcommand).
inline std::string reason(const std::exception& error) {
  std::string what = error.what();
  constexpr std::string_view prefix = "leaselock: ";
  if (what.compare(0, prefix.size(), prefix) == 0) what.erase(0, prefix.size());
  return what;
}

/// Calls `fn(manager)` with the manager over `common`'s storage and returns what it
/// returns. `default_owner` is the owner when --owner and $LEASELOCK_OWNER name none
/// (empty: the library's "pid@hostname"). Throws StorageUnavailable if the storage cannot
/// be opened, or fails under `fn`.
template <class Fn>
int with_manager(const CommonOptions& common, std::string default_owner, Fn&& fn) {
  std::string owner = !common.owner.empty()    ? common.owner
                      : !default_owner.empty() ? std::move(default_owner)
                                               : detail::platform::process_owner();
  if (!common.postgres.empty()) {
#if LEASELOCK_CLI_POSTGRES
    const ConnectionSecrets secrets(common.postgres);
    std::optional<postgres_lock_manager> manager;
    try {
      manager.emplace(PostgresBackend{common.postgres}, std::chrono::system_clock{},
                      std::move(owner));
    } catch (const StorageError& error) {
      throw StorageUnavailable(secrets.hide(reason(error)) +
                               " (check the URL given with --postgres or $LEASELOCK_POSTGRES)");
    }
    try {
      return fn(*manager);
    } catch (const StorageError& error) {
      throw StorageUnavailable(secrets.hide(reason(error)));
    }
#else
    throw StorageUnavailable(
        "this leaselock was built without PostgreSQL (libpq); use --dir DIR (or "
        "$LEASELOCK_DIR) for a lock directory shared by the processes of this machine");
#endif
  }
  std::optional<file_lock_manager> manager;
  try {
    manager.emplace(FileBackend{common.dir}, std::chrono::steady_clock{}, std::move(owner));
  } catch (const StorageError& error) {
    throw StorageUnavailable(reason(error) +
                             " (choose a usable lock directory with --dir DIR or $LEASELOCK_DIR)");
  }
  try {
    return fn(*manager);
  } catch (const StorageError& error) {
    throw StorageUnavailable(reason(error));
  }
}

}  // namespace leaselock::cli
