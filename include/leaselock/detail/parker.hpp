// leaselock/detail/parker.hpp — how a waiting thread sleeps and is woken.
//
// A Parker is a one-bit permit: unpark() sets it and wakes the thread, park() sleeps
// until it is set. Because the permit stays set until the owner resets it, a wake-up
// that lands between "I decided to wait" and "I am asleep" is never lost. Each thread
// has one (this_thread_parker()); notifiers hold whatever lock keeps the parker alive.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace leaselock::detail {

class Parker {
 public:
  /// Clears the permit; call before making this parker visible to notifiers.
  void reset() noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    permit_ = false;
  }

  /// Sets the permit and wakes the parked thread, if any.
  void unpark() noexcept {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      permit_ = true;
    }
    condition_.notify_one();
  }

  /// Sleeps until the permit is set.
  void park() {
    std::unique_lock<std::mutex> lock(mutex_);
    condition_.wait(lock, [this] { return permit_; });
  }

  /// Sleeps until the permit is set or `timeout` has passed on the steady clock.
  void park_for(std::chrono::nanoseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock<std::mutex> lock(mutex_);
    condition_.wait_until(lock, deadline, [this] { return permit_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable condition_;
  bool permit_ = false;
};

inline Parker& this_thread_parker() {
  thread_local Parker parker;
  return parker;
}

}  // namespace leaselock::detail
