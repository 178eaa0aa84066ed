// bench/bench_in_process.cpp — what the in-process backend costs, next to what users
// would otherwise write by hand, measured in the same run.
//
//   g++ -std=c++17 -O2 -Iinclude bench/bench_in_process.cpp -o /tmp/bench -pthread
//   /tmp/bench            # ~40 s: 7 repetitions of ~0.2 s per figure, 1M keys for memory
//   /tmp/bench --quick    # ~4 s: 3 repetitions of ~0.04 s, 200,000 keys for memory
//
// Prints one markdown table (row 5, memory, is measured last). Every leaselock figure
// stands beside a baseline measured in this process, interleaved with it (AB, BA, AB, ...
// by repetition), and the ratio
// leaselock / baseline (for throughputs, leaselock / baseline of ops/s). Figures are
// medians over repetitions; "spread" is (max - min) / median of leaselock's repetitions.
// Nothing here passes or fails: absolute numbers drift between machines and runs, so
// only read the ratios. The "goal" column quotes the project's targets for reference.
// Multi-threaded rows need idle CPUs: row 3 prints the share of 2 CPUs its threads got,
// and the header and footer print the load average.
#include <malloc.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <leaselock/leaselock.hpp>

#include "bench_common.hpp"

namespace {

using namespace bench;  // the helpers shared with bench_file.cpp

using SteadyClock = std::chrono::steady_clock;
using Manager = leaselock::local_lock_manager;
using Lease = Manager::Lease;
using leaselock::Mode;

constexpr std::chrono::seconds kTtl{60};
// 21 characters: longer than libstdc++'s 15-byte small-string buffer, like a real path.
constexpr const char* kKey = "repo/src/main_mod.cpp";
constexpr const char* kOtherKey = "repo/src/util_mod.cpp";

struct Config {
  int reps = 7;
  double seconds = 0.2;
  std::size_t memory_keys = 1000000;
};

// --- statistics --------------------------------------------------------------------------

double spread(const std::vector<double>& values) {
  if (values.size() < 2) return 0.0;
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  const double mid = median(values);
  return mid > 0 ? (*hi - *lo) / mid : 0.0;
}

// --- timing harnesses ------------------------------------------------------------------

/// Calls of `op` between two readings of the clock (ns_per_op) or of the stop flag.
constexpr int kBatch = 256;

/// CPU seconds this process has used so far (all threads).
double cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

/// Of the CPU time `threads` busy threads could have had in the multi-threaded runs,
/// how much they got (low when other processes share the machine). Median per row.
std::vector<double> cpu_shares;

/// Total ops/s of `threads` threads, thread i running make_op(i)() in a loop.
template <class MakeOp>
double ops_per_second(int threads, MakeOp&& make_op, double seconds) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<bool> stop{false};
  std::vector<std::uint64_t> counts(static_cast<std::size_t>(threads), 0);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      auto op = make_op(t);
      for (int i = 0; i < kBatch; ++i) op();  // warm-up
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      std::uint64_t ops = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        for (int i = 0; i < kBatch; ++i) op();
        ops += kBatch;
      }
      counts[static_cast<std::size_t>(t)] = ops;
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  const double cpu_start = cpu_seconds();
  const auto start = SteadyClock::now();
  go.store(true, std::memory_order_release);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop.store(true);
  const auto end = SteadyClock::now();
  const double cpu_used = cpu_seconds() - cpu_start;
  for (auto& thread : pool) thread.join();
  std::uint64_t total = 0;
  for (std::uint64_t c : counts) total += c;
  const double elapsed = std::chrono::duration<double>(end - start).count();
  cpu_shares.push_back(cpu_used / (elapsed * threads));
  return static_cast<double>(total) / elapsed;
}

// --- the hand-written baseline: std::mutex + unordered_map<string, Entry> ----------------
//
// What a user writes without a library: one mutex, one map, a random 128-bit token per
// grant, an expiry per entry. Exclusive: fail if an unexpired entry exists, else
// insert/overwrite. Shared: a shared entry counts its holders (and keeps the latest
// expiry); one token per entry, not per holder — simpler (and cheaper) than leaselock.
class HandTable {
 public:
  struct Token {
    std::uint64_t high = 0, low = 0;
    bool operator==(const Token& o) const { return high == o.high && low == o.low; }
  };

  HandTable() : random_(0x5eed5eedULL) {}

  std::optional<Token> try_acquire(const std::string& key, Mode mode, SteadyClock::duration ttl) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto now = SteadyClock::now();
    auto it = table_.find(key);
    if (it != table_.end() && it->second.expires_at > now) {
      Entry& entry = it->second;
      if (mode == Mode::exclusive || entry.mode == Mode::exclusive) return std::nullopt;
      ++entry.holders;
      entry.expires_at = std::max(entry.expires_at, now + ttl);
      return entry.token;
    }
    Entry entry{mode, 1, Token{random_(), random_()}, now + ttl};
    if (it != table_.end()) {
      it->second = entry;
    } else {
      table_.emplace(key, entry);
    }
    return entry.token;
  }

  bool release(const std::string& key, const Token& token) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = table_.find(key);
    if (it == table_.end() || !(it->second.token == token)) return false;
    if (--it->second.holders == 0) table_.erase(it);
    return true;
  }

  std::size_t size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return table_.size();
  }

 private:
  struct Entry {
    Mode mode;
    std::uint32_t holders;
    Token token;
    SteadyClock::time_point expires_at;
  };
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> table_;
  std::mt19937_64 random_;
};

// --- row 1-3: acquire+release pairs ----------------------------------------------------

double leaselock_pair_ns(Manager& m, const std::string& key, Mode mode, double seconds,
                         std::string_view owner = {}) {
  auto op = [&] {
    auto lease = m.try_acquire(key, mode, kTtl, SteadyClock::duration::zero(), owner);
    keep(lease.fence());
  };
  return ns_per_op<kBatch>(op, seconds);
}

double hand_pair_ns(HandTable& table, const std::string& key, Mode mode, double seconds) {
  auto op = [&] {
    auto token = table.try_acquire(key, mode, kTtl);
    if (token) keep(table.release(key, *token));
  };
  return ns_per_op<kBatch>(op, seconds);
}

// --- row 4: hand-off latency -----------------------------------------------------------

struct Latency {
  double median_ns = 0, p99_ns = 0;
  std::size_t samples = 0;
};

Latency summarize(std::vector<std::vector<std::int64_t>>& per_thread) {
  std::vector<std::int64_t> all;
  for (auto& v : per_thread) all.insert(all.end(), v.begin(), v.end());
  Latency result;
  result.samples = all.size();
  result.median_ns = percentile(all, 0.5);
  result.p99_ns = percentile(all, 0.99);
  return result;
}

/// `threads` threads loop on acquire() of one key. The holder waits until every other
/// thread is queued (status().waiters), stamps the time, releases; the next holder (the
/// first queued: FIFO) stamps the time its acquire() returned. Latency = the difference.
Latency leaselock_handoff(int threads, double seconds) {
  Manager m;
  const std::string key = kKey;
  const std::size_t others = static_cast<std::size_t>(threads - 1);
  std::atomic<std::int64_t> stamp{0};
  std::atomic<bool> stop{false};
  std::vector<std::vector<std::int64_t>> samples(static_cast<std::size_t>(threads));
  auto waiting = [&] {
    auto info = m.status(key);
    return info ? info->waiters : std::size_t{0};
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      auto& mine = samples[static_cast<std::size_t>(t)];
      mine.reserve(1 << 16);
      for (;;) {
        Lease lease = m.acquire(key, Mode::exclusive, kTtl);
        const std::int64_t got = mono_ns();
        const std::int64_t released = stamp.exchange(0, std::memory_order_acq_rel);
        if (released != 0) mine.push_back(got - released);
        if (stop.load()) break;
        while (!stop.load() && waiting() < others) std::this_thread::yield();
        stamp.store(mono_ns(), std::memory_order_release);
        keep(lease.release());
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop.store(true);
  for (auto& thread : pool) thread.join();
  return summarize(samples);
}

/// The same ring with std::mutex + std::condition_variable + a turn variable: the holder
/// of the turn waits until every other thread sleeps in wait(), stamps, passes the turn
/// on and notifies (notify_one for 2 threads, notify_all beyond: one condvar).
Latency condvar_handoff(int threads, double seconds) {
  std::mutex mutex;
  std::condition_variable cv;
  int turn = 0;
  int sleeping = 0;
  bool stop = false;
  std::atomic<std::int64_t> stamp{0};
  std::vector<std::vector<std::int64_t>> samples(static_cast<std::size_t>(threads));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      auto& mine = samples[static_cast<std::size_t>(t)];
      mine.reserve(1 << 16);
      std::unique_lock<std::mutex> lock(mutex);
      for (;;) {
        ++sleeping;
        while (turn != t && !stop) cv.wait(lock);
        --sleeping;
        const std::int64_t got = mono_ns();
        const std::int64_t released = stamp.exchange(0, std::memory_order_acq_rel);
        if (released != 0) mine.push_back(got - released);
        if (stop) break;
        while (!stop && sleeping < threads - 1) {
          lock.unlock();
          std::this_thread::yield();
          lock.lock();
        }
        stamp.store(mono_ns(), std::memory_order_release);
        turn = (t + 1) % threads;
        if (threads == 2) {
          cv.notify_one();
        } else {
          cv.notify_all();
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  {
    std::lock_guard<std::mutex> lock(mutex);
    stop = true;
  }
  cv.notify_all();
  for (auto& thread : pool) thread.join();
  return summarize(samples);
}

// --- row 5: memory ---------------------------------------------------------------------

std::int64_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::int64_t>(::sysconf(_SC_PAGESIZE));
}

double mib(std::int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

struct Memory {
  double bytes_per_key = 0;
  std::int64_t before = 0, peak = 0, after_release = 0, after_trim = 0;
  std::size_t left = 0;  // records (or entries) still stored after release
};

Memory leaselock_memory(const std::vector<std::string>& keys) {
  Memory result;
  ::malloc_trim(0);
  {
    Manager m;
    {
      std::vector<Lease> leases;
      leases.reserve(keys.size());
      result.before = rss_bytes();
      for (const auto& key : keys) leases.push_back(m.try_acquire(key, Mode::exclusive, kTtl));
      result.peak = rss_bytes();
      const auto vector_bytes = static_cast<std::int64_t>(keys.size() * sizeof(Lease));
      result.bytes_per_key = static_cast<double>(result.peak - result.before - vector_bytes) /
                             static_cast<double>(keys.size());
      leases.clear();  // every destructor releases
    }                  // and the vector's own storage goes
    result.left = m.backend().record_count();
    result.after_release = rss_bytes();
    ::malloc_trim(0);
    result.after_trim = rss_bytes();
  }
  return result;
}

Memory hand_memory(const std::vector<std::string>& keys) {
  Memory result;
  ::malloc_trim(0);
  HandTable table;
  {
    std::vector<HandTable::Token> tokens;
    tokens.reserve(keys.size());
    result.before = rss_bytes();
    for (const auto& key : keys) tokens.push_back(*table.try_acquire(key, Mode::exclusive, kTtl));
    result.peak = rss_bytes();
    const auto vector_bytes = static_cast<std::int64_t>(keys.size() * sizeof(HandTable::Token));
    result.bytes_per_key = static_cast<double>(result.peak - result.before - vector_bytes) /
                           static_cast<double>(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) table.release(keys[i], tokens[i]);
  }
  result.left = table.size();
  result.after_release = rss_bytes();
  ::malloc_trim(0);
  result.after_trim = rss_bytes();
  return result;
}

// --- output ------------------------------------------------------------------------------

std::string ns(double value) {
  if (value >= 10000) return fmt("%.1f µs", value / 1000.0);
  return fmt(value >= 100 ? "%.0f ns" : "%.1f ns", value);
}

std::string mops(double ops_per_s) { return fmt("%.2f M/s", ops_per_s / 1e6); }

void row(const std::string& what, const std::string& ours, const std::string& base_name,
         const std::string& base, double ratio, const std::string& goal, double spread_value) {
  std::printf("| %s | %s | %s | %s | %s | %s | %s |\n", what.c_str(), ours.c_str(),
              base_name.c_str(), base.c_str(), ratio > 0 ? fmt("%.2f", ratio).c_str() : "—",
              goal.c_str(), spread_value >= 0 ? fmt("%.0f%%", spread_value * 100).c_str() : "—");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  const bool flags_ok = parse_flags(argc, argv, {"--quick"}, [&](std::string_view) {
    cfg.reps = 3;
    cfg.seconds = 0.04;
    cfg.memory_keys = 200000;
  });
  if (!flags_ok) return 2;
  const double s = cfg.seconds;
  const auto bench_start = SteadyClock::now();

  utsname uts{};
  ::uname(&uts);
  std::printf(
      "machine: %ld CPUs online (%u hw threads), %s, Linux %s; compiler: g++ %s%s; "
      "%d reps x %.2f s, medians; load average (1, 5 min): %s\n\n",
      ::sysconf(_SC_NPROCESSORS_ONLN), std::thread::hardware_concurrency(), cpu_model().c_str(),
      uts.release, __VERSION__,
#ifdef NDEBUG
      ", NDEBUG",
#else
      "",
#endif
      cfg.reps, s, loadavg().c_str());
  std::printf("| measurement | leaselock | baseline | baseline value | ratio | goal | spread |\n");
  std::printf("|---|---|---|---|---|---|---|\n");

  const std::string key = kKey;
  const std::string other_key = kOtherKey;

  // 1. exclusive pair, 1 thread.
  Manager m;
  HandTable table;
  const Pair exclusive = interleaved(
      cfg.reps, [&] { return leaselock_pair_ns(m, key, Mode::exclusive, s); },
      [&] { return hand_pair_ns(table, key, Mode::exclusive, s); });
  row("1. exclusive try_acquire+release, warm 21-char key, 1 thread", ns(exclusive.ma()),
      "hand-written mutex+unordered_map", ns(exclusive.mb()), exclusive.ma() / exclusive.mb(),
      "≤ 1.0", spread(exclusive.a));

  // 1b. the same with a 40-byte owner: what a real "pid@fully.qualified.hostname" costs.
  const std::string long_owner = "12345@build-agent-07.ci.example.internal";
  const Pair owned = interleaved(
      cfg.reps, [&] { return leaselock_pair_ns(m, key, Mode::exclusive, s, long_owner); },
      [&] { return hand_pair_ns(table, key, Mode::exclusive, s); });
  row("1b. same, 40-byte owner (long hostname; default owner here: " +
          std::to_string(m.owner().size()) + " bytes)",
      ns(owned.ma()), "hand-written mutex+unordered_map", ns(owned.mb()), owned.ma() / owned.mb(),
      "—", spread(owned.a));

  // 2. shared pair, and the no-names floor.
  const Pair shared = interleaved(
      cfg.reps, [&] { return leaselock_pair_ns(m, key, Mode::shared, s); },
      [&] { return hand_pair_ns(table, key, Mode::shared, s); });
  row("2. shared try_acquire+release, warm 21-char key, 1 thread", ns(shared.ma()),
      "hand-written table, shared count", ns(shared.mb()), shared.ma() / shared.mb(), "≤ 1.0",
      spread(shared.a));
  std::shared_mutex shared_mutex;
  auto sm_exclusive = [&] {
    auto op = [&] {
      shared_mutex.lock();
      shared_mutex.unlock();
    };
    return ns_per_op<kBatch>(op, s);
  };
  auto sm_shared = [&] {
    auto op = [&] {
      shared_mutex.lock_shared();
      shared_mutex.unlock_shared();
    };
    return ns_per_op<kBatch>(op, s);
  };
  const Pair floor_ex = interleaved(
      cfg.reps, [&] { return leaselock_pair_ns(m, key, Mode::exclusive, s); }, sm_exclusive);
  row("2b. exclusive pair vs no-names floor", ns(floor_ex.ma()), "std::shared_mutex lock+unlock",
      ns(floor_ex.mb()), floor_ex.ma() / floor_ex.mb(), "—", spread(floor_ex.a));
  const Pair floor_sh = interleaved(
      cfg.reps, [&] { return leaselock_pair_ns(m, key, Mode::shared, s); }, sm_shared);
  row("2c. shared pair vs no-names floor", ns(floor_sh.ma()),
      "std::shared_mutex lock_shared+unlock_shared", ns(floor_sh.mb()),
      floor_sh.ma() / floor_sh.mb(), "—", spread(floor_sh.a));

  // 3. two threads, distinct keys (one manager / one table shared by both threads), and
  // leaselock's 1-thread rate measured the same way, all three interleaved.
  const std::string keys2[2] = {key, other_key};
  auto leaselock_rate = [&](int threads) {
    return ops_per_second(
        threads,
        [&](int t) {
          const std::string& mine = keys2[t];
          return [&m, &mine] {
            auto lease = m.try_acquire(mine, Mode::exclusive, kTtl);
            keep(lease.fence());
          };
        },
        s);
  };
  auto hand_rate = [&](int threads) {
    return ops_per_second(
        threads,
        [&](int t) {
          const std::string& mine = keys2[t];
          return [&table, &mine] {
            auto token = table.try_acquire(mine, Mode::exclusive, kTtl);
            if (token) keep(table.release(mine, *token));
          };
        },
        s);
  };
  std::vector<double> ours1, ours2, hand2, shares2;
  for (int r = 0; r < cfg.reps; ++r) {
    for (int i = 0; i < 3; ++i) {  // rotate the order each repetition
      switch ((r + i) % 3) {
        case 0: ours1.push_back(leaselock_rate(1)); break;
        case 1:
          ours2.push_back(leaselock_rate(2));
          shares2.push_back(cpu_shares.back());
          break;
        default:
          hand2.push_back(hand_rate(2));
          shares2.push_back(cpu_shares.back());
          break;
      }
    }
  }
  row("3. 2 threads, distinct keys, total exclusive pairs/s (the 2 threads got " +
          fmt("%.0f%%", median(shares2) * 100) + " of 2 CPUs)",
      mops(median(ours2)), "hand-written table, 2 threads", mops(median(hand2)),
      median(ours2) / median(hand2), "≥ 3 (higher better)", spread(ours2));
  std::string row3_reps;
  for (double v : ours2) row3_reps += fmt(" %.2f", v / 1e6);
  row3_reps += " | hand-written, 2 threads:";
  for (double v : hand2) row3_reps += fmt(" %.2f", v / 1e6);
  row("3b. leaselock 2-thread total / its 1-thread rate", mops(median(ours2)),
      "leaselock, 1 thread", mops(median(ours1)), median(ours2) / median(ours1),
      "≥ 1.6 (higher better)", spread(ours1));

  // 4. same-key hand-off latency.
  for (int threads : {2, 4}) {
    std::vector<double> ours_med, ours_p99, base_med, base_p99;
    std::size_t ours_n = 0, base_n = 0;
    interleaved(
        cfg.reps,
        [&] {
          const Latency l = leaselock_handoff(threads, s);
          ours_med.push_back(l.median_ns);
          ours_p99.push_back(l.p99_ns);
          ours_n += l.samples;
          return l.median_ns;
        },
        [&] {
          const Latency l = condvar_handoff(threads, s);
          base_med.push_back(l.median_ns);
          base_p99.push_back(l.p99_ns);
          base_n += l.samples;
          return l.median_ns;
        });
    const std::string n = std::to_string(threads);
    row("4" + std::string(threads == 2 ? "" : "b") + ". hand-off release→next holder, " + n +
            " threads, median (" + std::to_string(ours_n) + " / " + std::to_string(base_n) +
            " samples)",
        ns(median(ours_med)), "mutex+condvar+turn ring", ns(median(base_med)),
        median(ours_med) / median(base_med), threads == 2 ? "≤ 1.5" : "—", spread(ours_med));
    row("4" + std::string(threads == 2 ? "" : "b") + ". same, p99", ns(median(ours_p99)),
        "mutex+condvar+turn ring", ns(median(base_p99)), median(ours_p99) / median(base_p99), "—",
        spread(ours_p99));
  }

  // 6. tokens.
  std::mt19937_64 mt(0x5eed);
  auto token_ns = [&] {
    auto op = [] { keep(leaselock::Token::generate()); };
    return ns_per_op<kBatch>(op, s);
  };
  const Pair mt_pair = interleaved(cfg.reps, token_ns, [&] {
    auto op = [&] {
      keep(mt());
      keep(mt());
    };
    return ns_per_op<kBatch>(op, s);
  });
  row("6. Token::generate() (ChaCha12, per thread)", ns(mt_pair.ma()), "std::mt19937_64, two draws",
      ns(mt_pair.mb()), mt_pair.ma() / mt_pair.mb(), "—", spread(mt_pair.a));
  const Pair syscall_pair = interleaved(cfg.reps, token_ns, [&] {
    auto op = [] {
      unsigned char bytes[16];
      keep(::getrandom(bytes, sizeof bytes, 0));
      keep(bytes[0]);
    };
    return ns_per_op<kBatch>(op, s);
  });
  row("6b. Token::generate()", ns(syscall_pair.ma()), "getrandom(16) syscall",
      ns(syscall_pair.mb()), syscall_pair.ma() / syscall_pair.mb(), "—", spread(syscall_pair.a));

  // 7. the clock, for reference (leaselock reads it 3 times per try_acquire+release pair).
  const Pair clocks = interleaved(
      cfg.reps,
      [&] {
        auto op = [] { keep(SteadyClock::now()); };
        return ns_per_op<kBatch>(op, s);
      },
      [&] {
        auto op = [] {
          timespec ts{};
          ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
          keep(ts);
        };
        return ns_per_op<kBatch>(op, s);
      });
  row("7. reference: steady_clock::now() (not leaselock)", ns(clocks.ma()),
      "clock_gettime(CLOCK_MONOTONIC_COARSE)", ns(clocks.mb()), clocks.ma() / clocks.mb(), "—",
      spread(clocks.a));

  // 5. memory, last: it churns the heap the timings above would otherwise inherit.
  const std::vector<std::string> keys = make_keys(cfg.memory_keys);
  const Memory hand = hand_memory(keys);
  const Memory ours = leaselock_memory(keys);
  const std::string count = cfg.memory_keys == 1000000 ? "1M" : std::to_string(cfg.memory_keys);
  row("5. memory: bytes per held key, " + count + " distinct 21-char keys held at once (Lease " +
          std::to_string(sizeof(Lease)) + " B in a reserved vector, subtracted)",
      fmt("%.0f B", ours.bytes_per_key), "hand-written table (16 B token handles subtracted)",
      fmt("%.0f B", hand.bytes_per_key), ours.bytes_per_key / hand.bytes_per_key, "—", -1);

  std::printf("\n");
  auto report = [&](const char* who, const Memory& mem, const char* left_name) {
    std::printf(
        "- %s: RSS before: %.1f MiB, peak: %.1f MiB (+%.1f), after release: %.1f MiB "
        "(+%.1f), after malloc_trim(0): %.1f MiB (+%.1f); %s after release: %zu\n",
        who, mib(mem.before), mib(mem.peak), mib(mem.peak - mem.before), mib(mem.after_release),
        mib(mem.after_release - mem.before), mib(mem.after_trim), mib(mem.after_trim - mem.before),
        left_name, mem.left);
  };
  std::printf("- row 3, every repetition (M pairs/s), leaselock 2 threads:%s\n", row3_reps.c_str());
  report("leaselock", ours, "backend().record_count()");
  report("hand-written", hand, "table size");
  std::printf(
      "- ratio = leaselock / baseline: for times lower is better, for rates (M/s) higher; "
      "spread = (max-min)/median of leaselock's %d repetitions\n",
      cfg.reps);
  std::printf(
      "- total run time: %.1f s; load average at the end: %s (other processes on "
      "this machine skew the multi-threaded rows: see row 3's CPU share)\n",
      std::chrono::duration<double>(SteadyClock::now() - bench_start).count(), loadavg().c_str());
  return 0;
}
