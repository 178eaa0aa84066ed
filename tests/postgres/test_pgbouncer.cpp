// PostgresBackend through PgBouncer (tools/pgbouncer.sh starts one in front of the test
// server, for this process): what README.md says of session and transaction pooling.
// Without pgbouncer these tests fail; they never skip.
#include <doctest/doctest.h>
#include <stdio.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>

#include "setup.hpp"

using namespace std::chrono_literals;
using leaselock::Mode;
using leaselock::PostgresBackend;
using leaselock::PostgresBackendOptions;

namespace {

using Manager = leaselock::LockManager<std::chrono::steady_clock, PostgresBackend>;

/// A PgBouncer of this process's own (its directory and port), stopped at exit;
/// tools/pgbouncer.sh also stops it if this process dies first.
class Bouncer {
 public:
  Bouncer() : dir_("/tmp/leaselock-pgbouncer-" + test::fresh_schema_name()) {
    test::postgres_conninfo();  // fails the test, saying why, without a server
    const std::string command = "'" LEASELOCK_SOURCE_DIR "/tools/pgbouncer.sh' start '" + dir_ +
                                "' " + std::to_string(::getpid()) + " 2>&1";
    FILE* out = ::popen(command.c_str(), "r");
    if (!out) throw std::runtime_error("could not run " + command);
    std::string text;
    char buffer[512];
    while (std::fgets(buffer, sizeof buffer, out)) text += buffer;
    if (::pclose(out) != 0) throw std::runtime_error("tools/pgbouncer.sh start failed:\n" + text);
    // Lines "export NAME='VALUE'".
    std::size_t at = 0;
    while ((at = text.find("export ", at)) != std::string::npos) {
      const std::size_t eq = text.find("='", at);
      const std::size_t end = text.find("'\n", eq);
      if (eq == std::string::npos || end == std::string::npos) break;
      exports_[text.substr(at + 7, eq - at - 7)] = text.substr(eq + 2, end - eq - 2);
      at = end;
    }
  }
  Bouncer(const Bouncer&) = delete;
  Bouncer& operator=(const Bouncer&) = delete;
  ~Bouncer() {
    const std::string command =
        "'" LEASELOCK_SOURCE_DIR "/tools/pgbouncer.sh' stop '" + dir_ + "' >/dev/null 2>&1";
    [[maybe_unused]] const int status = std::system(command.c_str());
  }

  /// The conninfo of the pool in `mode` ("SESSION" or "TRANSACTION").
  std::string conninfo(const std::string& mode) const {
    const auto found = exports_.find("LEASELOCK_TEST_PGBOUNCER_" + mode);
    if (found == exports_.end())
      throw std::runtime_error("tools/pgbouncer.sh printed no LEASELOCK_TEST_PGBOUNCER_" + mode);
    return found->second;
  }

 private:
  std::string dir_;
  std::map<std::string, std::string> exports_;
};

/// Leases taken in turn by two backends: each granted, with fences strictly increasing.
void alternate(Manager& a, Manager& b, const std::string& key) {
  std::uint64_t last = 0;
  for (int i = 0; i < 6; ++i) {
    Manager& locks = i % 2 ? b : a;
    auto lease = locks.try_acquire(key, Mode::exclusive, 30s);
    REQUIRE(lease);
    CHECK(lease.fence() > last);
    last = lease.fence();
    CHECK_FALSE((i % 2 ? a : b).try_acquire(key, Mode::shared, 30s));  // no two writers
    CHECK(locks.release(key, lease.detach()));
  }
}

/// How long after `holder`'s release a waiter on `waiting` (which waits up to `wait`)
/// holds the key; zero if it never did.
std::chrono::steady_clock::duration handoff(Manager& holder, Manager& waiting,
                                            const std::string& key,
                                            std::chrono::milliseconds wait) {
  auto held = holder.try_acquire(key, Mode::exclusive, 60s);
  REQUIRE(held);
  std::atomic<bool> got{false};
  std::atomic<std::int64_t> woke_at{0};
  std::thread waiter([&] {
    auto lease = waiting.try_acquire(key, Mode::exclusive, 60s, wait);
    woke_at = std::chrono::steady_clock::now().time_since_epoch().count();
    got = static_cast<bool>(lease);
  });
  bool queued = false;
  for (int i = 0; i < 500 && !queued; ++i) {
    auto info = holder.status(key);
    queued = info && info->waiters == 1;
    if (!queued) std::this_thread::sleep_for(10ms);
  }
  const auto released_at = std::chrono::steady_clock::now();
  CHECK(holder.release(key, held.detach()));
  waiter.join();
  REQUIRE(queued);
  if (!got) return std::chrono::steady_clock::duration::zero();
  return std::chrono::steady_clock::duration(woke_at.load()) - released_at.time_since_epoch();
}

/// The one PgBouncer of this process, started on first use.
const Bouncer& bouncer() {
  static const Bouncer started;
  return started;
}

PostgresBackendOptions options_for(const test::PostgresSetup& setup) {
  PostgresBackendOptions options = setup.options(true);
  options.max_sleep = 60s;  // only a notification (or the wait's end) wakes a waiter
  return options;
}

}  // namespace

TEST_CASE("postgres: through PgBouncer in session mode, leases and notifications work") {
  test::PostgresSetup setup;
  const std::string conninfo = bouncer().conninfo("SESSION");
  Manager a{PostgresBackend{conninfo, options_for(setup)}};
  Manager b{PostgresBackend{conninfo, options_for(setup)}};
  CHECK(a.backend().server().find("/leaselock_session") != std::string::npos);
  alternate(a, b, "session/turns");
  // The waiter is woken by the notification, long before its wait (or max_sleep) ends.
  const auto latency = handoff(a, b, "session/handoff", 30s);
  CHECK(latency > std::chrono::steady_clock::duration::zero());
  CHECK(latency < 10s);
  CHECK(b.backend().remove_idle() >= 1);
}

TEST_CASE("postgres: through PgBouncer in transaction mode, only unnamed statements work") {
  test::PostgresSetup setup;
  const std::string conninfo = bouncer().conninfo("TRANSACTION");  // one server connection
  // Only this subcase prepares statements by name on that server connection.
  SUBCASE("named prepared statements: the second client is refused") {
    Manager a{PostgresBackend{conninfo, options_for(setup)}};
    Manager b{PostgresBackend{conninfo, options_for(setup)}};
    auto lease = a.try_acquire("named", Mode::exclusive, 30s);
    REQUIRE(lease);  // a's connection prepared "leaselock_apply" on the server connection
    CHECK(a.release("named", lease.detach()));
    const std::string error =
        test::storage_error_of([&] { (void)b.try_acquire("named", Mode::exclusive, 30s); });
    CHECK_MESSAGE(error.find("/leaselock_transaction: prepared statement \"leaselock_apply\" "
                             "already exists [SQLSTATE 42P05]") != std::string::npos,
                  error);
    auto info = a.status("named");  // b's refused acquisition stored nothing
    CHECK((!info || info->holders.empty()));
  }
  SUBCASE("prepared_statements = false: operations work, waiters are not notified") {
    PostgresBackendOptions options = options_for(setup);
    options.prepared_statements = false;
    Manager a{PostgresBackend{conninfo, options}};
    Manager b{PostgresBackend{conninfo, options}};
    alternate(a, b, "unnamed/turns");
    // The listening session is shared by every client: the release's notification never
    // reaches b's listener, and the waiter finds its grant only when its wait ends.
    const auto latency = handoff(a, b, "unnamed/handoff", 1500ms);
    CHECK(latency > 500ms);
    CHECK(a.backend().remove_idle() >= 1);
  }
}
