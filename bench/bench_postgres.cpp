// bench/bench_postgres.cpp — PostgresBackend beside what the same server does by hand, in
// one run: a SELECT 1 round trip, a pg_advisory_lock pair, a hand-written lease row
// (upsert to take, update to give back) with synchronous_commit on and off, a blocked
// pg_advisory_lock hand-off, and Redis SET NX PX + compare-and-delete where a Redis
// server is given. Every figure is printed beside its baseline and the ratio.
//
//   tools/bench_postgres.sh                  # a throwaway server (and redis-server), then this
//   export LEASELOCK_BENCH_POSTGRES='host=... dbname=...'   # and LEASELOCK_BENCH_REDIS_PORT
//   build/release/bench/bench_postgres [--quick]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <leaselock/backends/postgres.hpp>

#include "bench_common.hpp"

namespace {

using namespace std::chrono_literals;
using leaselock::Mode;
using leaselock::detail::postgres::Connection;
using leaselock::detail::postgres::Params;
using Manager = leaselock::LockManager<std::chrono::system_clock, leaselock::PostgresBackend>;

double seconds_per_run = 0.6;
int reps = 5;

leaselock::detail::postgres::SteadyTime later() { return std::chrono::steady_clock::now() + 30s; }

std::string with_commit(const std::string& conninfo, bool synchronous) {
  return conninfo + (synchronous ? " options='-c synchronous_commit=on'"
                                 : " options='-c synchronous_commit=off'");
}

void row(const char* what, double value_us, const char* base, double base_us) {
  std::printf("| %s | %s µs | %s | %s µs | %s× |\n", what, bench::fmt("%.1f", value_us).c_str(),
              base, bench::fmt("%.1f", base_us).c_str(),
              bench::fmt("%.2f", value_us / base_us).c_str());
  std::fflush(stdout);
}

// The hand-written lease row users write instead: take with an upsert that only
// overwrites an expired row, give back by token.
struct LeaseRow {
  Connection conn;
  std::string token = "0123456789abcdef";
  explicit LeaseRow(const std::string& conninfo) : conn(conninfo, 5s) {
    conn.run_script(
        "CREATE TABLE IF NOT EXISTS bench_lease (key text PRIMARY KEY, token bytea NOT NULL,"
        " expires_at timestamptz NOT NULL, fence bigint NOT NULL)",
        later());
  }
  void take_and_give_back(const std::string& key) {
    Params take;
    take.text(key).bytes(token);
    const auto taken = conn.run_prepared(
        "take",
        "INSERT INTO bench_lease VALUES ($1, $2, clock_timestamp() + interval '30 s', 1)"
        " ON CONFLICT (key) DO UPDATE SET token = excluded.token,"
        " expires_at = excluded.expires_at, fence = bench_lease.fence + 1"
        " WHERE bench_lease.expires_at <= clock_timestamp() RETURNING fence",
        take, later());
    if (taken.rows() != 1) throw std::runtime_error("lease row: not taken");
    conn.run_prepared("give_back",
                      "UPDATE bench_lease SET expires_at = clock_timestamp()"
                      " WHERE key = $1 AND token = $2",
                      take, later());
  }
};

// A minimal RESP client for the Redis row.
class Redis {
 public:
  explicit Redis(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
      throw std::runtime_error("redis: cannot connect");
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Redis() { ::close(fd_); }
  // Sends a command, returns the first line of the reply.
  std::string command(std::initializer_list<std::string> parts) {
    std::string out = "*" + std::to_string(parts.size()) + "\r\n";
    for (const std::string& p : parts) out += "$" + std::to_string(p.size()) + "\r\n" + p + "\r\n";
    if (::write(fd_, out.data(), out.size()) != static_cast<ssize_t>(out.size()))
      throw std::runtime_error("redis: write");
    std::string line;
    char c = 0;
    while (::read(fd_, &c, 1) == 1) {
      if (c == '\n') break;
      if (c != '\r') line += c;
    }
    if (!line.empty() && line[0] == '$' && line != "$-1") {  // a bulk string: read its body
      std::string body(static_cast<std::size_t>(std::stol(line.substr(1))) + 2, '\0');
      std::size_t got = 0;
      while (got < body.size()) {
        const ssize_t n = ::read(fd_, body.data() + got, body.size() - got);
        if (n <= 0) throw std::runtime_error("redis: read");
        got += static_cast<std::size_t>(n);
      }
    }
    return line;
  }

 private:
  int fd_ = -1;
};

template <class Op>
double us(Op op) {
  return bench::ns_per_op<1>(op, seconds_per_run) / 1000.0;
}

// Exclusive acquire+release on one key, uncontended.
double leaselock_pair(Manager& locks, const std::string& key) {
  return us([&] {
    auto lease = locks.try_acquire(key, Mode::exclusive, 30s);
    if (!lease) throw std::runtime_error("leaselock: not granted");
    lease.release();
  });
}

// Release -> waiter on another connection holds, in microseconds, `n` times. wait()
// blocks until it is handed the lock, returns bench::mono_ns() of that moment, then gives
// the lock back (after the moment it returns).
template <class Hold, class Wait, class Release, class Queued>
std::vector<std::int64_t> handoffs(int n, Hold hold, Wait wait, Release release, Queued queued) {
  std::vector<std::int64_t> samples;
  std::mutex mutex;
  std::condition_variable cv;
  int round = -1;
  std::atomic<std::int64_t> got_at{0};
  std::atomic<bool> done{false};
  std::thread waiter([&] {
    for (int r = 0; r < n; ++r) {
      {
        std::unique_lock<std::mutex> lock(mutex);
        cv.wait(lock, [&] { return round == r; });
      }
      got_at = wait();
      done = true;
    }
  });
  for (int r = 0; r < n; ++r) {
    hold();
    done = false;
    {
      std::lock_guard<std::mutex> lock(mutex);
      round = r;
    }
    cv.notify_one();
    queued();
    const std::int64_t released_at = bench::mono_ns();
    release();
    while (!done) std::this_thread::yield();
    samples.push_back((got_at - released_at) / 1000);
  }
  waiter.join();
  return samples;
}

}  // namespace

int main(int argc, char** argv) {
  if (!bench::parse_flags(argc, argv, {"--quick"}, [](std::string_view) {
        seconds_per_run = 0.2;
        reps = 3;
      }))
    return 2;
  const char* env = std::getenv("LEASELOCK_BENCH_POSTGRES");
  if (!env || !*env) {
    std::fprintf(stderr,
                 "bench_postgres: set LEASELOCK_BENCH_POSTGRES (or use tools/bench_postgres.sh)\n");
    return 2;
  }
  const std::string conninfo = env;
  std::printf("CPU: %s; load: %s\n\n", bench::cpu_model().c_str(), bench::loadavg().c_str());
  std::printf("| what | leaselock | baseline | baseline | ratio |\n|---|---|---|---|---|\n");

  // 1-2. The floor: a round trip, and PostgreSQL's own (session) lock.
  Connection plain(conninfo, 5s);
  const double select1 = bench::median([&] {
    std::vector<double> v;
    for (int r = 0; r < reps; ++r)
      v.push_back(us([&] { plain.run_prepared("one", "SELECT 1", Params(), later()); }));
    return v;
  }());
  const double advisory = bench::median([&] {
    std::vector<double> v;
    Params key;
    key.i64(42);
    for (int r = 0; r < reps; ++r)
      v.push_back(us([&] {
        plain.run_prepared("lock", "SELECT pg_advisory_lock($1)", key, later());
        plain.run_prepared("unlock", "SELECT pg_advisory_unlock($1)", key, later());
      }));
    return v;
  }());
  std::printf("| SELECT 1 round trip | | | %s µs | |\n", bench::fmt("%.1f", select1).c_str());
  std::printf("| pg_advisory_lock + unlock | | | %s µs | |\n",
              bench::fmt("%.1f", advisory).c_str());

  // 3. Uncontended exclusive acquire+release vs the hand-written lease row, both commit modes.
  leaselock::PostgresBackendOptions options;
  options.schema = "leaselock_bench";
  double leaselock_on = 0;
  for (const bool synchronous : {true, false}) {
    const std::string info = with_commit(conninfo, synchronous);
    LeaseRow lease_row(info);
    Manager locks{leaselock::PostgresBackend{info, options}};
    const bench::Pair pair = bench::interleaved(
        reps, [&] { return leaselock_pair(locks, "bench/uncontended"); },
        [&] { return us([&] { lease_row.take_and_give_back("bench/uncontended"); }); });
    const std::string what = std::string("exclusive acquire+release, synchronous_commit=") +
                             (synchronous ? "on" : "off");
    row(what.c_str(), pair.ma(), "hand-written lease row", pair.mb());
    if (synchronous) leaselock_on = pair.ma();
    if (!synchronous)
      row("  same (off), against the advisory pair", pair.ma(), "advisory pair", advisory);
  }
  row("exclusive acquire+release (on), against SELECT 1", leaselock_on, "SELECT 1", select1);

  // 4. Hand-off to a waiter on another connection vs a blocked pg_advisory_lock, with
  // each synchronous_commit (the release is a commit; the advisory unlock is not).
  for (const bool synchronous : {false, true}) {
    const std::string info = with_commit(conninfo, synchronous);
    const int n = reps * 20;
    Manager a{leaselock::PostgresBackend{info, options}};
    Manager b{leaselock::PostgresBackend{info, options}};
    Manager::Lease held;
    Manager::Lease got;
    auto ours = handoffs(
        n, [&] { held = a.try_acquire("bench/handoff", Mode::exclusive, 30s); },
        [&] {
          got = b.acquire("bench/handoff", Mode::exclusive, 30s);
          const std::int64_t at = bench::mono_ns();
          got.release();
          return at;
        },
        [&] { held.release(); },
        [&] {
          for (;;) {
            auto status = a.status("bench/handoff");
            if (status && status->waiters == 1) return;
          }
        });
    Connection holder(info, 5s);
    Connection blocked(info, 5s);
    Params key;
    key.i64(7);
    auto theirs = handoffs(
        n, [&] { holder.run_prepared("lock", "SELECT pg_advisory_lock($1)", key, later()); },
        [&] {
          blocked.run_prepared("lock", "SELECT pg_advisory_lock($1)", key, later());
          const std::int64_t at = bench::mono_ns();
          blocked.run_prepared("unlock", "SELECT pg_advisory_unlock($1)", key, later());
          return at;
        },
        [&] { holder.run_prepared("unlock", "SELECT pg_advisory_unlock($1)", key, later()); },
        [&] { std::this_thread::sleep_for(2ms); });
    std::vector<std::int64_t> ours_copy = ours;
    std::vector<std::int64_t> theirs_copy = theirs;
    const std::string what = std::string(
                                 "hand-off: release -> waiter on another backend holds, "
                                 "synchronous_commit=") +
                             (synchronous ? "on" : "off") + ", median";
    row(what.c_str(), bench::percentile(ours, 0.5), "blocked pg_advisory_lock hand-off",
        bench::percentile(theirs, 0.5));
    row("  same, p99", bench::percentile(ours_copy, 0.99), "advisory hand-off p99",
        bench::percentile(theirs_copy, 0.99));
  }

  // 5. 8 client threads on distinct keys vs one client.
  {
    leaselock::PostgresBackendOptions wide = options;
    wide.pool_size = 8;
    Manager locks{leaselock::PostgresBackend{conninfo, wide}};
    const auto throughput = [&](int threads) {
      std::atomic<std::uint64_t> pairs{0};
      std::atomic<bool> stop{false};
      std::vector<std::thread> workers;
      for (int t = 0; t < threads; ++t)
        workers.emplace_back([&, t] {
          const std::string key = "bench/thread/" + std::to_string(t);
          while (!stop) {
            locks.try_acquire(key, Mode::exclusive, 30s).release();
            ++pairs;
          }
        });
      const std::int64_t start = bench::mono_ns();
      std::this_thread::sleep_for(std::chrono::duration<double>(seconds_per_run * 3));
      stop = true;
      for (auto& w : workers) w.join();
      return static_cast<double>(pairs) * 1e9 / static_cast<double>(bench::mono_ns() - start);
    };
    const double one = throughput(1);
    const double eight = throughput(8);
    std::printf("| 8 threads on distinct keys | %s pairs/s | 1 thread | %s pairs/s | %s× |\n",
                bench::fmt("%.0f", eight).c_str(), bench::fmt("%.0f", one).c_str(),
                bench::fmt("%.2f", eight / one).c_str());
  }

  // 6. 10,000 keys held: the cost per operation, and list().
  {
    Manager locks{leaselock::PostgresBackend{conninfo, options}};
    const double empty = leaselock_pair(locks, "bench/alone");
    std::vector<Manager::Lease> held;
    const auto keys = bench::make_keys(10000);
    for (const std::string& key : keys)
      held.push_back(locks.try_acquire(key, Mode::exclusive, 600s));
    const double full = leaselock_pair(locks, "bench/alone");
    row("acquire+release with 10,000 keys held", full, "with none held", empty);
    const std::int64_t start = bench::mono_ns();
    const auto listed = locks.list();
    const double list_ms = static_cast<double>(bench::mono_ns() - start) / 1e6;
    std::printf("| list() of %zu keys | %s ms | | | |\n", listed.size(),
                bench::fmt("%.1f", list_ms).c_str());
    held.clear();
    locks.backend().remove_idle();
  }

  // 7. What users pick instead: Redis SET NX PX + compare-and-delete.
  if (const char* port = std::getenv("LEASELOCK_BENCH_REDIS_PORT")) {
    Redis redis(std::atoi(port));
    const std::string script =
        "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
        "else return 0 end";
    const double ping = us([&] { redis.command({"PING"}); });
    const double pair = us([&] {
      if (redis.command({"SET", "bench/redis", "token", "NX", "PX", "30000"}) != "+OK")
        throw std::runtime_error("redis: not set");
      redis.command({"EVAL", script, "1", "bench/redis", "token"});
    });
    row("Redis SET NX PX + compare-and-delete", pair, "Redis PING", ping);
    row("exclusive acquire+release (on), against Redis", leaselock_on, "Redis pair", pair);
  } else {
    std::printf("| Redis | not measured: LEASELOCK_BENCH_REDIS_PORT not set | | | |\n");
  }
  return 0;
}
