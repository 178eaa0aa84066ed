// Multi-key acquisition: all or nothing, and no deadlock whatever the order.
#include <future>
#include <random>

#include "support.hpp"

using namespace std::chrono_literals;
using leaselock::LockRequest;
using leaselock::Mode;

namespace {

// Starts try_acquire_all(requests, ttl, wait) on another thread; returns once it sleeps.
template <class Harness>
auto waiting_set(Harness& h, std::vector<LockRequest> requests, std::chrono::seconds ttl,
                 std::chrono::seconds wait) {
  auto set = std::async(std::launch::async, [&h, requests, ttl, wait] {
    return h.locks.try_acquire_all(requests, ttl, wait);
  });
  test::wait_for_sleepers(h.clock, 1);
  return set;
}

}  // namespace

TEST_CASE_TEMPLATE("try_acquire_all takes every key or none", Setup, LEASELOCK_BACKEND_SETUPS) {
  test::Harness<Setup> h;
  auto set = h.locks.try_acquire_all(
      {{"b", Mode::exclusive}, {"a", Mode::shared}, {"c", Mode::exclusive}}, 10s);
  REQUIRE(set);
  REQUIRE(set.size() == 3);
  CHECK(set[0].key() == "a");  // sorted by key
  CHECK(set[0].mode() == Mode::shared);
  REQUIRE(set.find("c"));
  CHECK(set.find("c")->mode() == Mode::exclusive);
  CHECK_FALSE(set.find("d"));
  // "c" is busy: nothing of the second set may stay held.
  auto other = h.locks.try_acquire_all(
      {{"z", Mode::exclusive}, {"c", Mode::shared}, {"a", Mode::shared}}, 10s);
  CHECK_FALSE(other);
  CHECK_FALSE(h.locks.status("z"));
  CHECK(h.locks.status("a")->holders.size() == 1);
  CHECK(set.renew(20s));
  CHECK(set.release());
  CHECK(h.locks.list().empty());
}

TEST_CASE_TEMPLATE("a key listed twice is taken once, in the stronger mode", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  test::Harness<Setup> h;
  auto set = h.locks.try_acquire_all(
      {{"k", Mode::shared}, {"k", Mode::exclusive}, {"k", Mode::shared}}, 10s);
  REQUIRE(set);
  REQUIRE(set.size() == 1);
  CHECK(set[0].mode() == Mode::exclusive);
}

TEST_CASE_TEMPLATE("a multi-key wait times out as a whole and releases what it took", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  test::Harness<Setup> h;
  auto blocker = h.locks.try_acquire("m", Mode::exclusive, 1h);
  auto waiter = waiting_set(h, {{"m", Mode::exclusive}, {"a", Mode::exclusive}}, 10s, 5s);
  CHECK(h.locks.status("a"));  // "a" sorts first and is held while "m" is awaited
  h.clock.advance(5s);
  CHECK_FALSE(waiter.get());
  CHECK_FALSE(h.locks.status("a"));
}

TEST_CASE_TEMPLATE("a set never holds a lease that expired while later keys were awaited", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  test::Harness<Setup> h;
  auto blocker = h.locks.try_acquire("b", Mode::exclusive, 1h);
  auto waiter = waiting_set(h, {{"a", Mode::exclusive}, {"b", Mode::exclusive}}, 10s, 60s);
  // It holds "a" and waits for "b".
  h.clock.advance(15s);  // its lease on "a" runs out meanwhile
  auto thief = h.locks.try_acquire("a", Mode::exclusive, 1h);
  REQUIRE(thief);
  CHECK(blocker.release());  // "b" goes to the waiter
  // It must not come back holding "a": it gives "b" back and queues for "a" again.
  bool returned = false;
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    if (waiter.wait_for(1ms) == std::future_status::ready) {
      returned = true;
      break;
    }
    const auto a = h.locks.status("a");
    if (a && a->waiters == 1) break;
    REQUIRE(std::chrono::steady_clock::now() < give_up);
  }
  CHECK_FALSE(returned);
  if (!returned) {
    CHECK_FALSE(h.locks.status("b"));
    CHECK(thief.release());  // now the waiter gets "a", then "b"
  }
  auto set = waiter.get();
  REQUIRE(set);
  REQUIRE(set.size() == 2);
  for (const auto& lease : set) {
    const auto info = h.locks.status(lease.key());
    REQUIRE(info);
    REQUIRE(info->holders.size() == 1);
    CHECK(info->holders[0].token == lease.token());
    CHECK(lease.expires_at() > h.clock.now());
  }
}

TEST_CASE_TEMPLATE("a member that lost half its TTL waiting is renewed with the set", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  test::Harness<Setup> h;
  auto blocker = h.locks.try_acquire("b", Mode::exclusive, 1h);
  auto waiter = waiting_set(h, {{"a", Mode::exclusive}, {"b", Mode::exclusive}}, 10s, 60s);
  h.clock.advance(8s);  // "a" has 2 s left
  CHECK(blocker.release());
  auto set = waiter.get();
  REQUIRE(set);
  CHECK(set[0].key() == "a");
  CHECK(set[0].expires_at() == h.clock.now() + 10s);
  CHECK(h.locks.status("a")->holders.at(0).expires_at == h.clock.now() + 10s);
  CHECK(set[1].expires_at() == h.clock.now() + 10s);
}

TEST_CASE("opposite orders from many threads never deadlock" * doctest::timeout(60)) {
  leaselock::local_lock_manager locks;
  const std::vector<std::string> keys{"k0", "k1", "k2", "k3", "k4"};
  std::atomic<int> holding{0};
  std::atomic<int> overlap{0};
  std::atomic<int> acquired{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 random(static_cast<unsigned>(t));
      for (int i = 0; i < 300; ++i) {
        std::vector<LockRequest> wanted;
        for (const auto& k : keys)
          if (random() % 2) wanted.push_back({k, Mode::exclusive});
        if (wanted.empty()) wanted.push_back({keys[0], Mode::exclusive});
        if (t % 2) std::reverse(wanted.begin(), wanted.end());
        wanted.push_back({keys[2], Mode::exclusive});  // every set shares k2
        auto set = locks.acquire_all(wanted, 10s);
        REQUIRE(set);
        if (holding.fetch_add(1) != 0) ++overlap;  // k2 is in every set: one at a time
        ++acquired;
        holding.fetch_sub(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(acquired.load() == 1200);
  CHECK(overlap.load() == 0);
  CHECK(locks.list().empty());
}
