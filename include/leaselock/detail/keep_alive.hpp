// leaselock/detail/keep_alive.hpp — background renewal of leases (Lease::keep_alive).
//
// One Renewer per LockManager, started on first use: a thread that renews each
// registered lease every `interval`, each time for `ttl`. It sleeps on the manager's
// clock (so a ManualClock drives it in tests) and is woken when a lease is added or it
// is stopped. When a renewal fails, the lease's KeepAliveState is marked lost and its
// callback runs once, on the renewal thread, outside every lock, before the observer
// hears of it.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <leaselock/detail/parker.hpp>
#include <leaselock/detail/time.hpp>
#include <leaselock/mode.hpp>
#include <leaselock/token.hpp>

namespace leaselock::detail {

/// Shared between a Lease and the Renewer.
struct KeepAliveState {
  std::string key;
  Token token;
  Mode mode = Mode::exclusive;
  std::uint64_t fence = 0;
  Nanos ttl = 0;
  Nanos interval = 0;
  std::function<void()> on_lost;
  std::atomic<Nanos> expires_at{0};
  std::atomic<bool> lost{false};
  std::atomic<bool> stopped{false};
};

/// What the Renewer needs from its manager.
class RenewTarget {
 public:
  /// Renews the lease, stores its new expiry in `state`, then tells the observer.
  virtual std::optional<Nanos> renew_for_keep_alive(KeepAliveState& state) = 0;
  virtual void report_lost(const KeepAliveState& state) noexcept = 0;

 protected:
  ~RenewTarget() = default;
};

template <class Clock>
class Renewer {
 public:
  Renewer(RenewTarget& target, const Clock& clock) : target_(target), clock_(clock) {}
  Renewer(const Renewer&) = delete;
  Renewer& operator=(const Renewer&) = delete;
  ~Renewer() { stop(); }

  void add(std::shared_ptr<KeepAliveState> state) {
    std::lock_guard<std::mutex> lock(mutex_);
    // The thread first: if it cannot start, nothing was registered.
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    const Nanos due = add_saturated(now_nanos(clock_), state->interval);
    entries_.push_back(Entry{std::move(state), due});
    if (parker_) parker_->unpark();
  }

  /// Stops renewing `state`. After this returns, no renewal of it is in flight.
  void remove(const KeepAliveState* state) noexcept {
    std::unique_lock<std::mutex> lock(mutex_);
    entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                  [&](const Entry& e) { return e.state.get() == state; }),
                   entries_.end());
    // From the renewal thread itself (an on_lost callback releasing its lease) the
    // renewal in flight is the caller: nothing to wait for.
    if (std::this_thread::get_id() == thread_.get_id()) return;
    done_.wait(lock, [&] { return in_flight_ != state; });
  }

  void stop() noexcept {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
      if (parker_) parker_->unpark();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct Entry {
    std::shared_ptr<KeepAliveState> state;
    Nanos due;
  };

  void run() {
    Parker& parker = this_thread_parker();
    std::unique_lock<std::mutex> lock(mutex_);
    parker_ = &parker;
    while (!stopping_) {
      const auto next =
          std::min_element(entries_.begin(), entries_.end(),
                           [](const Entry& a, const Entry& b) { return a.due < b.due; });
      const Nanos now = now_nanos(clock_);
      if (next == entries_.end() || next->due > now) {
        const Nanos wake_at = next == entries_.end() ? kForever : next->due;
        parker.reset();
        lock.unlock();
        park_until(clock_, parker, wake_at);
        lock.lock();
        continue;
      }
      std::shared_ptr<KeepAliveState> state = next->state;
      next->due = add_saturated(now, state->interval);
      in_flight_ = state.get();
      lock.unlock();
      bool lost = false;
      try {
        lost = !target_.renew_for_keep_alive(*state);
      } catch (...) {
        // A renewal that could not run (out of memory) is retried at the next interval;
        // if the lease lapses meanwhile, that renewal reports it lost.
      }
      if (lost && !state->stopped.load(std::memory_order_acquire)) {
        // The holder first (it must stop writing), then the audit trail.
        state->lost.store(true, std::memory_order_release);
        if (state->on_lost) {
          try {
            state->on_lost();
          } catch (...) {
          }
        }
        target_.report_lost(*state);
      }
      lock.lock();
      in_flight_ = nullptr;
      if (lost)
        entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                      [&](const Entry& e) { return e.state == state; }),
                       entries_.end());
      done_.notify_all();
    }
    parker_ = nullptr;
  }

  RenewTarget& target_;
  const Clock& clock_;
  std::mutex mutex_;
  std::condition_variable done_;
  std::vector<Entry> entries_;
  const KeepAliveState* in_flight_ = nullptr;
  Parker* parker_ = nullptr;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace leaselock::detail
