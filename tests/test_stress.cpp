// Many threads, many keys, random modes, TTLs and waits — and an invariant checker that
// replays what every thread saw: no exclusive lease overlapping any other live lease,
// fences strictly increasing per key in grant order, every release answered truthfully,
// nothing left behind. Real time here (steady_clock): the invariants hold whatever the
// timing, so the test cannot be flaky, only slow.
#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <thread>

#include "support.hpp"

using namespace std::chrono_literals;
using leaselock::Mode;

namespace {

using Clock = std::chrono::steady_clock;

struct Held {
  int key;
  std::uint64_t fence;
  Mode mode;
  Clock::time_point acquired_at;
  Clock::time_point end;  // min(expiry, a moment before the release call)
};

struct ThreadLog {
  std::vector<Held> held;
  std::vector<leaselock::Token> forgotten;
  std::size_t timeouts = 0;
  std::size_t release_lies = 0;  // release() said the opposite of what the clock proves
};

}  // namespace

TEST_CASE_TEMPLATE("stress: invariants hold under 6 threads on 64 keys" * doctest::timeout(120),
                   Setup, LEASELOCK_BACKEND_SETUPS) {
  // Where backends can share storage (FileBackend), half the threads use a second one.
  using Manager = leaselock::LockManager<Clock, typename Setup::Backend>;
  Setup setup;
  Manager locks{setup.make()};
  std::unique_ptr<Manager> second;
  if constexpr (Setup::instances_share_storage) second = std::make_unique<Manager>(setup.make());
  constexpr int kThreads = 6;
  constexpr int kKeys = 64;
  constexpr int kOpsPerThread = test::stress_ops<Setup>::value;
  std::vector<std::string> keys;
  for (int k = 0; k < kKeys; ++k) keys.push_back("stress/key/" + std::to_string(k));
  std::vector<ThreadLog> logs(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 random(static_cast<std::uint64_t>(t) * 7919u + 1);
      ThreadLog& log = logs[static_cast<std::size_t>(t)];
      for (int op = 0; op < kOpsPerThread; ++op) {
        // Hot keys: half the operations go to 8 keys, so waits and hand-offs are common.
        const int key =
            random() % 2 ? static_cast<int>(random() % 8) : static_cast<int>(random() % kKeys);
        const Mode mode = random() % 3 == 0 ? Mode::exclusive : Mode::shared;
        const auto ttl = std::chrono::microseconds(200 + random() % 3000);
        const auto wait = std::chrono::microseconds(random() % 4 == 0 ? 0 : random() % 2000);
        Manager& manager = second && t % 2 ? *second : locks;
        auto lease = manager.try_acquire(keys[static_cast<std::size_t>(key)], mode, ttl, wait);
        if (!lease) {
          ++log.timeouts;
          continue;
        }
        const std::uint64_t fence = lease.fence();
        const auto acquired_at = lease.acquired_at();
        const auto expires_at = lease.expires_at();
        const auto hold = std::chrono::microseconds(random() % 400);
        const auto until = Clock::now() + hold;
        while (Clock::now() < until) std::this_thread::yield();
        if (random() % 50 == 0) {  // forget it: it must expire by itself
          log.held.push_back({key, fence, mode, acquired_at, expires_at});
          log.forgotten.push_back(lease.detach());
          continue;
        }
        const auto before = Clock::now();
        const bool released = lease.release();
        const auto after = Clock::now();
        // The release happened between `before` and `after`; the answer must match.
        if (after < expires_at && !released) ++log.release_lies;
        if (before >= expires_at && released) ++log.release_lies;
        log.held.push_back({key, fence, mode, acquired_at, std::min(expires_at, before)});
      }
    });
  }
  for (auto& thread : threads) thread.join();

  std::map<int, std::vector<Held>> by_key;
  std::size_t grants = 0;
  std::size_t timeouts = 0;
  std::size_t lies = 0;
  for (const ThreadLog& log : logs) {
    for (const Held& h : log.held) by_key[h.key].push_back(h);
    grants += log.held.size();
    timeouts += log.timeouts;
    lies += log.release_lies;
  }
  MESSAGE("grants: " << grants << ", timeouts: " << timeouts << ", keys used: " << by_key.size());
  CHECK(grants > std::size_t{kThreads} * kOpsPerThread * 5 / 18);  // 10,000 of 36,000
  CHECK(timeouts > 0);                                             // the load really contended
  CHECK(lies == 0);

  std::size_t overlaps = 0;
  std::size_t fence_errors = 0;
  for (auto& [key, leases] : by_key) {
    // Fences: unique per key, and grant order (fence order) matches time order.
    std::sort(leases.begin(), leases.end(),
              [](const Held& a, const Held& b) { return a.fence < b.fence; });
    for (std::size_t i = 1; i < leases.size(); ++i) {
      if (leases[i].fence == leases[i - 1].fence) ++fence_errors;
      if (leases[i].acquired_at < leases[i - 1].acquired_at) ++fence_errors;
    }
    // Overlap: sweep in time order, remembering the latest end of any earlier lease
    // and of any earlier exclusive lease.
    std::stable_sort(leases.begin(), leases.end(),
                     [](const Held& a, const Held& b) { return a.acquired_at < b.acquired_at; });
    Clock::time_point latest_end{};
    Clock::time_point latest_exclusive_end{};
    for (const Held& h : leases) {
      if (h.mode == Mode::exclusive && h.acquired_at < latest_end) ++overlaps;
      if (h.mode == Mode::shared && h.acquired_at < latest_exclusive_end) ++overlaps;
      latest_end = std::max(latest_end, h.end);
      if (h.mode == Mode::exclusive) latest_exclusive_end = std::max(latest_exclusive_end, h.end);
    }
  }
  CHECK(overlaps == 0);
  CHECK(fence_errors == 0);

  // Nothing lost or left: whatever is still listed is a forgotten lease not yet expired.
  std::vector<leaselock::Token> forgotten;
  for (const ThreadLog& log : logs)
    forgotten.insert(forgotten.end(), log.forgotten.begin(), log.forgotten.end());
  const auto now = Clock::now();
  for (const auto& lock : locks.list()) {
    CHECK(lock.waiters == 0);
    for (const auto& holder : lock.holders) {
      CHECK(std::find(forgotten.begin(), forgotten.end(), holder.token) != forgotten.end());
      CHECK(holder.expires_at > now);
    }
  }
}

TEST_CASE("starvation: a writer gets in through a continuous stream of readers" *
          doctest::timeout(60)) {
  leaselock::local_lock_manager locks;
  std::atomic<bool> stop{false};
  std::atomic<long> reads{0};
  std::atomic<int> readers_inside{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      while (!stop) {
        auto lease = locks.try_acquire("hot", Mode::shared, 10s, 10s);
        if (!lease) continue;
        ++readers_inside;
        ++reads;
        std::this_thread::sleep_for(300us);  // readers overlap: the key is never free
        --readers_inside;
      }
    });
  }
  while (reads < 100) std::this_thread::yield();
  bool saw_readers_holding = false;
  for (int round = 0; round < 20; ++round) {
    saw_readers_holding |= locks.status("hot").has_value();
    // Without fairness this would wait for a gap in the stream that never comes.
    auto writer = locks.try_acquire("hot", Mode::exclusive, 10s, 30s);
    REQUIRE(writer);
    CHECK(readers_inside.load() == 0);
    const long before = reads.load();
    CHECK(writer.release());
    while (reads.load() < before + 20) std::this_thread::yield();  // the stream goes on
  }
  stop = true;
  for (auto& r : readers) r.join();
  CHECK(saw_readers_holding);
}
