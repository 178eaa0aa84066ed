// Stress in server time: hosts (backends, each with its own pool and listener, and a
// clock of its own, one an hour fast and one an hour slow) share one schema; every
// holder logs what it certainly saw in the server's time, and the checker judges
// overlap and fence order by the server's clock (server_time_log.hpp). Also the
// checker's own test: it finds what it must find.
#include <map>
#include <random>
#include <thread>

#include "../support.hpp"
#include "server_time_log.hpp"

using namespace std::chrono_literals;
using leaselock::Mode;
namespace st = test::server_time;

namespace {

st::Held held(const std::string& host, leaselock::Mode mode, std::uint64_t fence, st::Nanos asked,
              st::Nanos got, st::Nanos end) {
  st::Held h;
  h.host = host;
  h.key = "k";
  h.mode = mode;
  h.fence = fence;
  h.asked = asked;
  h.got = got;
  h.start = got + 1000;
  h.end = end;
  return h;
}

}  // namespace

TEST_CASE("postgres: the server-time checker finds overlaps, repeated fences and fence order") {
  const Mode x = Mode::exclusive;
  const Mode s = Mode::shared;
  // A clean history: shared leases together, exclusive ones apart, fences in order.
  std::vector<st::Held> clean{
      held("a", s, 10, 0, 10000, 50000), held("b", s, 20, 5000, 12000, 40000),
      held("a", x, 30, 30000, 60000, 90000), held("b", x, 40, 70000, 95000, 99000)};
  st::Report report = st::check(clean);
  CHECK(report.violations() == 0);
  CHECK(report.intervals == 4);
  // The line format round-trips.
  const auto parsed = st::parse(st::format(clean[1]));
  REQUIRE(parsed);
  CHECK(st::format(*parsed) == st::format(clean[1]));
  CHECK_FALSE(st::parse("lease a k q 1 2 3 4 5"));

  // One more lease: exactly one violation, of the kind `counted` counts.
  const auto one_violation = [&](const st::Held& extra, std::size_t st::Report::*counted) {
    clean.push_back(extra);
    report = st::check(clean);
    CHECK(report.*counted == 1);
    CHECK(report.violations() == 1);
  };
  SUBCASE("an exclusive lease inside a shared one") {
    one_violation(held("c", x, 25, 1000, 20000, 30000), &st::Report::overlaps);
  }
  SUBCASE("a shared lease inside an exclusive one") {
    one_violation(held("c", s, 35, 61000, 70000, 80000), &st::Report::overlaps);
  }
  SUBCASE("a fence given twice") {
    one_violation(held("c", s, 40, 100000, 110000, 120000), &st::Report::repeated_fences);
  }
  SUBCASE("a lower fence granted after a higher one") {  // asked after 20 was got
    one_violation(held("c", s, 15, 200000, 210000, 220000), &st::Report::order_errors);
  }
  SUBCASE("overlaps of no known interval, or on other keys, are none") {
    st::Held unknown = held("c", x, 50, 1000, 0, 0);
    unknown.start = 0;
    st::Held other = held("c", x, 1, 1000, 20000, 30000);
    other.key = "other";
    clean.push_back(unknown);
    clean.push_back(other);
    report = st::check(clean);
    CHECK(report.violations() == 0);
    CHECK(report.intervals == 5);
  }
  CHECK(report.examples.size() == report.violations());
}

TEST_CASE("postgres: stress in server time, hosts with skewed clocks on one schema" *
          doctest::timeout(120)) {
  using Manager = leaselock::LockManager<test::SkewedClock, leaselock::PostgresBackend>;
  test::PostgresSetup setup;
  const std::vector<std::chrono::seconds> skews{0s, 1h, -1h};
  std::vector<std::unique_ptr<Manager>> hosts;
  for (const auto skew : skews)
    hosts.push_back(std::make_unique<Manager>(setup.make_server_time(), test::SkewedClock{skew}));
  constexpr int kThreadsPerHost = 2;
  constexpr int kOps = 150;
  constexpr int kKeys = 6;
  struct Log {
    std::vector<st::Held> held;
    std::size_t timeouts = 0;
    std::size_t outlived = 0;  // held on past their TTL
    std::string error;
  };
  std::vector<Log> logs(hosts.size() * kThreadsPerHost);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < logs.size(); ++t) {
    threads.emplace_back([&, t] {
      Log& log = logs[t];
      const std::size_t host = t / kThreadsPerHost;
      std::mt19937_64 random(t * 7919u + 3);
      try {
        st::ServerView view(setup.conninfo, setup.schema, 10s);
        for (int op = 0; op < kOps; ++op) {
          // Half the operations on two hot keys, so that waits and hand-offs are common.
          const int key = static_cast<int>(random() % 2 ? random() % 2 : random() % kKeys);
          const Mode mode = random() % 3 == 0 ? Mode::exclusive : Mode::shared;
          const auto ttl = std::chrono::milliseconds(40 + random() % 200);
          const auto wait = std::chrono::milliseconds(random() % 4 == 0 ? 0 : random() % 300);
          const bool outlive = random() % 12 == 0;
          const auto hold = outlive ? ttl + 30ms : std::chrono::milliseconds(random() % 20);
          const auto h = st::hold_one(
              *hosts[host], view, "host" + std::to_string(host), "stress/" + std::to_string(key),
              mode, ttl, wait, random() % 20 != 0, [&] { std::this_thread::sleep_for(hold); });
          if (!h) {
            ++log.timeouts;
            continue;
          }
          if (outlive) ++log.outlived;
          log.held.push_back(*h);
        }
      } catch (const std::exception& error) {
        log.error = error.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();

  std::vector<st::Held> all;
  std::size_t timeouts = 0;
  std::size_t outlived = 0;
  std::map<std::string, std::size_t> per_host;
  for (const Log& log : logs) {
    CHECK_MESSAGE(log.error.empty(), log.error);
    all.insert(all.end(), log.held.begin(), log.held.end());
    timeouts += log.timeouts;
    outlived += log.outlived;
    for (const auto& h : log.held)
      if (h.has_interval()) ++per_host[h.host];
  }
  const st::Report report = st::check(all);
  MESSAGE("leases: " << report.leases << ", with an interval: " << report.intervals
                     << ", timeouts: " << timeouts << ", held past their TTL: " << outlived);
  std::string examples;
  for (const auto& e : report.examples) examples += e + "\n";
  CHECK_MESSAGE(report.overlaps == 0, examples);
  CHECK_MESSAGE(report.repeated_fences == 0, examples);
  CHECK_MESSAGE(report.order_errors == 0, examples);
  // Work was done on every host, and the load really contended.
  CHECK(per_host.size() == hosts.size());
  for (const auto& [host, count] : per_host) CHECK_MESSAGE(count >= kOps / 2, host);
  CHECK(report.intervals >= all.size() * 9 / 10);
  CHECK(timeouts > 0);
  CHECK(outlived > 0);
}
