// The parts PostgresBackend is made of that need no server, each on its own: the estimate
// of the server's clock, the rows and floors last known, and a decision's validity window
// and statement.
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <leaselock/detail/postgres/decision.hpp>
#include <leaselock/detail/postgres/row_cache.hpp>
#include <leaselock/detail/postgres/server_clock.hpp>

#include "../support.hpp"

namespace postgres = leaselock::detail::postgres;
using leaselock::Token;
using leaselock::detail::Holder;
using leaselock::detail::kForever;
using leaselock::detail::Nanos;
using leaselock::detail::Record;
using leaselock::detail::Waiter;

namespace {

constexpr Nanos kSecond = 1000000000;

Record record_with(Nanos holder_expires_at, Nanos waiter_deadline) {
  Record record;
  record.holders.push_back(
      Holder{Token(1, 2), leaselock::Mode::exclusive, 1, 0, holder_expires_at, "holder"});
  Waiter waiter;
  waiter.ticket = 1;
  waiter.token = Token(3, 4);
  waiter.deadline = waiter_deadline;
  record.waiters.push_back(waiter);
  return record;
}

// Which of a statement's parameters are NULL.
std::vector<bool> nulls_of(const postgres::Params& params) {
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  params.pointers(values, lengths, formats);
  std::vector<bool> nulls;
  for (const char* value : values) nulls.push_back(value == nullptr);
  return nulls;
}

}  // namespace

TEST_CASE("postgres parts: the server clock's offset bound is the least of the last second") {
  postgres::ServerClock clock;
  // Server 20 s, sent at manager clock 19 s: server minus clock is at most 1 s + 1 us.
  clock.observe(20 * kSecond, 4 * kSecond, 5 * kSecond, 19 * kSecond);
  CHECK(clock.clock_offset() == kSecond + 1000);
  // A larger bound within the same second does not replace it...
  clock.observe(20 * kSecond + kSecond / 2, 5 * kSecond + kSecond / 5,
                5 * kSecond + kSecond * 3 / 10, 19 * kSecond + kSecond * 4 / 10);
  CHECK(clock.clock_offset() == kSecond + 1000);
  // ...a smaller one does...
  clock.observe(20 * kSecond + kSecond / 2, 5 * kSecond + kSecond / 5,
                5 * kSecond + kSecond * 3 / 10, 19 * kSecond + kSecond * 6 / 10);
  CHECK(clock.clock_offset() == kSecond * 9 / 10 + 1000);
  // ...and a round trip without the manager's clock leaves it as it is.
  clock.observe(30 * kSecond, 5 * kSecond + kSecond / 2, 5 * kSecond + kSecond / 2, std::nullopt);
  CHECK(clock.clock_offset() == kSecond * 9 / 10 + 1000);
  // Over a second after the bound's second began, a larger bound replaces it.
  clock.observe(22 * kSecond, 6 * kSecond + kSecond / 2, 6 * kSecond + kSecond / 2,
                20 * kSecond + kSecond * 8 / 10);
  CHECK(clock.clock_offset() == kSecond * 12 / 10 + 1000);
}

TEST_CASE("postgres parts: the server clock is estimated at the midpoint of the round trip") {
  postgres::ServerClock clock;
  const Nanos sent = postgres::steady_nanos();
  const Nanos back = sent + 2 * kSecond;
  // The server's clock read 1 h after the steady reading at the round trip's midpoint.
  clock.observe(sent + kSecond + 3600 * kSecond, sent, back, std::nullopt);
  const Nanos before = postgres::steady_nanos();
  const Nanos now = clock.now();
  const Nanos after = postgres::steady_nanos();
  CHECK(now >= before + 3600 * kSecond);
  CHECK(now <= after + 3600 * kSecond + 1);  // +1: the midpoint of an odd sum
}

TEST_CASE("postgres parts: the row cache remembers rows, marks them stale and forgets them") {
  postgres::RowCache cache;
  CHECK_FALSE(cache.find("a"));
  postgres::KnownRow row;
  row.version = 7;
  row.writer = 11;
  cache.remember("a", row);
  std::optional<postgres::KnownRow> found = cache.find("a");
  REQUIRE(found);
  CHECK(found->version == 7);
  CHECK(found->writer == 11);
  CHECK_FALSE(found->stale);
  cache.mark_stale("a");
  cache.mark_stale("b");  // not remembered: stays unknown
  CHECK(cache.find("a")->stale);
  CHECK_FALSE(cache.find("b"));
  cache.forget_all();
  CHECK_FALSE(cache.find("a"));
}

TEST_CASE("postgres parts: the row cache empties itself when full") {
  postgres::RowCache cache;
  postgres::KnownRow row;
  row.version = 1;
  int remembered = 0;
  // Fill it until the first key is gone: that happens once, when it is full.
  cache.remember("k0", row);
  while (cache.find("k0")) cache.remember("k" + std::to_string(++remembered), row);
  CHECK(remembered == 16384);
  CHECK(cache.find("k" + std::to_string(remembered)));
  CHECK_FALSE(cache.find("k" + std::to_string(remembered - 1)));
}

TEST_CASE("postgres parts: a key with no row starts above its shard's floor as last read") {
  postgres::RowCache cache;
  CHECK(cache.blank(3).record.last_fence == 0);
  CHECK(cache.blank(3).version == 0);
  cache.learn_floor(3, 42);
  CHECK(cache.blank(3).record.last_fence == 42);
  CHECK(cache.blank(4).record.last_fence == 0);
  cache.forget_all();  // cleanup raised the floors: read them again
  CHECK(cache.blank(3).record.last_fence == 0);
}

TEST_CASE("postgres parts: a decision's validity window lies between the instants it saw") {
  // Nothing timed: every server time.
  const auto open = postgres::validity(Record{}, 200, 300);
  REQUIRE(open);
  CHECK(open->first == std::numeric_limits<Nanos>::min() / 2);
  CHECK(open->second == kForever);
  // An expiry passed (100) and a deadline pending (500).
  const auto window = postgres::validity(record_with(100, 500), 200, 300);
  REQUIRE(window);
  CHECK(window->first == 100);
  CHECK(window->second == 500);
  // An instant inside the transition's own time: ambiguous, run it again.
  CHECK_FALSE(postgres::validity(record_with(250, 500), 200, 300));
  CHECK_FALSE(postgres::validity(record_with(100, 300), 200, 300));
}

TEST_CASE("postgres parts: the statement that stores a decision") {
  const postgres::Statements sql("\"s\"");
  const std::string bytes = "record";
  const std::pair<Nanos, Nanos> window{0, kForever};
  postgres::KnownRow none;  // no row known
  Record decided = record_with(kSecond, kSecond);

  SUBCASE("no row known, a record to store: apply() with it") {
    const auto call =
        postgres::write_statement(sql, "s", "k", 1, 0, none, decided, &bytes, 9, window);
    CHECK(std::string(call.name) == "leaselock_apply");
    CHECK(call.text == &sql.apply);
    CHECK(nulls_of(call.params) == std::vector<bool>(10, false));
  }
  SUBCASE("no row known, nothing to store: apply() checks there is still none") {
    const auto call =
        postgres::write_statement(sql, "s", "k", 1, 0, none, Record{}, nullptr, 9, window);
    CHECK(std::string(call.name) == "leaselock_apply");
    CHECK(nulls_of(call.params) ==
          std::vector<bool>{false, false, true, true, true, true, false, false, false, false});
  }
  postgres::KnownRow known;
  known.version = 5;
  SUBCASE("a known row changed, no waiters before: a plain update") {
    const auto call =
        postgres::write_statement(sql, "s", "k", 1, 0, known, decided, &bytes, 9, window);
    CHECK(std::string(call.name) == "leaselock_update");
    CHECK(call.text == &sql.update);
    CHECK(call.params.count() == 9);
  }
  SUBCASE("a known row with waiters changed: the update notifies them") {
    known.record = record_with(kSecond, kSecond);
    decided.version = known.record.version + 1;
    const auto call =
        postgres::write_statement(sql, "s", "k", 1, 0, known, decided, &bytes, 9, window);
    CHECK(std::string(call.name) == "leaselock_update_notify");
    CHECK(call.text == &sql.update_notify);
    CHECK(call.params.count() == 11);
  }
  SUBCASE("a known row left as it is: a check that it still is") {
    const auto call =
        postgres::write_statement(sql, "s", "k", 1, 0, known, known.record, nullptr, 9, window);
    CHECK(std::string(call.name) == "leaselock_check");
    CHECK(call.text == &sql.check);
    CHECK(call.params.count() == 4);
  }
}

TEST_CASE("postgres parts: writer ids are never zero and differ") {
  const std::int64_t first = postgres::random_writer_id();
  const std::int64_t second = postgres::random_writer_id();
  CHECK(first != 0);
  CHECK(second != 0);
  CHECK(first != second);
}
