// Auto-renewal: keep_alive() renews in the background on the manager's clock and says
// the moment a lease is lost. Driven by a ManualClock: the renewal thread sleeps until
// the clock is advanced, and the tests wait for its observer events.
#include "support.hpp"

using namespace std::chrono_literals;
using leaselock::LockEventKind;
using leaselock::Mode;

namespace {

// A manager on a ManualClock whose events are recorded.
template <class Setup>
struct Watched {
  test::Harness<Setup> h;
  test::RecordingObserver events;
  Watched() { h.locks.set_observer(&events); }
  ~Watched() { h.locks.set_observer(nullptr); }
};

}  // namespace

TEST_CASE_TEMPLATE("keep_alive renews before expiry for as long as the lease is held", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  Watched<Setup> watched;
  auto& h = watched.h;
  [[maybe_unused]] auto& events = watched.events;
  auto lease = h.locks.try_acquire("long-job", Mode::exclusive, 30s);
  REQUIRE(lease);
  lease.keep_alive();  // every 10 s, for 30 s each time
  for (std::size_t round = 1; round <= 5; ++round) {
    test::wait_for_sleepers(h.clock, 1);  // the renewal thread is asleep until its next turn
    h.clock.advance(10s);
    REQUIRE(events.wait_for(LockEventKind::renewed, round));
  }
  // 50 s after a 30 s grant, the lease is still held, expiring 30 s after the last renewal.
  auto info = h.locks.status("long-job");
  REQUIRE(info);
  CHECK(info->holders.at(0).expires_at == h.clock.now() + 30s);
  CHECK(lease.expires_at() == h.clock.now() + 30s);
  CHECK_FALSE(lease.lost());
  CHECK(lease.release());
  CHECK(events.count(LockEventKind::lost) == 0);
}

TEST_CASE_TEMPLATE("keep_alive reports a lease lost when its renewal comes too late", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  Watched<Setup> watched;
  auto& h = watched.h;
  [[maybe_unused]] auto& events = watched.events;
  auto lease = h.locks.try_acquire("job", Mode::exclusive, 30s);
  std::atomic<int> callbacks{0};
  lease.keep_alive([&] { ++callbacks; });
  test::wait_for_sleepers(h.clock, 1);
  h.clock.advance(45s);  // the process "paused" past the TTL: the renewal finds it gone
  REQUIRE(events.wait_for(LockEventKind::lost, 1));
  CHECK(lease.lost());
  CHECK(callbacks.load() == 1);
  CHECK_FALSE(h.locks.status("job"));
  CHECK(h.locks.try_acquire("job", Mode::exclusive, 30s));
  CHECK_FALSE(lease.release());
}

TEST_CASE_TEMPLATE("keep_alive reports a lease lost when it was released by token elsewhere", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  Watched<Setup> watched;
  auto& h = watched.h;
  [[maybe_unused]] auto& events = watched.events;
  auto lease = h.locks.try_acquire("job", Mode::exclusive, 30s);
  std::atomic<bool> told{false};
  lease.keep_alive([&] { told = true; }, 5s);
  REQUIRE(h.locks.release("job", lease.token()));  // an operator freed it
  test::wait_for_sleepers(h.clock, 1);
  h.clock.advance(5s);
  REQUIRE(events.wait_for(LockEventKind::lost, 1));
  CHECK(told.load());
  CHECK(lease.lost());
}

TEST_CASE_TEMPLATE("releasing a kept-alive lease stops renewal without a false alarm", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  Watched<Setup> watched;
  auto& h = watched.h;
  [[maybe_unused]] auto& events = watched.events;
  {
    auto lease = h.locks.try_acquire("job", Mode::shared, 30s);
    lease.keep_alive([] { FAIL("a released lease must not be reported lost"); });
  }
  for (int i = 0; i < 4; ++i) {
    test::wait_for_sleepers(h.clock, 1);
    h.clock.advance(10s);
  }
  test::wait_for_sleepers(h.clock, 1);
  CHECK(events.count(LockEventKind::renewed) == 0);
  CHECK(events.count(LockEventKind::lost) == 0);
  CHECK(events.count(LockEventKind::released) == 1);
  auto busy = h.locks.try_acquire("x", Mode::exclusive, 1s);
  CHECK_THROWS_AS(h.locks.try_acquire("x", Mode::shared, 1s).keep_alive(), std::logic_error);
  leaselock::LockManager<leaselock::ManualClock, leaselock::InProcessBackend>::Lease empty;
  CHECK_THROWS_AS(empty.keep_alive(), std::logic_error);
}

TEST_CASE_TEMPLATE("an on_lost callback may release its own lease", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  Watched<Setup> watched;
  auto& h = watched.h;
  [[maybe_unused]] auto& events = watched.events;
  auto lease = h.locks.try_acquire("job", Mode::exclusive, 30s);
  auto* guard = &lease;
  std::atomic<bool> released{false};
  lease.keep_alive([&] { released = !guard->release(); });  // must not deadlock
  test::wait_for_sleepers(h.clock, 1);
  h.clock.advance(31s);
  REQUIRE(events.wait_for(LockEventKind::lost, 1));
  test::wait_for_sleepers(h.clock, 1);  // the callback has returned: renewer asleep again
  CHECK(released.load());
  CHECK_FALSE(lease);
}
