// leaselock/clock.hpp — clocks a LockManager can run on, and ManualClock for tests.
//
// Any clock with `now()` and a `time_point` works: std::chrono::steady_clock for threads
// and processes of one boot, std::chrono::system_clock for storage shared between hosts.
// ManualClock is time that moves only when a test says so: copies share one time, and
// advance() wakes every waiter whose deadline or whose blocker's expiry it passes, so TTL
// and timeout behaviour is tested deterministically, without sleeps and without spinning.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <vector>

#include <leaselock/detail/parker.hpp>
#include <leaselock/detail/time.hpp>

namespace leaselock {

/// A clock for tests: starts at time_point{} and moves only by advance().
///
/// @code
///   leaselock::ManualClock clock;
///   leaselock::LockManager<leaselock::ManualClock, leaselock::InProcessBackend> locks{{}, clock};
///   auto lease = locks.try_acquire("k", leaselock::Mode::exclusive, std::chrono::seconds(10));
///   clock.advance(std::chrono::seconds(10));   // the lease has now expired
/// @endcode
class ManualClock {
 public:
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<ManualClock>;
  static constexpr bool is_steady = true;
  /// How records written on this clock name it (see FileBackend).
  static constexpr std::string_view clock_name = "ManualClock";

  ManualClock() : state_(std::make_shared<State>()) {}

  /// The current manual time. Thread-safe.
  time_point now() const noexcept {
    return time_point(duration(state_->now.load(std::memory_order_acquire)));
  }

  /// Moves time forward by `step` and wakes the waiters whose wake-up time has come.
  /// Throws std::invalid_argument for a negative step (time never goes back).
  void advance(duration step) {
    if (step < duration::zero())
      throw std::invalid_argument("leaselock: ManualClock::advance needs a step >= 0");
    std::lock_guard<std::mutex> lock(state_->mutex);
    const detail::Nanos now =
        detail::add_saturated(state_->now.load(std::memory_order_relaxed), step.count());
    state_->now.store(now, std::memory_order_release);
    for (const Sleeper& sleeper : state_->sleepers)
      if (sleeper.wake_at <= now) sleeper.parker->unpark();
  }

  /// How many threads are parked on this clock right now (for tests that must know a
  /// waiter has gone to sleep before they move time).
  std::size_t sleepers() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->sleepers.size();
  }

  /// Waiting hook (see detail::park_until): sleeps until `parker` is unparked or manual
  /// time reaches `wake_at`.
  void park_until(detail::Parker& parker, detail::Nanos wake_at) const {
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      if (state_->now.load(std::memory_order_relaxed) >= wake_at) return;
      state_->sleepers.push_back(Sleeper{&parker, wake_at});
    }
    parker.park();
    std::lock_guard<std::mutex> lock(state_->mutex);
    auto& sleepers = state_->sleepers;
    sleepers.erase(std::find_if(sleepers.begin(), sleepers.end(),
                                [&](const Sleeper& s) { return s.parker == &parker; }));
  }

  friend bool operator==(const ManualClock& a, const ManualClock& b) noexcept {
    return a.state_ == b.state_;
  }
  friend bool operator!=(const ManualClock& a, const ManualClock& b) noexcept { return !(a == b); }

 private:
  struct Sleeper {
    detail::Parker* parker;
    detail::Nanos wake_at;
  };
  struct State {
    std::atomic<detail::Nanos> now{0};
    mutable std::mutex mutex;
    std::vector<Sleeper> sleepers;
  };
  std::shared_ptr<State> state_;
};

}  // namespace leaselock
