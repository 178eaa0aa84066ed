// Shared helpers for the tests: backend setups for the conformance suite, a recording
// observer, and a way to wait until a thread is asleep on a ManualClock.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include <leaselock/leaselock.hpp>

namespace test {

using namespace std::chrono_literals;
using leaselock::ManualClock;
using leaselock::Mode;

/// How each backend under test is made. The conformance suite is instantiated per setup.
struct InProcessSetup {
  using Backend = leaselock::InProcessBackend;
  static constexpr const char* name = "in-process";
  static constexpr bool instances_share_storage = false;
  Backend make() { return Backend{}; }
};

/// A fresh private directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/leaselock-test-XXXXXX";
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const noexcept { return path_; }
  /// A directory inside, not yet created.
  std::filesystem::path sub(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// Processes of one machine, through a lock directory of its own.
struct FileSetup {
  using Backend = leaselock::FileBackend;
  static constexpr const char* name = "file";
  static constexpr bool instances_share_storage = true;
  TempDir dir;
  Backend make() { return Backend{dir.sub("locks")}; }
};

/// A ManualClock with a gate: while the gate is closed, a thread woken from its sleep on
/// this clock is held before it may look at the record again, so a test can change the
/// key under a waiter that has been woken but has not run yet.
class GatedClock {
 public:
  using rep = ManualClock::rep;
  using period = ManualClock::period;
  using duration = ManualClock::duration;
  using time_point = std::chrono::time_point<GatedClock>;
  static constexpr bool is_steady = true;
  static constexpr std::string_view clock_name = "GatedClock";

  time_point now() const noexcept { return time_point(manual_.now().time_since_epoch()); }
  void advance(duration step) { manual_.advance(step); }
  /// Threads parked on the clock or held at its closed gate: either way they cannot go
  /// on. (A backend may wake a waiter early — PostgreSQL's notifications are hints — and
  /// the gate then holds it.)
  std::size_t sleepers() const {
    std::lock_guard<std::mutex> lock(gate_->mutex);
    return manual_.sleepers() + gate_->held;
  }
  void park_until(leaselock::detail::Parker& parker, leaselock::detail::Nanos wake_at) const {
    manual_.park_until(parker, wake_at);
    std::unique_lock<std::mutex> lock(gate_->mutex);
    ++gate_->held;
    gate_->changed.notify_all();
    gate_->changed.wait(lock, [&] { return gate_->open; });
    --gate_->held;
  }

  void close() {
    std::lock_guard<std::mutex> lock(gate_->mutex);
    gate_->open = false;
  }
  void open() {
    {
      std::lock_guard<std::mutex> lock(gate_->mutex);
      gate_->open = true;
    }
    gate_->changed.notify_all();
  }
  /// Blocks until `count` woken threads wait at the closed gate (10 s of real time at most).
  void wait_for_held(std::size_t count) const {
    std::unique_lock<std::mutex> lock(gate_->mutex);
    REQUIRE_MESSAGE(gate_->changed.wait_for(lock, 10s, [&] { return gate_->held >= count; }),
                    "no woken thread reached the gate");
  }

 private:
  struct Gate {
    std::mutex mutex;
    std::condition_variable changed;
    bool open = true;
    std::size_t held = 0;
  };
  ManualClock manual_;
  std::shared_ptr<Gate> gate_ = std::make_shared<Gate>();
};

/// A manager on a fresh ManualClock (or another test clock), for one backend setup.
template <class Setup, class Clock = ManualClock>
struct Harness {
  using Manager = leaselock::LockManager<Clock, typename Setup::Backend>;
  Setup setup;
  Clock clock;
  Manager locks{setup.make(), clock};
};

/// Blocks until at least `count` threads are parked on `clock` (they have decided to
/// wait and gone to sleep). Fails the test after 10 s of real time.
template <class Clock>
void wait_for_sleepers(const Clock& clock, std::size_t count) {
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (clock.sleepers() < count) {
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < give_up, "no thread went to sleep");
    std::this_thread::yield();
  }
}

/// One thread that runs the functions it is given, in order: for tests in which the
/// same thread must come back later (to unlock what it locked).
class Actor {
 public:
  Actor() : thread_([this] { loop(); }) {}
  Actor(const Actor&) = delete;
  Actor& operator=(const Actor&) = delete;
  ~Actor() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }

  /// Runs fn() on this actor's thread; the future gives its result or exception.
  template <class Fn>
  auto run(Fn fn) -> std::future<decltype(fn())> {
    auto task = std::make_shared<std::packaged_task<decltype(fn())()>>(std::move(fn));
    auto result = task->get_future();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      tasks_.emplace_back([task] { (*task)(); });
    }
    changed_.notify_all();
    return result;
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    // The task last run (and the exception it may hold) is destroyed only when the
    // caller gives the next one or ends the actor, through this mutex: after the
    // caller's own use of its result, in an order ThreadSanitizer can see (it cannot
    // see the reference counts of the uninstrumented libstdc++).
    std::function<void()> last;
    for (;;) {
      changed_.wait(lock, [&] { return done_ || !tasks_.empty(); });
      last = nullptr;
      if (tasks_.empty()) return;
      auto task = std::move(tasks_.front());
      tasks_.erase(tasks_.begin());
      lock.unlock();
      task();
      lock.lock();
      last = std::move(task);
    }
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::function<void()>> tasks_;
  bool done_ = false;
  std::thread thread_;
};

/// Records every event, and lets a test wait for a number of events of one kind.
class RecordingObserver : public leaselock::Observer {
 public:
  struct Entry {
    leaselock::LockEventKind kind;
    std::string key;
    Mode mode;
    std::uint64_t fence;
    std::string owner;
    std::chrono::nanoseconds waited;
  };

  void on_event(const leaselock::LockEvent& event) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      entries_.push_back(Entry{event.kind, std::string(event.key), event.mode, event.fence,
                               std::string(event.owner), event.waited});
    }
    changed_.notify_all();
  }

  std::vector<Entry> entries() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return entries_;
  }

  std::size_t count(leaselock::LockEventKind kind) const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::size_t n = 0;
    for (const auto& e : entries_) n += e.kind == kind;
    return n;
  }

  /// Waits (real time, at most 10 s) until `n` events of `kind` have been seen.
  bool wait_for(leaselock::LockEventKind kind, std::size_t n) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, 10s, [&] {
      std::size_t seen = 0;
      for (const auto& e : entries_) seen += e.kind == kind;
      return seen >= n;
    });
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Entry> entries_;
};

}  // namespace test

namespace test {
/// Operations per thread in the stress suite: a setup may ask for fewer (a database
/// commits each one), with `static constexpr int stress_ops`.
template <class Setup, class = void>
struct stress_ops {
  static constexpr int value = 6000;
};
template <class Setup>
struct stress_ops<Setup, std::void_t<decltype(Setup::stress_ops)>> {
  static constexpr int value = Setup::stress_ops;
};
}  // namespace test

/// Every backend the conformance suite runs against: the PostgreSQL suite binary
/// (leaselock_postgres_tests) builds the same files with LEASELOCK_TEST_POSTGRES_ONLY.
#ifdef LEASELOCK_TEST_POSTGRES_ONLY
#include "postgres/setup.hpp"
#define LEASELOCK_BACKEND_SETUPS test::PostgresSetup
#else
#define LEASELOCK_BACKEND_SETUPS test::InProcessSetup, test::FileSetup
#endif
