// leaselock/backends/postgres_options.hpp — the options of a PostgresBackend
// (backends/postgres.hpp, which includes this file): where its tables live, how many
// connections it holds, how long it waits, and whose clock judges expiry.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace leaselock {

struct PostgresBackendOptions {
  /// Where the tables live; created on first use (the role needs CREATE on the database,
  /// or must own this schema already).
  std::string schema = "leaselock";
  /// Connections for operations (one more listens for notifications).
  std::size_t pool_size = 4;
  /// How long connecting may take before StorageError; also how long a lost connection
  /// is retried (with backoff) before an operation gives up.
  std::chrono::milliseconds connect_timeout{5000};
  /// How long one statement may take before its connection counts as lost.
  std::chrono::milliseconds statement_timeout{30000};
  /// Rows nobody holds or waits for are removed this often (zero: only remove_idle()).
  std::chrono::milliseconds cleanup_interval{60000};
  /// A waiter re-reads its record at least this often, notification or not.
  std::chrono::milliseconds max_sleep{2000};
  /// true: expiry is judged by the database server's clock for every host. false: by
  /// the LockManager's clock — for one host only, and tests on a ManualClock.
  bool server_time = true;
  /// true: each pooled connection prepares its statements once, by name. false: every
  /// statement is sent with its text (unnamed), for a pooler in transaction mode that
  /// does not keep named statements (PgBouncer before 1.21, or without
  /// max_prepared_statements).
  bool prepared_statements = true;
};

}  // namespace leaselock
