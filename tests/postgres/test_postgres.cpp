// PostgresBackend's own tests: server time with skewed client clocks, durable fences,
// waking through notifications, lost connections, and every fault with its exact error.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "../support.hpp"

using namespace std::chrono_literals;
using leaselock::Mode;
using leaselock::PostgresBackend;
using leaselock::PostgresBackendOptions;

namespace {

using test::SkewedClock;
using SkewedManager = leaselock::LockManager<SkewedClock, PostgresBackend>;

/// Runs SQL on the test server as its superuser.
void admin_sql(const std::string& sql) {
  leaselock::detail::postgres::Connection conn(test::postgres_conninfo(), 10s);
  conn.run_script(sql, std::chrono::steady_clock::now() + 30s);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// The record stored for `key` in `schema`, read directly (nullopt if there is no row).
std::optional<leaselock::detail::Record> stored_record(const std::string& schema,
                                                       const std::string& key) {
  leaselock::detail::postgres::Connection conn(test::postgres_conninfo(), 10s);
  leaselock::detail::postgres::Params params;
  params.bytes(key);
  const auto row =
      conn.run("SELECT record FROM " + leaselock::detail::postgres::quote_identifier(schema) +
                   ".leases WHERE key = $1",
               std::chrono::steady_clock::now() + 10s, params);
  if (row.rows() == 0) return std::nullopt;
  return leaselock::detail::postgres::decode(row.bytes(0, 0));
}

/// Polls `done` every few milliseconds for up to `limit` of real time; true if it held.
template <class Done>
bool eventually(Done&& done, std::chrono::milliseconds limit = 10000ms) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= give_up) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

/// Runs a function when the scope ends (a failed REQUIRE included): lets waiting threads
/// finish so that a failing test reports instead of hanging in a future's destructor.
class AtExit {
 public:
  explicit AtExit(std::function<void()> fn) : fn_(std::move(fn)) {}
  AtExit(const AtExit&) = delete;
  AtExit& operator=(const AtExit&) = delete;
  ~AtExit() { fn_(); }

 private:
  std::function<void()> fn_;
};

/// A view of a ManualClock whose waiters can be frozen: while frozen, a thread woken from
/// its sleep on this clock is held before it may look at the record again, like a
/// process stopped in its wait. Copies share the freeze; other views of the same
/// ManualClock are not affected.
class FreezableClock {
 public:
  using rep = leaselock::ManualClock::rep;
  using period = leaselock::ManualClock::period;
  using duration = leaselock::ManualClock::duration;
  using time_point = std::chrono::time_point<FreezableClock>;
  static constexpr bool is_steady = true;

  explicit FreezableClock(leaselock::ManualClock manual) : manual_(std::move(manual)) {}
  time_point now() const noexcept { return time_point(manual_.now().time_since_epoch()); }
  void park_until(leaselock::detail::Parker& parker, leaselock::detail::Nanos wake_at) const {
    manual_.park_until(parker, wake_at);
    std::unique_lock<std::mutex> lock(gate_->mutex);
    ++gate_->held;
    gate_->changed.notify_all();
    gate_->changed.wait(lock, [&] { return !gate_->frozen; });
    --gate_->held;
  }
  /// Blocks until a woken thread is held (10 s of real time at most); false if none.
  bool wait_for_held() const {
    std::unique_lock<std::mutex> lock(gate_->mutex);
    return gate_->changed.wait_for(lock, 10s, [&] { return gate_->held > 0; });
  }
  void freeze(bool frozen) {
    {
      std::lock_guard<std::mutex> lock(gate_->mutex);
      gate_->frozen = frozen;
    }
    gate_->changed.notify_all();
  }

 private:
  struct Gate {
    std::mutex mutex;
    std::condition_variable changed;
    bool frozen = false;
    std::size_t held = 0;
  };
  leaselock::ManualClock manual_;
  std::shared_ptr<Gate> gate_ = std::make_shared<Gate>();
};

}  // namespace

TEST_CASE("postgres: expiry is judged by the server's clock, whatever the clients' clocks say") {
  test::PostgresSetup setup;
  // Two hosts, one an hour fast, one an hour slow.
  SkewedManager fast{setup.make_server_time(), SkewedClock{1h}};
  SkewedManager slow{setup.make_server_time(), SkewedClock{-1h}};
  auto lease = slow.try_acquire("skewed", Mode::exclusive, 2s);
  REQUIRE(lease);
  // The fast host must not take the slow host's lease for expired, nor the other way.
  CHECK_FALSE(fast.try_acquire("skewed", Mode::exclusive, 2s));
  CHECK_FALSE(fast.try_acquire("skewed", Mode::shared, 2s));
  // Each holder's view is on its own clock, and never later than the server's expiry.
  const auto slow_view = lease.expires_at() - slow.clock().now();
  CHECK(slow_view <= 2s);
  CHECK(slow_view > 1s);
  auto status = fast.status("skewed");
  REQUIRE(status);
  const auto fast_view = status->holders.at(0).expires_at - fast.clock().now();
  CHECK(fast_view <= 2s);
  CHECK(fast_view > 1s);
  // After the server-time TTL, the fast host gets the key with a higher fence.
  auto taken = fast.try_acquire("skewed", Mode::exclusive, 2s, 10s);
  REQUIRE(taken);
  CHECK(taken.fence() > lease.fence());
  // Not before the end of the slow holder's own view, both in real time.
  CHECK(fast.clock().now() - 1h >= lease.expires_at() + 1h);
  CHECK_FALSE(lease.renew(2s));  // the slow host's lease is gone
  CHECK(taken.release());
}

TEST_CASE("postgres: a holder's view of its expiry is never later than the server's") {
  test::PostgresSetup setup;
  leaselock::LockManager<std::chrono::system_clock, PostgresBackend> locks{
      setup.make_server_time()};
  leaselock::detail::postgres::Connection conn(setup.conninfo, 10s);
  const std::string query =
      "SELECT (extract(epoch from clock_timestamp()) * 1000000)::bigint * 1000, record FROM " +
      leaselock::detail::postgres::quote_identifier(setup.schema) + ".leases WHERE key = $1";
  for (int i = 0; i < 50; ++i) {
    auto lease = locks.try_acquire("view/" + std::to_string(i), Mode::exclusive, 30s);
    REQUIRE(lease);
    leaselock::detail::postgres::Params key;
    key.bytes(lease.key());
    const auto row = conn.run(query, std::chrono::steady_clock::now() + 10s, key);
    const auto client_after = std::chrono::system_clock::now().time_since_epoch();
    REQUIRE(row.rows() == 1);
    const auto record = leaselock::detail::postgres::decode(row.bytes(0, 1));
    REQUIRE(record);
    REQUIRE(record->holders.size() == 1);
    // The server's clock read s at some moment before client_after, so it reaches the
    // lease's expiry E no later than client time client_after + (E - s): the holder's
    // view must not be later than that.
    const auto server_expiry = std::chrono::nanoseconds(record->holders[0].expires_at);
    const auto server_now = std::chrono::nanoseconds(row.i64(0, 0));
    const auto latest_true_moment = client_after + (server_expiry - server_now);
    CHECK(lease.expires_at().time_since_epoch() <= latest_true_moment);
    CHECK(lease.expires_at() - lease.acquired_at() == 30s);
  }
}

TEST_CASE("postgres: fences keep increasing across backends, cleanup and reconnects") {
  test::PostgresSetup setup;
  std::uint64_t last = 0;
  for (int round = 0; round < 4; ++round) {
    leaselock::LockManager<std::chrono::steady_clock, PostgresBackend> locks{setup.make()};
    for (int i = 0; i < 5; ++i) {
      auto lease = locks.try_acquire("fenced", i % 2 ? Mode::shared : Mode::exclusive, 10s);
      REQUIRE(lease);
      CHECK(lease.fence() > last);
      last = lease.fence();
    }
    // Nobody holds it now: cleanup removes the row and keeps its fence in the floor.
    CHECK(locks.backend().remove_idle() >= 1);
    CHECK_FALSE(locks.status("fenced"));
  }
  CHECK(last == 20);
}

TEST_CASE("postgres: a waiter on another backend is woken by the notification") {
  test::PostgresSetup setup;
  PostgresBackendOptions options = setup.options(true);
  options.max_sleep = 60s;  // so that only the notification can wake it in time
  leaselock::LockManager<std::chrono::steady_clock, PostgresBackend> a{setup.make_server_time()};
  leaselock::LockManager<std::chrono::steady_clock, PostgresBackend> b{
      PostgresBackend{setup.conninfo, options}};
  auto held = a.try_acquire("handoff", Mode::exclusive, 60s);
  REQUIRE(held);
  std::atomic<bool> got{false};
  std::atomic<std::int64_t> woke_at{0};
  std::thread waiter([&] {
    auto lease = b.try_acquire("handoff", Mode::exclusive, 60s, 30s);
    woke_at = std::chrono::steady_clock::now().time_since_epoch().count();
    got = static_cast<bool>(lease);
  });
  // Wait until the waiter is queued, then release: it must hold the key within seconds
  // (its own re-read would come only after max_sleep, a minute).
  bool queued = false;
  for (int i = 0; i < 500 && !queued; ++i) {
    auto info = a.status("handoff");
    queued = info && info->waiters == 1;
    if (!queued) std::this_thread::sleep_for(10ms);
  }
  const auto released_at = std::chrono::steady_clock::now();
  CHECK(held.release());
  waiter.join();
  REQUIRE(queued);
  CHECK(got);
  const auto latency =
      std::chrono::steady_clock::duration(woke_at.load()) - released_at.time_since_epoch();
  MESSAGE("release -> waiter holds, across backends: "
          << std::chrono::duration_cast<std::chrono::microseconds>(latency).count() << " us");
  CHECK(latency < 5s);
}

TEST_CASE("postgres: an operation on a killed connection is retried, not applied twice") {
  test::PostgresSetup setup;
  // Its sessions carry a name of their own, so that only they are killed (other tests
  // may run against the same server at the same time).
  const std::string name = "killed_" + setup.schema;
  leaselock::LockManager<std::chrono::steady_clock, PostgresBackend> locks{
      PostgresBackend{setup.conninfo + " application_name=" + name, setup.options(false)}};
  auto first = locks.try_acquire("killed", Mode::exclusive, 30s);
  REQUIRE(first);
  const std::uint64_t first_fence = first.fence();
  leaselock::detail::postgres::Connection admin(setup.conninfo, 10s);
  leaselock::detail::postgres::Params params;
  params.text(name);
  const auto killed = admin.run(
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
      std::chrono::steady_clock::now() + 10s, params);
  CHECK(killed.i64(0, 0) >= 1);
  CHECK(first.release());
  auto second = locks.try_acquire("killed", Mode::exclusive, 30s);
  REQUIRE(second);
  CHECK(second.fence() == first_fence + 1);  // one grant in between: none made twice
  auto info = locks.status("killed");
  REQUIRE(info);
  CHECK(info->holders.size() == 1);
}

TEST_CASE("postgres: faults are StorageErrors naming the server with libpq's message") {
  const std::string conninfo = test::postgres_conninfo();
  PostgresBackendOptions quick;
  quick.connect_timeout = 2000ms;
  SUBCASE("bad conninfo") {
    const std::string error = test::storage_error_of([&] {
      PostgresBackend{"host=127.0.0.1 nonsense_option=1", quick};
    });
    CHECK(contains(error, "invalid connection option \"nonsense_option\""));
  }
  SUBCASE("wrong password") {
    const std::string error = test::storage_error_of([&] {
      PostgresBackend{conninfo + " password=wrong-password", quick};
    });
    CHECK(contains(error, "127.0.0.1"));
    CHECK(contains(error, "password authentication failed for user \"leaselock_admin\""));
  }
  SUBCASE("missing database") {
    const std::string error = test::storage_error_of([&] {
      PostgresBackend{conninfo + " dbname=no_such_database", quick};
    });
    CHECK(contains(error, "127.0.0.1"));
    CHECK(contains(error, "database \"no_such_database\" does not exist"));
  }
  SUBCASE("nobody listening") {
    const std::string error = test::storage_error_of([&] {
      PostgresBackend{conninfo + " port=1", quick};
    });
    CHECK(contains(error, "127.0.0.1:1"));
    CHECK(contains(error, "Connection refused"));
  }
  SUBCASE("a read-only server") {
    test::PostgresSetup setup;
    { PostgresBackend created{setup.conninfo, setup.options(true)}; }  // schema exists now
    const std::string read_only = conninfo + " options='-c default_transaction_read_only=on'";
    leaselock::LockManager<std::chrono::steady_clock, PostgresBackend> locks{
        PostgresBackend{read_only, setup.options(true)}};
    const std::string error =
        test::storage_error_of([&] { (void)locks.try_acquire("ro", Mode::exclusive, 1s); });
    CHECK_MESSAGE(contains(error, "127.0.0.1"), error);
    CHECK_MESSAGE(contains(error,
                           "cannot execute SELECT FOR SHARE in a read-only transaction "
                           "[SQLSTATE 25006]"),
                  error);
    // And nothing was stored.
    CHECK_FALSE(locks.status("ro"));
  }
}

TEST_CASE("postgres: a role that owns only its schema creates the tables there") {
  const std::string app = test::postgres_conninfo("LEASELOCK_TEST_POSTGRES_APP");
  PostgresBackendOptions options;
  options.schema = "leaselock_app";
  {
    leaselock::LockManager<std::chrono::steady_clock, PostgresBackend> locks{
        PostgresBackend{app, options}};
    auto lease = locks.try_acquire("app/key", Mode::exclusive, 10s);
    CHECK(lease);
  }
  options.schema = "another_schema";
  const std::string error = test::storage_error_of([&] { PostgresBackend{app, options}; });
  CHECK(contains(error, "permission denied for database leaselock_test"));
  admin_sql(
      "DROP TABLE IF EXISTS leaselock_app.leases, leaselock_app.floors, leaselock_app.meta;"
      "DROP FUNCTION IF EXISTS leaselock_app.apply");
}

TEST_CASE("postgres: a holder paused past its TTL has its stale write refused by the fence") {
  test::PostgresSetup setup;
  const std::string table =
      leaselock::detail::postgres::quote_identifier(setup.schema) + ".resource";
  { PostgresBackend created{setup.conninfo, setup.options(true)}; }  // the schema exists now
  admin_sql("CREATE TABLE " + table + " (id int PRIMARY KEY, fence bigint NOT NULL, value text);" +
            "INSERT INTO " + table + " VALUES (1, 0, 'initial')");
  // The storage a fenced holder writes to: it accepts a write only with a newer fence.
  const std::string write =
      "UPDATE " + table + " SET fence = $1, value = $2 WHERE id = 1 AND fence < $1";
  const auto fenced_write = [&](std::uint64_t fence, const std::string& value) {
    leaselock::detail::postgres::Connection conn(setup.conninfo, 10s);
    leaselock::detail::postgres::Params params;
    params.i64(static_cast<std::int64_t>(fence)).text(value);
    conn.run(write, std::chrono::steady_clock::now() + 10s, params);
    const auto check = conn.run("SELECT value FROM " + table + " WHERE id = 1",
                                std::chrono::steady_clock::now() + 10s);
    return std::string(check.bytes(0, 0)) == value;
  };
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    int code = 3;
    try {
      leaselock::LockManager<std::chrono::system_clock, PostgresBackend> locks{
          setup.make_server_time()};
      auto lease = locks.try_acquire("resource", Mode::exclusive, 1s);
      if (lease) {
        const std::uint64_t fence = lease.fence();
        (void)lease.detach();
        if (::write(pipe_fds[1], &fence, sizeof fence) == sizeof fence) {
          ::raise(SIGSTOP);  // paused here, past its TTL
          code = fenced_write(fence, "stale") ? 1 : 0;
        }
      }
    } catch (...) {
      code = 4;
    }
    ::_exit(code);
  }
  ::close(pipe_fds[1]);
  std::uint64_t stale_fence = 0;
  REQUIRE(::read(pipe_fds[0], &stale_fence, sizeof stale_fence) == sizeof stale_fence);
  ::close(pipe_fds[0]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, WUNTRACED) == child);
  REQUIRE(WIFSTOPPED(status));
  {
    leaselock::LockManager<std::chrono::system_clock, PostgresBackend> locks{
        setup.make_server_time()};
    auto lease = locks.try_acquire("resource", Mode::exclusive, 30s, 10s);  // after its TTL
    REQUIRE(lease);
    CHECK(lease.fence() > stale_fence);
    CHECK(fenced_write(lease.fence(), "fresh"));
  }
  ::kill(child, SIGCONT);
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);  // its write was refused
  CHECK(fenced_write(0, "never") == false);
}

TEST_CASE("postgres: a waiter that stops moving its place on leaves the queue; a live one stays") {
  // Manual time (server_time = false): max_sleep 1 s, so a waiter's place lasts 3 s
  // unless its thread moves it on. `stopped` waits on a clock view that is frozen once it
  // is queued (a process stopped in its wait); `live` keeps running. 20 s later only
  // the live one is queued, with its first ticket: it was never dropped nor queued anew.
  test::PostgresSetup setup;
  PostgresBackendOptions options = setup.options(false);
  options.max_sleep = 1s;
  leaselock::ManualClock manual;
  FreezableClock frozen_view{manual};
  leaselock::LockManager<leaselock::ManualClock, PostgresBackend> locks{
      PostgresBackend{setup.conninfo, options}, manual};
  leaselock::LockManager<FreezableClock, PostgresBackend> stopping{
      PostgresBackend{setup.conninfo, options}, frozen_view};
  CHECK(locks.backend().waiter_lease() == 3'000'000'000);
  auto holder = locks.try_acquire("k", Mode::exclusive, 1h);
  REQUIRE(holder);
  const auto queued = [&](std::size_t n) {
    return eventually([&] {
      const auto info = locks.status("k");
      return info && info->waiters == n;
    });
  };
  auto stopped =
      std::async(std::launch::async, [&] { return stopping.acquire("k", Mode::exclusive, 10s); });
  REQUIRE(queued(1));
  auto live =
      std::async(std::launch::async, [&] { return locks.acquire("k", Mode::exclusive, 10s); });
  const AtExit finish([&] {
    frozen_view.freeze(false);
    (void)holder.release();
    const auto running = [](auto& future) {
      return future.valid() && future.wait_for(10ms) != std::future_status::ready;
    };
    for (int i = 0; i < 1000 && (running(live) || running(stopped)); ++i)
      manual.advance(1h);  // every lease and place runs out
  });
  REQUIRE(queued(2));
  frozen_view.freeze(true);
  const leaselock::Token live_token = [&] {
    const auto record = stored_record(setup.schema, "k");
    REQUIRE(record);
    REQUIRE(record->waiters.size() == 2);
    return record->waiters[1].token;
  }();
  for (int second = 1; second <= 20; ++second) {
    manual.advance(1s);
    const auto now = manual.now().time_since_epoch().count();
    // The live waiter keeps at least half a lease ahead of the clock (it moves its place
    // on when less is left); wait until it has.
    REQUIRE_MESSAGE(eventually([&] {
                      const auto record = stored_record(setup.schema, "k");
                      const auto held =
                          record ? leaselock::detail::queued_deadline(*record, live_token)
                                 : std::nullopt;
                      return held && *held - now >= 1'500'000'000;
                    }),
                    "the live waiter did not move its place on, at second " << second);
  }
  const auto record = stored_record(setup.schema, "k");
  REQUIRE(record);
  REQUIRE(record->waiters.size() == 1);  // the stopped one left the queue
  CHECK(record->waiters[0].token == live_token);
  CHECK(record->waiters[0].ticket == 2);  // the live one kept its place from the start
  CHECK(record->last_ticket == 2);        // and nobody was queued anew
  const std::uint64_t fence = holder.fence();
  CHECK(holder.release());  // hands the key to the live waiter, not to the stopped one
  auto granted = live.get();
  REQUIRE(granted);
  CHECK(granted.fence() == fence + 1);
  // Let the stopped one run again: it finds its place gone and queues anew, behind.
  frozen_view.freeze(false);
  REQUIRE(eventually([&] {
    const auto info = locks.status("k");
    return info && info->waiters == 1;
  }));
  CHECK(granted.release());
  auto late = stopped.get();
  REQUIRE(late);
  CHECK(late.fence() == fence + 2);
}

TEST_CASE("postgres: a waiter killed in acquire() leaves the queue within its waiter lease") {
  // Real processes and server time: max_sleep 100 ms, so a place lasts 300 ms unless its
  // waiter moves it on. The killed waiter is first in the queue; the one behind it gets
  // the key from the holder's release once the dead one's place lapsed.
  test::PostgresSetup setup;
  PostgresBackendOptions options = setup.options(true);
  options.max_sleep = 100ms;
  { PostgresBackend created{setup.conninfo, options}; }  // the schema exists now
  int go[2];
  REQUIRE(::pipe(go) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(go[1]);
    char byte = 0;
    if (::read(go[0], &byte, 1) == 1) {
      try {
        leaselock::LockManager<std::chrono::system_clock, PostgresBackend> locks{
            PostgresBackend{setup.conninfo, options}};
        auto lease = locks.acquire("k", Mode::exclusive, 60s);  // killed while it waits
      } catch (...) {
      }
    }
    ::_exit(3);
  }
  ::close(go[0]);
  bool reaped = false;
  const AtExit reap([&] {
    if (reaped) return;
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
  });
  leaselock::LockManager<std::chrono::system_clock, PostgresBackend> locks{
      PostgresBackend{setup.conninfo, options}};
  auto holder = locks.try_acquire("k", Mode::exclusive, 60s);
  REQUIRE(holder);
  const auto waiters = [&] {
    const auto info = locks.status("k");
    return info ? info->waiters : std::size_t{0};
  };
  REQUIRE(::write(go[1], "g", 1) == 1);
  ::close(go[1]);
  REQUIRE(eventually([&] { return waiters() == 1; }));
  leaselock::LockManager<std::chrono::system_clock, PostgresBackend> others{
      PostgresBackend{setup.conninfo, options}};
  auto next =
      std::async(std::launch::async, [&] { return others.acquire("k", Mode::exclusive, 60s); });
  const AtExit finish([&] { (void)holder.release(); });
  REQUIRE(eventually([&] { return waiters() == 2; }));
  REQUIRE(::kill(child, SIGKILL) == 0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  reaped = true;
  REQUIRE(WIFSIGNALED(status));
  const auto killed_at = std::chrono::steady_clock::now();
  // The live waiter's re-reads (every 100 ms) drop the dead one once its place lapsed:
  // within 300 ms + 100 ms, and 3 s here for a loaded machine.
  REQUIRE(eventually([&] { return waiters() == 1; }, 10000ms));
  const auto dropped_after = std::chrono::steady_clock::now() - killed_at;
  MESSAGE("the dead waiter left the queue "
          << std::chrono::duration_cast<std::chrono::milliseconds>(dropped_after).count()
          << " ms after it was killed");
  CHECK(dropped_after < 3s);
  const std::uint64_t fence = holder.fence();
  CHECK(holder.release());
  REQUIRE(next.wait_for(10s) == std::future_status::ready);
  auto lease = next.get();
  REQUIRE(lease);
  CHECK(lease.fence() == fence + 1);  // no grant went to the dead waiter
}

TEST_CASE("postgres: a notice names whom a change concerns and carries their grants") {
  namespace pg = leaselock::detail::postgres;
  namespace sem = leaselock::detail;
  const auto request = [](Mode mode) {
    return sem::Request{mode, 100, leaselock::Token::generate(), "o"};
  };
  const auto writer = request(Mode::exclusive);
  const auto reader_a = request(Mode::shared);
  const auto reader_b = request(Mode::shared);
  const auto next_writer = request(Mode::exclusive);
  sem::Record before;
  REQUIRE(sem::try_grant(before, writer, 0, nullptr));
  sem::enqueue(before, reader_a, sem::kForever);
  sem::enqueue(before, reader_b, sem::kForever);
  sem::enqueue(before, next_writer, sem::kForever);
  sem::Record after = before;
  REQUIRE(sem::release(after, writer.token, 10, nullptr) == sem::Released::released);
  const std::string text = pg::make_notice(42, before, after);
  const auto notice = pg::parse_notice(text);
  REQUIRE_MESSAGE(notice, text);
  CHECK(notice->key_hash == 42);
  CHECK_FALSE(notice->everyone);
  REQUIRE(notice->waiters.size() == 3);  // both readers granted, the writer now first
  for (int i = 0; i < 2; ++i) {
    const auto& reader = i == 0 ? reader_a : reader_b;
    const sem::Holder* holder = sem::find_holder(after, reader.token);
    REQUIRE(holder);
    CHECK(notice->waiters[static_cast<std::size_t>(i)].token_hash == pg::token_hash(reader.token));
    const auto& grant = notice->waiters[static_cast<std::size_t>(i)].grant;
    REQUIRE(grant);
    CHECK(grant->mode == Mode::shared);
    CHECK(grant->fence == holder->fence);
    CHECK(grant->acquired_at == 10);
    CHECK(grant->expires_at == 110);
  }
  CHECK(notice->waiters[2].token_hash == pg::token_hash(next_writer.token));
  CHECK_FALSE(notice->waiters[2].grant);
  CHECK(text.find(next_writer.token.to_string()) == std::string::npos);  // no token in it

  // A batch too large for one payload: a bare notice, for every waiter of the key.
  sem::Record crowded;
  REQUIRE(sem::try_grant(crowded, writer, 0, nullptr));
  for (int i = 0; i < 400; ++i) sem::enqueue(crowded, request(Mode::shared), sem::kForever);
  sem::Record released = crowded;
  REQUIRE(sem::release(released, writer.token, 10, nullptr) == sem::Released::released);
  const std::string bare = pg::make_notice(7, crowded, released);
  CHECK(bare == "7");
  const auto everyone = pg::parse_notice(bare);
  REQUIRE(everyone);
  CHECK(everyone->everyone);
  CHECK(everyone->waiters.empty());

  for (const char* bad :
       {"", "x", "42 ", "42 z1", "42 w", "42 g1:q:1:2:3", "42 g1:s:1:2", "42 g1:s:1:2:3x", "42w1"})
    CHECK_FALSE_MESSAGE(pg::parse_notice(bad), bad);
}

TEST_CASE("postgres: a waiter handed the key holds it from the notification, without a read") {
  test::PostgresSetup setup;
  PostgresBackendOptions options = setup.options(true);
  options.max_sleep = 60s;  // no periodic re-read in the way
  leaselock::LockManager<std::chrono::system_clock, PostgresBackend> a{setup.make_server_time()};
  leaselock::LockManager<std::chrono::system_clock, PostgresBackend> b{
      PostgresBackend{setup.conninfo, options}};
  auto held = a.try_acquire("k", Mode::exclusive, 60s);
  REQUIRE(held);
  auto waiter =
      std::async(std::launch::async, [&] { return b.acquire("k", Mode::exclusive, 60s); });
  const AtExit finish([&] { (void)held.release(); });
  REQUIRE(eventually([&] {
    const auto info = a.status("k");
    return info && info->waiters == 1;
  }));
  const std::uint64_t sent = b.backend().statements();  // its queueing is committed
  const std::uint64_t fence = held.fence();
  CHECK(held.release());
  REQUIRE(waiter.wait_for(10s) == std::future_status::ready);
  auto lease = waiter.get();
  REQUIRE(lease);
  CHECK(lease.fence() == fence + 1);
  CHECK(b.backend().statements() == sent);  // no round trip after the release
  const auto info = a.status("k");
  REQUIRE(info);
  REQUIRE(info->holders.size() == 1);
  CHECK(info->holders[0].token == lease.token());
  CHECK(info->holders[0].fence == lease.fence());
  // Its copy of the row is from before the grant: its release reads it, then writes.
  CHECK(lease.release());
  CHECK(b.backend().statements() == sent + 2);
  CHECK_FALSE(a.status("k"));
}

TEST_CASE("postgres: a grant announced too late to use is not taken from the notification") {
  // Manual time: the waiter is handed a 1 s grant and stopped before it looks at it; 2 s
  // later the grant has lapsed. The notification's grant must not be believed: the
  // waiter reads the row and is granted anew, with the next fence.
  test::PostgresSetup setup;
  PostgresBackendOptions options = setup.options(false);
  options.max_sleep = 1h;  // only the notification wakes it
  leaselock::ManualClock manual;
  FreezableClock frozen_view{manual};
  leaselock::LockManager<leaselock::ManualClock, PostgresBackend> a{
      PostgresBackend{setup.conninfo, options}, manual};
  leaselock::LockManager<FreezableClock, PostgresBackend> b{
      PostgresBackend{setup.conninfo, options}, frozen_view};
  auto held = a.try_acquire("k", Mode::exclusive, 10s);
  REQUIRE(held);
  auto waiter = std::async(std::launch::async, [&] { return b.acquire("k", Mode::exclusive, 1s); });
  const AtExit finish([&] {
    frozen_view.freeze(false);
    (void)held.release();
  });
  REQUIRE(eventually([&] {
    const auto info = a.status("k");
    return info && info->waiters == 1;
  }));
  frozen_view.freeze(true);
  const std::uint64_t fence = held.fence();
  CHECK(held.release());                 // grants it [now, now + 1 s)
  REQUIRE(frozen_view.wait_for_held());  // woken by the notification, held before it looks
  manual.advance(2s);                    // the grant it was told of lapses
  frozen_view.freeze(false);
  REQUIRE(waiter.wait_for(10s) == std::future_status::ready);
  auto lease = waiter.get();
  REQUIRE(lease);
  CHECK(lease.fence() == fence + 2);  // granted anew, not the lapsed grant
  CHECK(lease.expires_at().time_since_epoch() > manual.now().time_since_epoch());
  const auto info = a.status("k");
  REQUIRE(info);  // and the grant is the row's
  REQUIRE(info->holders.size() == 1);
  CHECK(info->holders[0].token == lease.token());
  CHECK(lease.release());
}
