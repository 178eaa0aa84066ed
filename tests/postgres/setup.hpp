// How the suites reach PostgreSQL: $LEASELOCK_TEST_POSTGRES is the conninfo of a server
// the tests may create schemas in (tools/postgres_cluster.sh starts a throwaway one).
// Without it every PostgreSQL test fails: they never skip silently.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include <leaselock/backends/postgres.hpp>

namespace test {

/// The conninfo of the test server; throws (failing the test) when there is none.
inline std::string postgres_conninfo(const char* variable = "LEASELOCK_TEST_POSTGRES") {
  const char* conninfo = std::getenv(variable);
  if (!conninfo || !*conninfo)
    throw std::runtime_error(std::string(variable) +
                             " is not set: the PostgreSQL tests need a server (run "
                             "tools/test.sh, or tools/postgres_cluster.sh start DIR)");
  return conninfo;
}

/// The message of the StorageError that `make` throws ("" if none).
template <class Make>
std::string storage_error_of(Make&& make) {
  try {
    make();
  } catch (const leaselock::StorageError& error) {
    return error.what();
  }
  return "";
}

/// A schema name nobody else uses: one per test, dropped afterwards.
inline std::string fresh_schema_name() {
  static std::atomic<int> counter{0};
  return "test_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
}

/// The system clock, `skew` off (a host whose clock is wrong).
struct SkewedClock {
  using duration = std::chrono::system_clock::duration;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::system_clock::time_point;
  static constexpr bool is_steady = false;
  std::chrono::seconds skew{0};
  time_point now() const { return std::chrono::system_clock::now() + skew; }
};

/// Drops `schema` and everything in it.
inline void drop_schema(const std::string& schema) {
  const std::string conninfo = postgres_conninfo();
  leaselock::detail::postgres::Connection conn(conninfo, std::chrono::seconds(10));
  conn.run(
      "DROP SCHEMA IF EXISTS " + leaselock::detail::postgres::quote_identifier(schema) + " CASCADE",
      std::chrono::steady_clock::now() + std::chrono::seconds(30));
}

/// Managers on several hosts, through one database: each make() is another backend (its
/// own pool and listening connection) on one schema of its own to the test.
struct PostgresSetup {
  using Backend = leaselock::PostgresBackend;
  static constexpr const char* name = "postgres";
  static constexpr bool instances_share_storage = true;
  static constexpr int stress_ops = 1500;  // every operation is a commit
  std::string conninfo = postgres_conninfo();
  std::string schema = fresh_schema_name();

  PostgresSetup() = default;
  PostgresSetup(const PostgresSetup&) = delete;
  PostgresSetup& operator=(const PostgresSetup&) = delete;
  ~PostgresSetup() {
    try {
      drop_schema(schema);
    } catch (...) {
    }
  }

  leaselock::PostgresBackendOptions options(bool server_time) const {
    leaselock::PostgresBackendOptions o;
    o.schema = schema;
    o.server_time = server_time;
    return o;
  }
  /// Expiry judged by the manager's clock (the suites run on a ManualClock, and the
  /// stress suite's checker compares the holders' own times): the storage, the
  /// transitions, waking and retries are what these suites check on PostgreSQL. Server
  /// time is checked by tests of its own (test_postgres.cpp, and the stress in server
  /// time of test_server_time.cpp).
  Backend make() { return Backend{conninfo, options(false)}; }
  /// Expiry judged by the server's clock.
  Backend make_server_time() { return Backend{conninfo, options(true)}; }
};

}  // namespace test
