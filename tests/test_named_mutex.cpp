// NamedMutex: a key used through std::unique_lock, std::shared_lock, std::scoped_lock.
#include <future>
#include <shared_mutex>

#include "support.hpp"

using namespace std::chrono_literals;
using leaselock::Mode;

TEST_CASE_TEMPLATE("std::unique_lock and std::shared_lock take leases on the key", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  test::Harness<Setup> h;
  auto m = h.locks.mutex("db", 10s);
  {
    std::unique_lock<decltype(m)> write(m);
    REQUIRE(h.locks.status("db"));
    CHECK(h.locks.status("db")->mode == Mode::exclusive);
    CHECK_FALSE(h.locks.try_acquire("db", Mode::shared, 1s));
  }
  CHECK_FALSE(h.locks.status("db"));
  {
    std::shared_lock<decltype(m)> read(m);
    auto other_reader = h.locks.try_acquire("db", Mode::shared, 1s);
    CHECK(other_reader);
    CHECK(h.locks.status("db")->holders.size() == 2);
    std::unique_lock<decltype(m)> write(m, std::try_to_lock);
    CHECK_FALSE(write.owns_lock());
  }
  CHECK_FALSE(h.locks.status("db"));
}

TEST_CASE_TEMPLATE("timed locking follows the manager's clock", Setup, LEASELOCK_BACKEND_SETUPS) {
  test::Harness<Setup> h;
  auto m = h.locks.mutex("db", 10s);
  auto holder = h.locks.try_acquire("db", Mode::exclusive, 1h);
  auto waiter = std::async(std::launch::async, [&] {
    std::unique_lock<decltype(m)> lock(m, 5s);  // try_lock_for
    return lock.owns_lock();
  });
  test::wait_for_sleepers(h.clock, 1);
  h.clock.advance(5s);
  CHECK_FALSE(waiter.get());
  auto until = std::async(std::launch::async, [&] {
    const bool locked = m.try_lock_shared_until(h.clock.now() + 5s);
    const bool held = locked && h.locks.status("db")->mode == Mode::shared;
    if (locked) m.unlock_shared();  // from the thread that holds it
    return held;
  });
  test::wait_for_sleepers(h.clock, 1);
  CHECK(holder.release());
  CHECK(until.get());
  CHECK_FALSE(h.locks.status("db"));
}

TEST_CASE("std::scoped_lock takes two keyed mutexes without deadlock") {
  leaselock::local_lock_manager locks;
  auto a = locks.mutex("a", 10s);
  auto b = locks.mutex("b", 10s);
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  std::atomic<int> entered{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const auto critical = [&] {
        if (inside.fetch_add(1) != 0) ++overlaps;
        ++entered;
        std::this_thread::yield();
        inside.fetch_sub(1);
      };
      for (int i = 0; i < 200; ++i) {
        if (t % 2) {
          std::scoped_lock both(a, b);  // opposite orders in alternate threads
          critical();
        } else {
          std::scoped_lock both(b, a);
          critical();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(entered.load() == 800);
  CHECK(overlaps.load() == 0);
  CHECK(locks.list().empty());
}

TEST_CASE("one NamedMutex is shared by threads like a std::shared_mutex") {
  leaselock::local_lock_manager locks;
  auto m = locks.mutex("shared-view", 10s);
  std::atomic<int> readers{0};
  std::atomic<int> writes{0};
  std::atomic<bool> writer_overlap{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        if (t == 0 && i % 10 == 0) {
          std::unique_lock<decltype(m)> write(m);
          if (readers.load() != 0) writer_overlap = true;
          ++writes;
        } else {
          std::shared_lock<decltype(m)> read(m);  // each thread's own shared lease
          ++readers;
          std::this_thread::yield();
          --readers;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(writes.load() == 20);
  CHECK_FALSE(writer_overlap.load());
  CHECK(locks.list().empty());  // every thread's unlock_shared found its own lease
}

TEST_CASE_TEMPLATE("unlocking after the lease expired is harmless and reported", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  test::Harness<Setup> h;
  auto m = h.locks.mutex("db", 10s);
  m.lock();
  h.clock.advance(10s);
  auto thief = h.locks.try_acquire("db", Mode::exclusive, 10s);
  REQUIRE(thief);
  m.unlock();
  CHECK(m.lost_lock());
  CHECK(h.locks.status("db")->holders.at(0).token == thief.token());
  m.unlock();  // not held: does nothing
  CHECK_THROWS_AS((void)h.locks.mutex("", 1s), std::invalid_argument);
  CHECK_THROWS_AS((void)h.locks.mutex("db", 0s), std::invalid_argument);
}
