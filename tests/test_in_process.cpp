// What is particular to InProcessBackend: memory that follows the keys in use, shards.
#include "support.hpp"

using namespace std::chrono_literals;
using leaselock::Mode;
using leaselock::Token;

TEST_CASE("a key with no holder and no waiter has no record") {
  test::Harness<test::InProcessSetup> h;
  auto& backend = h.locks.backend();
  CHECK(backend.record_count() == 0);
  std::vector<decltype(h.locks)::Lease> leases;
  for (int i = 0; i < 5000; ++i)
    leases.push_back(h.locks.try_acquire("key-" + std::to_string(i), Mode::exclusive, 10s));
  CHECK(backend.record_count() == 5000);
  leases.clear();
  CHECK(backend.record_count() == 0);
  // Expired leases go as soon as anything touches their key.
  auto lease = h.locks.try_acquire("expiring", Mode::shared, 10s);
  const auto token = lease.detach();
  CHECK(backend.record_count() == 1);
  h.clock.advance(10s);
  CHECK_FALSE(h.locks.status("expiring"));
  CHECK(backend.record_count() == 1);  // reading does not clean
  CHECK_FALSE(h.locks.release("expiring", token));
  CHECK(backend.record_count() == 0);
  // A timed-out waiter leaves nothing behind either.
  auto holder = h.locks.try_acquire("busy", Mode::exclusive, 10s);
  CHECK_FALSE(h.locks.try_acquire("busy", Mode::exclusive, 1s));
  CHECK(holder.release());
  CHECK(backend.record_count() == 0);
}

TEST_CASE("the shard count must be a power of two") {
  CHECK_THROWS_AS(leaselock::InProcessBackend(0), std::invalid_argument);
  CHECK_THROWS_AS(leaselock::InProcessBackend(12), std::invalid_argument);
  leaselock::LockManager<leaselock::ManualClock, leaselock::InProcessBackend> one_shard{
      leaselock::InProcessBackend(1)};
  auto a = one_shard.try_acquire("a", Mode::exclusive, 1s);
  auto b = one_shard.try_acquire("b", Mode::exclusive, 1s);
  CHECK(a);
  CHECK(b);
  CHECK(one_shard.list().size() == 2);
}

TEST_CASE("fences keep increasing for a key dropped and recreated many times") {
  test::Harness<test::InProcessSetup> h;
  std::uint64_t last = 0;
  for (int i = 0; i < 2000; ++i) {
    // Fill and empty the table so that buckets grow, shrink, and records are recycled.
    std::vector<decltype(h.locks)::Lease> crowd;
    if (i % 100 == 0)
      for (int j = 0; j < 500; ++j)
        crowd.push_back(h.locks.try_acquire("crowd-" + std::to_string(j), Mode::shared, 1s));
    auto lease = h.locks.try_acquire("fenced", Mode::exclusive, 1s);
    REQUIRE(lease);
    REQUIRE(lease.fence() > last);
    last = lease.fence();
  }
  CHECK(h.locks.backend().record_count() == 0);
}

TEST_CASE("a lease's record stays valid while the lease lives, whatever happens to the key") {
  // One shard, so that other keys evict this key's idle record from the cache.
  leaselock::ManualClock clock;
  leaselock::LockManager<leaselock::ManualClock, leaselock::InProcessBackend> locks{
      leaselock::InProcessBackend(1), clock};
  auto lease = locks.try_acquire("pinned", Mode::exclusive, 10s);
  REQUIRE(lease);
  clock.advance(10s);
  {
    auto taker = locks.try_acquire("pinned", Mode::exclusive, 10s);  // purges the lapsed lease
    REQUIRE(taker);
  }  // "pinned" is idle now, and cached
  std::vector<decltype(locks)::Lease> others;
  for (int i = 0; i < 2 * static_cast<int>(leaselock::InProcessBackend::kIdleRecords); ++i) {
    auto other = locks.try_acquire("other-" + std::to_string(i), Mode::shared, 10s);
    REQUIRE(other);
  }  // each went idle in turn and pushed older idle records out of the cache
  CHECK_FALSE(lease.renew(10s));  // through its handle: the record must still be there
  CHECK_FALSE(lease.release());   // lapsed and taken: not held until now
  CHECK(locks.backend().record_count() == 0);
  auto again = locks.try_acquire("pinned", Mode::exclusive, 10s);
  REQUIRE(again);
  CHECK(again.fence() == 3);
}

TEST_CASE("detaching or adopting a lease keeps the record's pins balanced") {
  test::Harness<test::InProcessSetup> h;
  Token token;
  {
    auto lease = h.locks.try_acquire("k", Mode::exclusive, 10s);
    token = lease.detach();
  }
  {
    auto adopted = h.locks.adopt("k", token);
    REQUIRE(adopted);
    CHECK(adopted.renew(10s));
  }  // released through the adopted guard's handle
  CHECK_FALSE(h.locks.status("k"));
  CHECK(h.locks.backend().record_count() == 0);
  auto lease = h.locks.try_acquire("k", Mode::exclusive, 10s);
  CHECK(lease);
}

TEST_CASE("records of abandoned leases are swept as the backend is used") {
  // Leases detached and never released: once expired, nobody touches their keys again.
  test::Harness<test::InProcessSetup> h;
  auto& backend = h.locks.backend();
  constexpr int kAbandoned = 5000;
  for (int i = 0; i < kAbandoned; ++i)
    (void)h.locks.try_acquire("abandoned-" + std::to_string(i), Mode::exclusive, 10s).detach();
  auto pinned = h.locks.try_acquire("guarded", Mode::exclusive, 10s);  // a guard still holds it
  CHECK(backend.record_count() == kAbandoned + 1);
  // Not yet expired: the sweep leaves them all.
  for (int i = 0; i < 20000; ++i) CHECK(h.locks.try_acquire("hot", Mode::exclusive, 1s));
  CHECK(backend.record_count() == kAbandoned + 1);
  h.clock.advance(10s);
  // Operations on one unrelated key sweep every shard; bounded work each.
  int operations = 0;
  while (backend.record_count() > 1 && operations < 1000000) {
    CHECK(h.locks.try_acquire("hot", Mode::exclusive, 1s));
    operations += 2;  // an acquisition and its release
  }
  CHECK(backend.record_count() == 1);  // only the guarded record is left
  MESSAGE("operations until swept: " << operations);
  CHECK_FALSE(pinned.release());  // expired: it was not held until now
  CHECK(backend.record_count() == 0);
  // Fences go on from where the swept records left them.
  auto again = h.locks.try_acquire("abandoned-7", Mode::exclusive, 10s);
  REQUIRE(again);
  CHECK(again.fence() > 1);
}

TEST_CASE("remove_idle drops expired, unguarded records at once, and nothing live") {
  test::Harness<test::InProcessSetup> h;
  auto& backend = h.locks.backend();
  (void)h.locks.try_acquire("expired", Mode::exclusive, 1s).detach();
  const auto live = h.locks.try_acquire("live", Mode::shared, 1h).detach();
  auto guarded = h.locks.try_acquire("guarded", Mode::exclusive, 1s);
  h.clock.advance(1s);
  CHECK(backend.record_count() == 3);
  CHECK(backend.remove_idle() == 1);
  CHECK(backend.record_count() == 2);
  CHECK(h.locks.status("live"));
  CHECK(h.locks.release("live", live));
}
