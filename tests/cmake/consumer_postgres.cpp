// What a user of PostgresBackend compiles: the backend's header with libpq. Without a
// server it must fail with a StorageError naming where it tried, not hang or crash.
#include <chrono>
#include <cstdio>
#include <string>

#include <leaselock/backends/postgres.hpp>
#include <leaselock/leaselock.hpp>

int main() {
  leaselock::PostgresBackendOptions options;
  options.connect_timeout = std::chrono::milliseconds(2000);
  try {
    leaselock::postgres_lock_manager locks{
        leaselock::PostgresBackend{"host=127.0.0.1 port=1 dbname=nothing", options}};
  } catch (const leaselock::StorageError& error) {
    const std::string what = error.what();
    if (what.find("127.0.0.1:1") != std::string::npos) return 0;
    std::fprintf(stderr, "consumer_postgres: unexpected message: %s\n", error.what());
    return 1;
  }
  std::fprintf(stderr, "consumer_postgres: connected to port 1?\n");
  return 1;
}
