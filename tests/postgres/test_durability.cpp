// Fences are durable: across a server restart (pg_ctl restart -m fast) and across crash
// recovery (pg_ctl stop -m immediate, then start) with synchronous_commit = on, no fence
// handed out before is handed out again, a lease granted before is still held after,
// and the backends of this process reconnect and go on. Each case starts a server of its
// own (tools/postgres_cluster.sh), since it stops it.
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "../support.hpp"

using namespace std::chrono_literals;
using leaselock::Mode;
using leaselock::PostgresBackend;

namespace {

/// A throwaway PostgreSQL server of the test's own, stopped and removed on destruction.
class OwnCluster {
 public:
  OwnCluster() : dir_(base_.sub("pg")) {
    // The server runs as `nobody` when the tests run as root: it must reach its directory.
    std::filesystem::permissions(base_.path(), std::filesystem::perms::others_exec,
                                 std::filesystem::perm_options::add);
    const std::string env = (base_.path() / "env").string();
    script("start", " > '" + env + "'");
    std::ifstream in(env);
    std::string line;
    while (std::getline(in, line)) {
      // export NAME='value'
      const auto eq = line.find('=');
      if (line.rfind("export ", 0) != 0 || eq == std::string::npos) continue;
      std::string value = line.substr(eq + 1);
      if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'')
        value = value.substr(1, value.size() - 2);
      env_[line.substr(7, eq - 7)] = value;
    }
    REQUIRE(!conninfo().empty());
  }
  OwnCluster(const OwnCluster&) = delete;
  OwnCluster& operator=(const OwnCluster&) = delete;
  ~OwnCluster() {
    try {
      script("stop", "");
    } catch (...) {
    }
  }

  const std::string& conninfo() { return env_["LEASELOCK_TEST_POSTGRES"]; }
  void restart() { script("restart", ""); }
  void crash() { script("crash", ""); }
  void recover() { script("recover", ""); }

  std::string sql_value(const std::string& query) {
    leaselock::detail::postgres::Connection conn(conninfo(), 10s);
    const auto row = conn.run(query, std::chrono::steady_clock::now() + 10s);
    return std::string(row.bytes(0, 0));
  }

 private:
  void script(const std::string& command, const std::string& redirect) {
    const std::string line = std::string("'") + LEASELOCK_SOURCE_DIR +
                             "/tools/postgres_cluster.sh' " + command + " '" + dir_.string() + "'" +
                             redirect;
    if (std::system(line.c_str()) != 0) throw std::runtime_error("failed: " + line);
  }

  test::TempDir base_;
  std::filesystem::path dir_;
  std::map<std::string, std::string> env_;
};

}  // namespace

TEST_CASE("postgres: fences are never handed out again after a restart or crash recovery" *
          doctest::timeout(120)) {
  bool crash = false;
  SUBCASE("pg_ctl restart -m fast") { crash = false; }
  SUBCASE("pg_ctl stop -m immediate, then crash recovery") { crash = true; }
  OwnCluster cluster;
  REQUIRE(cluster.sql_value("SHOW synchronous_commit") == "on");
  leaselock::PostgresBackendOptions options;
  options.schema = "durable";
  options.connect_timeout = 15s;  // the server comes back within it
  options.statement_timeout = 10s;
  leaselock::postgres_lock_manager locks{PostgresBackend{cluster.conninfo(), options}};
  leaselock::postgres_lock_manager other{PostgresBackend{cluster.conninfo(), options}};

  // Before: fences on a few keys (one cleaned up, so its fence lives in the floor only),
  // and one lease held across the outage.
  std::map<std::string, std::set<std::uint64_t>> before;
  for (int round = 0; round < 6; ++round) {
    for (int k = 0; k < 3; ++k) {
      auto& manager = round % 2 ? other : locks;
      auto lease = manager.try_acquire("durable/" + std::to_string(k),
                                       k == 1 ? Mode::shared : Mode::exclusive, 30s);
      REQUIRE(lease);
      before[std::string(lease.key())].insert(lease.fence());
      CHECK(lease.release());
    }
  }
  CHECK(locks.backend().remove_idle() == 3);  // every row now only in its shard's floor
  auto kept = locks.try_acquire("durable/kept", Mode::exclusive, 120s);
  REQUIRE(kept);
  before["durable/kept"].insert(kept.fence());
  const leaselock::Token kept_token = kept.detach();

  // A holder that goes on through the outage, alone on its key: every grant and release
  // must succeed (a write whose answer was lost is recognised, or made again), and each
  // fence must exceed the last.
  std::atomic<bool> back{false};
  std::atomic<bool> stop{false};
  std::atomic<std::size_t> answered{0};
  std::vector<std::uint64_t> through;  // fences answered, in order
  std::size_t through_after = 0;       // of them, asked after the server was back
  std::vector<std::string> errors;
  std::size_t timeouts = 0;
  std::size_t lost = 0;  // releases that found their lease gone
  std::thread holder([&] {
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    while (!stop && std::chrono::steady_clock::now() < give_up) {
      const bool asked_after = back.load();
      try {
        auto lease = locks.try_acquire("durable/through", Mode::exclusive, 30s, 5s);
        if (!lease) {
          ++timeouts;
          continue;
        }
        through.push_back(lease.fence());
        ++answered;
        if (asked_after) ++through_after;
        if (!locks.release("durable/through", lease.detach())) ++lost;
      } catch (const leaselock::StorageError& error) {
        errors.push_back(error.what());
        std::this_thread::sleep_for(20ms);
      }
      if (asked_after && through_after >= 20) break;
    }
  });
  struct Joiner {  // also when a check below throws
    std::thread& thread;
    std::atomic<bool>& stop;
    ~Joiner() {
      stop = true;
      if (thread.joinable()) thread.join();
    }
  } joiner{holder, stop};
  while (answered < 20) std::this_thread::sleep_for(5ms);
  std::string down_error;
  bool down_release = false;
  if (crash) {
    // The server is down, and stays down for a while: an operation begun now waits for
    // it (within connect_timeout), then goes on.
    cluster.crash();
    std::thread release([&] {
      try {
        down_release = locks.release("durable/kept", kept_token);
      } catch (const leaselock::StorageError& error) {
        down_error = error.what();
      }
    });
    std::this_thread::sleep_for(500ms);
    cluster.recover();
    release.join();
  } else {
    cluster.restart();
    down_release = true;
  }
  back = true;
  CHECK_MESSAGE(down_error.empty(), down_error);
  CHECK(down_release);
  // After: the same backends of this process go on, above every fence given before.
  for (int round = 0; round < 4; ++round) {
    for (int k = 0; k < 3; ++k) {
      auto& manager = round % 2 ? locks : other;
      const std::string key = "durable/" + std::to_string(k);
      auto lease = manager.try_acquire(key, k == 1 ? Mode::shared : Mode::exclusive, 30s);
      REQUIRE(lease);
      CHECK(lease.fence() > *before[key].rbegin());
      CHECK(before[key].count(lease.fence()) == 0);
      CHECK(lease.release());
    }
  }
  if (!crash) {
    // The lease granted before is still held: nobody else gets its key; its holder frees it.
    CHECK_FALSE(other.try_acquire("durable/kept", Mode::shared, 30s));
    CHECK(locks.release("durable/kept", kept_token));
  }
  auto next = other.try_acquire("durable/kept", Mode::exclusive, 30s);
  REQUIRE(next);
  CHECK(next.fence() > *before["durable/kept"].rbegin());
  holder.join();  // it ends by itself, after 20 grants past the outage
  MESSAGE(std::string(crash ? "crash" : "restart")
          << ": " << through.size() << " grants through it");
  std::string all_errors;
  for (const auto& e : errors) all_errors += e + "\n";
  CHECK_MESSAGE(errors.empty(), all_errors);
  CHECK(timeouts == 0);
  CHECK(lost == 0);
  CHECK(through_after >= 20);
  for (std::size_t i = 1; i < through.size(); ++i) CHECK(through[i] > through[i - 1]);
}

TEST_CASE("postgres: a waiter whose listening connection was killed waits for its reconnection" *
          doctest::timeout(60)) {
  // A role of the test's own, so that new connections of its backend can be refused for a
  // while (CONNECTION LIMIT) without touching anything else on the server.
  test::PostgresSetup setup;
  const std::string role = "role_" + setup.schema;
  const std::string password = "pw_" + setup.schema;
  leaselock::detail::postgres::Connection admin(setup.conninfo, 10s);
  const auto sql = [&](const std::string& text) {
    admin.run_script(text, std::chrono::steady_clock::now() + 10s);
  };
  sql("CREATE ROLE " + role + " LOGIN PASSWORD '" + password + "'; CREATE SCHEMA " + setup.schema +
      " AUTHORIZATION " + role);
  struct DropRole {
    std::function<void()> drop;
    ~DropRole() { drop(); }
  } drop_role{[&] {
    try {
      sql("DROP SCHEMA IF EXISTS " + setup.schema + " CASCADE; DROP ROLE IF EXISTS " + role);
    } catch (...) {
    }
  }};
  leaselock::PostgresBackendOptions options = setup.options(true);
  options.pool_size = 1;
  options.connect_timeout = 5s;
  leaselock::postgres_lock_manager waiter{
      PostgresBackend{setup.conninfo + " user=" + role + " password=" + password, options}};
  leaselock::postgres_lock_manager holder{setup.make_server_time()};
  // A first wait starts the waiter's listening connection.
  {
    auto short_lease = holder.try_acquire("warm", Mode::exclusive, 200ms);
    REQUIRE(short_lease);
    CHECK(waiter.try_acquire("warm", Mode::exclusive, 10s, 5s));
  }
  // No new connection for the role; its listening connection killed.
  sql("ALTER ROLE " + role + " CONNECTION LIMIT 1");
  leaselock::detail::postgres::Params params;
  params.text(role);
  const auto killed = admin.run(
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1 AND "
      "query LIKE 'LISTEN%'",
      std::chrono::steady_clock::now() + 10s, params);
  REQUIRE(killed.i64(0, 0) == 1);
  std::this_thread::sleep_for(300ms);  // it has tried to reconnect, and been refused
  auto held = holder.try_acquire("busy", Mode::exclusive, 1500ms);
  REQUIRE(held);
  // Connections are allowed again soon: the waiter must wait for its listener to come
  // back (within connect_timeout), not give up at the first refusal.
  std::thread allow([&] {
    std::this_thread::sleep_for(500ms);
    leaselock::detail::postgres::Connection other(setup.conninfo, 10s);
    other.run("ALTER ROLE " + role + " CONNECTION LIMIT -1",
              std::chrono::steady_clock::now() + 10s);
  });
  std::string error;
  bool got = false;
  try {
    got = static_cast<bool>(waiter.try_acquire("busy", Mode::exclusive, 10s, 10s));
  } catch (const leaselock::StorageError& e) {
    error = e.what();
  }
  allow.join();
  CHECK_MESSAGE(error.empty(), error);
  CHECK(got);  // after the holder's TTL
}
