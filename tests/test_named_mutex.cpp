// NamedMutex: a key used through std::unique_lock, std::shared_lock, std::scoped_lock.
#include <future>
#include <shared_mutex>
#include <system_error>

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

TEST_CASE_TEMPLATE("an unlock ends only its own grant, also after its lease expired", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  test::Harness<Setup> h;
  auto m = h.locks.mutex("db", 10s);
  test::Actor a;
  test::Actor b;
  a.run([&] { m.lock(); }).get();
  h.clock.advance(10s);              // A's lease runs out
  b.run([&] { m.lock(); }).get();    // B takes the key through the same view
  a.run([&] { m.unlock(); }).get();  // must not end B's grant
  CHECK(m.lost_lock());              // A's own lease had expired
  CHECK_FALSE(h.locks.try_acquire("db", Mode::exclusive, 1s));  // B still excludes others
  const auto info = h.locks.status("db");
  REQUIRE(info);
  CHECK(info->holders.size() == 1);
  b.run([&] { m.unlock(); }).get();
  CHECK_FALSE(m.lost_lock());
  CHECK_FALSE(h.locks.status("db"));
}

TEST_CASE_TEMPLATE("unlock by a thread that holds nothing does nothing", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  test::Harness<Setup> h;
  auto m = h.locks.mutex("db", 10s);
  test::Actor holder;
  test::Actor other;
  holder.run([&] { m.lock(); }).get();
  other.run([&] { m.unlock(); }).get();
  other.run([&] { m.unlock_shared(); }).get();
  holder.run([&] { m.unlock_shared(); }).get();  // it holds exclusive, not shared
  REQUIRE(h.locks.status("db"));
  CHECK(h.locks.status("db")->mode == Mode::exclusive);
  CHECK_FALSE(h.locks.try_acquire("db", Mode::shared, 1s));
  holder.run([&] { m.unlock(); }).get();
  CHECK_FALSE(h.locks.status("db"));
  // Shared locks likewise belong to their threads.
  holder.run([&] { m.lock_shared(); }).get();
  other.run([&] { m.unlock_shared(); }).get();
  CHECK(h.locks.status("db"));
  holder.run([&] { m.unlock_shared(); }).get();
  CHECK_FALSE(h.locks.status("db"));
}

TEST_CASE_TEMPLATE("locking a view this thread already holds is refused, not waited out", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  test::Harness<Setup> h;
  auto m = h.locks.mutex("db", 10s);
  test::Actor a;
  a.run([&] { m.lock_shared(); }).get();
  CHECK_THROWS_AS(a.run([&] { return m.try_lock_for(1s); }).get(), std::system_error);
  CHECK_THROWS_AS(a.run([&] { return m.try_lock_shared_for(1s); }).get(), std::system_error);
  CHECK_THROWS_AS(a.run([&] { return m.try_lock_until(h.clock.now() + 1s); }).get(),
                  std::system_error);
  CHECK_THROWS_AS(a.run([&] { m.lock(); }).get(), std::system_error);
  CHECK_THROWS_AS(a.run([&] { m.lock_shared(); }).get(), std::system_error);
  REQUIRE(h.locks.status("db"));
  CHECK(h.locks.status("db")->holders.size() == 1);  // nothing taken
  CHECK(h.locks.status("db")->waiters == 0);
  CHECK_FALSE(a.run([&] { return m.try_lock(); }).get());  // one try: busy, as for anyone
  test::Actor b;
  CHECK(b.run([&] { return m.try_lock_shared(); }).get());  // other threads are not refused
  b.run([&] { m.unlock_shared(); }).get();
  a.run([&] { m.unlock_shared(); }).get();
  CHECK(a.run([&] { return m.try_lock(); }).get());  // once unlocked, it may lock again
  a.run([&] { m.unlock(); }).get();
  CHECK_FALSE(h.locks.status("db"));
}

namespace {

// A clock of the caller's, other than the manager's, that moves only when told.
struct CallerClock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<CallerClock>;
  static constexpr bool is_steady = true;
  static time_point now() noexcept { return time_point(duration(ticks.load())); }
  static inline std::atomic<std::int64_t> ticks{0};
};
static_assert(CallerClock::is_steady);  // a Clock says whether it is steady

}  // namespace

TEST_CASE_TEMPLATE("a deadline on another clock is re-checked on that clock", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  test::Harness<Setup> h;
  test::RecordingObserver observer;
  h.locks.set_observer(&observer);
  auto m = h.locks.mutex("db", 10s);
  auto holder = h.locks.try_acquire("db", Mode::exclusive, 1h);
  auto waiter = std::async(std::launch::async, [&] {
    const bool locked = m.try_lock_until(CallerClock::now() + 10s);
    if (locked) m.unlock();
    return locked;
  });
  test::wait_for_sleepers(h.clock, 1);
  h.clock.advance(10s);  // the manager's clock passes 10 s; the caller's has not moved
  REQUIRE(observer.wait_for(leaselock::LockEventKind::timed_out, 1));
  CHECK(holder.release());  // the waiter, waiting again for what is left, gets it
  CHECK(waiter.get());
  // A deadline already past on the caller's clock: one try.
  holder = h.locks.try_acquire("db", Mode::exclusive, 1h);
  CHECK_FALSE(m.try_lock_shared_until(CallerClock::now() - 1s));
  CHECK_FALSE(m.try_lock_until(CallerClock::now()));
}

TEST_CASE_TEMPLATE("huge timeouts wait instead of failing at once", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  using std::chrono::hours;
  test::Harness<Setup> h;
  auto m = h.locks.mutex("db", 10s);
  using Clock = typename test::Harness<Setup>::Manager::clock_type;
  const std::vector<std::pair<std::string, std::function<bool()>>> calls{
      {"try_lock_for(hours::max())", [&] { return m.try_lock_for(hours::max()); }},
      {"try_lock_for(seconds::max())", [&] { return m.try_lock_for(std::chrono::seconds::max()); }},
      {"try_lock_until(time_point<manager's clock, hours>::max())",
       [&] { return m.try_lock_until(std::chrono::time_point<Clock, hours>::max()); }},
      {"try_lock_until(time_point<steady_clock, hours>::max())",
       [&] {
         return m.try_lock_until(std::chrono::time_point<std::chrono::steady_clock, hours>::max());
       }},
  };
  for (const auto& named_call : calls) {
    const auto& call = named_call.second;
    CAPTURE(named_call.first);
    auto holder = h.locks.try_acquire("db", Mode::exclusive, 1h);
    REQUIRE(holder);
    auto waiter = std::async(std::launch::async, [&, call = call] {
      const bool locked = call();
      if (locked) m.unlock();
      return locked;
    });
    test::wait_for_sleepers(h.clock, 1);
    CHECK(holder.release());
    CHECK(waiter.get());
  }
  auto shared = std::async(std::launch::async, [&] {
    const bool locked = m.try_lock_shared_for(hours::max());
    if (locked) m.unlock_shared();
    return locked;
  });
  CHECK(shared.get());
}
