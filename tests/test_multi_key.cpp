// Multi-key acquisition: all or nothing, and no deadlock whatever the order.
#include <future>
#include <random>

#include "support.hpp"

using namespace std::chrono_literals;
using leaselock::LockRequest;
using leaselock::Mode;

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
  auto waiter = std::async(std::launch::async, [&] {
    return h.locks.try_acquire_all({{"m", Mode::exclusive}, {"a", Mode::exclusive}}, 10s, 5s);
  });
  test::wait_for_sleepers(h.clock, 1);
  CHECK(h.locks.status("a"));  // "a" sorts first and is held while "m" is awaited
  h.clock.advance(5s);
  CHECK_FALSE(waiter.get());
  CHECK_FALSE(h.locks.status("a"));
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
