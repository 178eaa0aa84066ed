// Chaos across processes, and an invariant checker that replays what happened.
//
// 8 forked workers (each with its own file_lock_manager on one lock directory) take and
// release leases on 16 keys: random key, mode, TTL (2-5 s) and wait (try_acquire with
// 0-20 ms, or acquire), held for 0-2 ms; now and then a status(), list() or remove_idle().
// Meanwhile the parent SIGKILLs a worker every 50-150 ms and starts a fresh one in its
// slot: half the time any worker (killed wherever it is: starting up, waiting, inside a
// record update), half the time (and the first time) one whose log shows it holds a
// lease, so that kills of holders happen in every run, even where workers are slow to
// start (TSan). Workers run at nice +5, so the parent keeps its schedule.
//
// Every worker appends fixed-size entries to its own log (O_APPEND, one write(2) each):
// a grant (key, mode, fence, expiry; `asked` read just before the request, `start` just
// after the grant), a release (`end`, read just before the release call), and a `begin`
// before each operation (so a worker stuck in one shows as a long silence in its log).
// The parent logs each kill with the time read just before kill(). All times are CLOCK_MONOTONIC,
// which every process of the machine shares (steady_clock is the same clock).
//
// The checker, check(), is a pure function over the entries; a test case below feeds it
// planted faults to show it can fail. Per key it proves:
//   (1) no two leases overlap in time where at least one is exclusive;
//   (2) fences are unique; among exclusive leases in start order they strictly increase;
//       and a lease's fence is above that of every lease that certainly came before it.
// Then, with every worker gone, status() and list() read every record, every key is free
// at once (its dead holders reclaimed) with a fence above all logged ones, and no worker
// saw a StorageError or any other exception, and none stopped logging for 10 s or more
// (a hang the kills would otherwise hide; the longest TTL is 5 s) or failed to end by
// itself at the deadline. It also counts grants per key and kills that landed while the
// victim held a lease, so a run where nothing happened fails.
//
// Duration: LEASELOCK_CHAOS_SECONDS seconds of chaos (default 2; fractions allowed); the
// test takes about that plus a fraction of a second. A long run by hand:
//   LEASELOCK_CHAOS_SECONDS=600 build/debug/tests/leaselock_tests -tc='*chaos*'
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "support.hpp"

namespace {

using leaselock::Mode;
using Nanos = std::int64_t;  // CLOCK_MONOTONIC nanoseconds

constexpr Nanos kSecond = 1'000'000'000;
constexpr Nanos kMillisecond = 1'000'000;

// --- the log ------------------------------------------------------------------------------

enum class Kind : std::uint32_t { begin = 1, grant = 2, release = 3, kill = 4, error = 5 };

/// One log entry. 64 bytes, so no entry straddles a page of the log file: a write(2) cut
/// short by SIGKILL leaves the whole entry or none of it.
struct Entry {
  Kind kind = Kind::grant;
  std::uint32_t worker = 0;  // the worker's number, unique in a run (a restart gets a new one)
  std::uint32_t pid = 0;
  std::uint32_t key = 0;        // begin, grant, release: the key's index
  std::uint32_t exclusive = 0;  // grant: 1 for Mode::exclusive
  std::uint32_t reserved = 0;
  std::uint64_t fence = 0;  // grant, release
  Nanos asked = 0;          // grant: read just before the request
  // begin: before an operation; grant: just after the grant; release: just before the
  // release; kill: just before kill()
  Nanos time = 0;
  Nanos expires = 0;  // grant: the lease's expiry
  Nanos reserved2 = 0;
};
static_assert(sizeof(Entry) == 64, "log entries must not straddle pages");
static_assert(std::is_trivially_copyable_v<Entry>);

Nanos now_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<Nanos>(ts.tv_sec) * kSecond + static_cast<Nanos>(ts.tv_nsec);
}

void sleep_ns(Nanos ns) noexcept {
  if (ns <= 0) return;
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(ns / kSecond);
  ts.tv_nsec = static_cast<long>(ns % kSecond);
  while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

bool append(int fd, const Entry& entry) noexcept {
  for (;;) {
    const ssize_t wrote = ::write(fd, &entry, sizeof entry);
    if (wrote == static_cast<ssize_t>(sizeof entry)) return true;
    if (wrote < 0 && errno == EINTR) continue;
    return false;
  }
}

int open_log(const std::filesystem::path& path) {
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

/// Appends the entries of the log at `path` (none if it does not exist); returns the
/// number of bytes of a trailing partial entry.
std::size_t read_log(const std::filesystem::path& path, std::vector<Entry>& entries) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return 0;
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t whole = bytes.size() / sizeof(Entry);
  for (std::size_t i = 0; i < whole; ++i) {
    Entry entry;
    std::memcpy(&entry, bytes.data() + i * sizeof(Entry), sizeof entry);
    entries.push_back(entry);
  }
  return bytes.size() % sizeof(Entry);
}

// --- the checker ----------------------------------------------------------------------------
//
// A lease's interval is [start, end]: `start` is read after the grant and `end` before the
// release, so the interval lies inside the time the lease was really held. For a worker
// killed while holding, `end` is the time read just before kill(): its process died after
// that, and only then could anyone reclaim the lease (if the grant entry's start is later
// still, the interval is just [start, start]). A lease stops counting at its expiry, so
// `end` is clipped to it. Clock reads of different processes are comparable: one clock.
//
// Fences strictly increase per key in grant order, and a grant lies between its `asked`
// and its `start`. So a lease B must have a fence above lease A's when
//   - A was granted before B was asked for (A.start < B.asked), whatever their modes; or
//   - A and B conflict (one is exclusive) and A ended before B started (A.end < B.start):
//     B cannot have been granted first, since it would then have had to end before A's
//     grant, yet it was still held at B.start.
// (For two shared leases, "A ended before B started" alone proves nothing: B may have been
// granted first and its worker descheduled before reading `start`.) Among exclusive
// leases, start order is grant order. A lease whose `start` was read after its expiry
// ("stale": its worker stalled longer than the TTL) says nothing about when it was held:
// it is left out of every check that uses its interval.

/// A lease as the checker counts it.
struct Held {
  Entry grant;
  Nanos end = 0;        // clipped to [grant.time, grant.expires]
  bool killed = false;  // its worker was killed holding it; `end` is the kill time
  bool stale = false;   // grant.time >= grant.expires

  Nanos start() const noexcept { return grant.time; }
  bool exclusive() const noexcept { return grant.exclusive != 0; }
};

struct Violation {
  enum class Kind { overlap, duplicate_fence, fence_order } kind;
  Held first;   // overlap: the one that started first; fence_order: the one that came first
  Held second;  // ... and the other (for fence_order: the one whose fence is not above)

  std::string describe() const {
    std::ostringstream out;
    out << "key " << first.grant.key << ": ";
    switch (kind) {
      case Kind::overlap: out << "OVERLAP "; break;
      case Kind::duplicate_fence: out << "DUPLICATE FENCE "; break;
      case Kind::fence_order: out << "FENCE NOT ABOVE AN EARLIER LEASE'S "; break;
    }
    out << lease(first) << " / " << lease(second);
    return out.str();
  }

  static std::string lease(const Held& h) {
    std::ostringstream out;
    out << (h.exclusive() ? "exclusive" : "shared") << " fence " << h.grant.fence << " (worker "
        << h.grant.worker << " pid " << h.grant.pid << ", asked " << h.grant.asked << ", held ["
        << h.start() << ", " << h.end << (h.killed ? " killed" : "") << "], expires "
        << h.grant.expires << (h.stale ? ", stale" : "") << ")";
    return out.str();
  }
};

struct Report {
  std::map<std::uint32_t, std::size_t> grants;           // per key
  std::map<std::uint32_t, std::uint64_t> highest_fence;  // per key
  std::size_t total_grants = 0;
  std::size_t kills = 0;
  std::size_t kills_while_holding = 0;
  std::size_t errors = 0;     // error entries: a worker caught an exception
  std::size_t stale = 0;      // leases whose start was read after their expiry
  std::size_t outlived = 0;   // leases held (not killed) past their expiry
  Nanos longest_silence = 0;  // between two events of one worker (entries, its kill)
  std::uint32_t silent_worker = 0;
  std::vector<std::string> anomalies;  // entries that do not fit together
  std::vector<Violation> violations;
};

void check_key(const std::vector<Held>& held, Report& report) {
  const std::size_t n = held.size();
  const auto by = [&](auto less) {
    std::vector<std::size_t> order;
    for (std::size_t i = 0; i < n; ++i) order.push_back(i);
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      const Held& x = held[a];
      const Held& y = held[b];
      if (less(x, y) != less(y, x)) return less(x, y);
      return std::make_pair(x.grant.fence, x.grant.worker) <
             std::make_pair(y.grant.fence, y.grant.worker);
    });
    return order;
  };
  const auto by_start = by([](const Held& a, const Held& b) { return a.start() < b.start(); });
  const auto by_asked =
      by([](const Held& a, const Held& b) { return a.grant.asked < b.grant.asked; });
  const auto by_end = by([](const Held& a, const Held& b) { return a.end < b.end; });
  const auto by_fence =
      by([](const Held& a, const Held& b) { return a.grant.fence < b.grant.fence; });

  // (1) Overlaps: sweep in start order, keeping the leases whose interval is still open.
  std::vector<std::size_t> open;
  for (const std::size_t b : by_start) {
    if (held[b].stale) continue;
    open.erase(std::remove_if(open.begin(), open.end(),
                              [&](std::size_t a) { return held[a].end <= held[b].start(); }),
               open.end());
    for (const std::size_t a : open) {
      const bool conflict = held[a].exclusive() || held[b].exclusive();
      if (conflict && held[a].start() < held[b].end && held[b].start() < held[a].end)
        report.violations.push_back(Violation{Violation::Kind::overlap, held[a], held[b]});
    }
    open.push_back(b);
  }

  // (2) Fences unique.
  for (std::size_t i = 1; i < n; ++i) {
    const Held& a = held[by_fence[i - 1]];
    const Held& b = held[by_fence[i]];
    if (a.grant.fence == b.grant.fence) {
      const bool a_first = a.start() <= b.start();
      report.violations.push_back(
          Violation{Violation::Kind::duplicate_fence, a_first ? a : b, a_first ? b : a});
    }
  }

  // (2) Fence order: pairs (earlier, later) where the later lease's fence is below.
  std::set<std::pair<std::size_t, std::size_t>> inversions;
  std::optional<std::size_t> previous;  // exclusive leases in start order
  for (const std::size_t b : by_start) {
    if (held[b].stale || !held[b].exclusive()) continue;
    if (previous && held[*previous].grant.fence > held[b].grant.fence)
      inversions.emplace(*previous, b);
    previous = b;
  }
  // For each lease, the highest-fenced lease that certainly came before it.
  const auto higher = [&](std::optional<std::size_t> best, std::size_t candidate) {
    return !best || held[candidate].grant.fence > held[*best].grant.fence ? candidate : *best;
  };
  std::vector<std::optional<std::size_t>> worst_before(n);
  {
    // Granted before it was asked for (any modes).
    std::optional<std::size_t> best;
    std::size_t next = 0;
    for (const std::size_t b : by_asked) {
      while (next < n && held[by_start[next]].start() < held[b].grant.asked)
        best = higher(best, by_start[next++]);
      if (best && *best != b) worst_before[b] = higher(worst_before[b], *best);
    }
  }
  {
    // Ended before it started, in a conflicting mode.
    std::optional<std::size_t> best_any;
    std::optional<std::size_t> best_exclusive;
    std::size_t next = 0;
    for (const std::size_t b : by_start) {
      if (held[b].stale) continue;
      for (; next < n && held[by_end[next]].end < held[b].start(); ++next) {
        const std::size_t a = by_end[next];
        if (held[a].stale) continue;
        best_any = higher(best_any, a);
        if (held[a].exclusive()) best_exclusive = higher(best_exclusive, a);
      }
      const auto best = held[b].exclusive() ? best_any : best_exclusive;
      if (best && *best != b) worst_before[b] = higher(worst_before[b], *best);
    }
  }
  for (std::size_t b = 0; b < n; ++b)
    if (worst_before[b] && held[*worst_before[b]].grant.fence > held[b].grant.fence)
      inversions.emplace(*worst_before[b], b);
  for (const auto& [a, b] : inversions)
    report.violations.push_back(Violation{Violation::Kind::fence_order, held[a], held[b]});
}

/// Replays the workers' and the parent's log entries (each worker's in the order it wrote
/// them; workers and kills in any order) and reports what they prove.
Report check(const std::vector<Entry>& entries) {
  Report report;
  std::map<std::uint32_t, Nanos> killed_at;
  for (const Entry& e : entries) {
    if (e.kind != Kind::kill) continue;
    ++report.kills;
    if (!killed_at.emplace(e.worker, e.time).second)
      report.anomalies.push_back("worker " + std::to_string(e.worker) + " killed twice");
  }
  std::map<std::uint32_t, std::vector<Held>> by_key;
  const auto count = [&](const Entry& grant, Nanos end, bool killed) {
    Held h;
    h.grant = grant;
    h.killed = killed;
    h.stale = grant.time >= grant.expires;
    h.end = std::max(grant.time, std::min(end, grant.expires));
    report.stale += h.stale;
    report.outlived += !h.stale && !killed && end > grant.expires;
    ++report.grants[grant.key];
    ++report.total_grants;
    auto& highest = report.highest_fence[grant.key];
    highest = std::max(highest, grant.fence);
    by_key[grant.key].push_back(h);
  };
  std::map<std::uint32_t, std::optional<Entry>> holding;  // per worker
  std::map<std::uint32_t, Nanos> last_heard;              // per worker
  const auto heard = [&](std::uint32_t worker, Nanos time) {
    const auto [it, first] = last_heard.emplace(worker, time);
    if (first) return;
    if (time - it->second > report.longest_silence) {
      report.longest_silence = time - it->second;
      report.silent_worker = worker;
    }
    it->second = std::max(it->second, time);
  };
  for (const Entry& e : entries) {
    if (e.kind != Kind::kill) heard(e.worker, e.time);
    switch (e.kind) {
      case Kind::begin: break;
      case Kind::grant: {
        auto& held = holding[e.worker];
        if (held) {
          report.anomalies.push_back("worker " + std::to_string(e.worker) +
                                     ": a grant while it held fence " +
                                     std::to_string(held->fence));
          count(*held, held->time, false);
        }
        held = e;
        break;
      }
      case Kind::release: {
        auto& held = holding[e.worker];
        if (!held || held->key != e.key || held->fence != e.fence) {
          report.anomalies.push_back("worker " + std::to_string(e.worker) +
                                     ": a release of fence " + std::to_string(e.fence) +
                                     " it did not hold");
          break;
        }
        count(*held, e.time, false);
        held.reset();
        break;
      }
      case Kind::error: ++report.errors; break;
      case Kind::kill: break;
    }
  }
  for (const auto& [worker, time] : killed_at)
    if (last_heard.count(worker)) heard(worker, time);
  for (const auto& [worker, held] : holding) {
    if (!held) continue;
    const auto kill = killed_at.find(worker);
    if (kill == killed_at.end()) {
      report.anomalies.push_back("worker " + std::to_string(worker) + " never released fence " +
                                 std::to_string(held->fence) + " and was not killed");
      count(*held, held->time, false);
      continue;
    }
    ++report.kills_while_holding;
    count(*held, kill->second, true);
  }
  for (const auto& [key, held] : by_key) check_key(held, report);
  return report;
}

// --- the workers ----------------------------------------------------------------------------

constexpr std::size_t kWorkers = 8;
constexpr std::uint32_t kKeys = 16;

// Exit codes of a worker that ends by itself (0: it reached the deadline).
constexpr int kExitStorageError = 10;
constexpr int kExitOtherError = 11;
constexpr int kExitLogFailed = 12;

std::string key_name(std::uint32_t key) { return "chaos/key-" + std::to_string(key); }

struct Plan {
  std::filesystem::path locks;  // the lock directory
  std::filesystem::path logs;   // the logs
  Nanos deadline = 0;           // workers start no request after it
};

std::filesystem::path worker_log(const Plan& plan, std::uint32_t worker) {
  return plan.logs / ("worker-" + std::to_string(worker) + ".log");
}
std::filesystem::path worker_failure(const Plan& plan, std::uint32_t worker) {
  return plan.logs / ("worker-" + std::to_string(worker) + ".failure");
}

// One worker's life: leases until the deadline. Returns its exit code.
int work(const Plan& plan, std::uint32_t worker, std::uint64_t seed, int log) {
  leaselock::file_lock_manager locks{leaselock::FileBackend{plan.locks}};
  std::mt19937_64 random(seed);
  const auto pid = static_cast<std::uint32_t>(::getpid());
  while (now_ns() < plan.deadline) {
    const auto key = static_cast<std::uint32_t>(random() % kKeys);
    const std::string name = key_name(key);
    Entry begin;
    begin.kind = Kind::begin;
    begin.worker = worker;
    begin.pid = pid;
    begin.key = key;
    begin.time = now_ns();
    if (!append(log, begin)) return kExitLogFailed;
    const auto roll = random() % 100;
    if (roll < 4) {  // now and then: read paths, and idle records removed under everyone
      if (roll < 2) (void)locks.status(name);
      if (roll == 2) (void)locks.list();
      if (roll == 3) (void)locks.backend().remove_idle();
      continue;
    }
    const Mode mode = random() % 2 ? Mode::exclusive : Mode::shared;
    const auto ttl = std::chrono::milliseconds(static_cast<std::int64_t>(2000 + random() % 3001));
    const bool forever = random() % 4 == 0;
    const auto wait = std::chrono::microseconds(
        random() % 3 == 0 ? 0 : static_cast<std::int64_t>(random() % 20001));
    Entry grant;
    grant.kind = Kind::grant;
    grant.worker = worker;
    grant.pid = pid;
    grant.key = key;
    grant.exclusive = mode == Mode::exclusive;
    grant.asked = now_ns();
    auto lease =
        forever ? locks.acquire(name, mode, ttl) : locks.try_acquire(name, mode, ttl, wait);
    if (!lease) continue;
    grant.time = now_ns();
    grant.fence = lease.fence();
    grant.expires =
        std::chrono::duration_cast<std::chrono::nanoseconds>(lease.expires_at().time_since_epoch())
            .count();
    if (!append(log, grant)) return kExitLogFailed;
    sleep_ns(static_cast<Nanos>(random() % 2'000'001));
    Entry release = grant;
    release.kind = Kind::release;
    release.time = now_ns();
    if (!append(log, release)) return kExitLogFailed;
    lease.release();
  }
  return 0;
}

// The child's side of a fork: never returns (into doctest or anywhere else).
[[noreturn]] void run_worker(const Plan& plan, std::uint32_t worker, std::uint64_t seed) {
  // Below the parent's priority, so that its kill schedule keeps time on a loaded machine.
  const int niceness = ::nice(5);
  (void)niceness;
  const int log = open_log(worker_log(plan, worker));
  if (log < 0) ::_exit(kExitLogFailed);
  int code = kExitOtherError;
  std::string failure;
  try {
    code = work(plan, worker, seed, log);
  } catch (const leaselock::StorageError& e) {
    code = kExitStorageError;
    failure = std::string("StorageError: ") + e.what();
  } catch (const std::exception& e) {
    failure = std::string("exception: ") + e.what();
  } catch (...) {
    failure = "unknown exception";
  }
  if (!failure.empty()) {
    Entry error;
    error.kind = Kind::error;
    error.worker = worker;
    error.pid = static_cast<std::uint32_t>(::getpid());
    error.time = now_ns();
    (void)append(log, error);
    std::ofstream(worker_failure(plan, worker)) << failure;
  }
  ::close(log);
  ::_exit(code);
}

// --- the parent -----------------------------------------------------------------------------

double chaos_seconds() {
  const char* text = std::getenv("LEASELOCK_CHAOS_SECONDS");
  if (!text || !*text) return 2.0;
  char* rest = nullptr;
  const double seconds = std::strtod(text, &rest);
  return rest && *rest == '\0' && seconds > 0 ? seconds : 2.0;
}

std::size_t threads_in_this_process() {
  std::size_t count = 0;
  if (DIR* tasks = ::opendir("/proc/self/task")) {
    while (const dirent* entry = ::readdir(tasks)) count += entry->d_name[0] != '.';
    ::closedir(tasks);
  }
  return count;
}

/// A wait status as text.
std::string status_text(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

/// The wait status of `pid` if it has ended (reaping it); with `block`, waits for it.
std::optional<int> reap(pid_t pid, bool block) {
  int status = 0;
  for (;;) {
    const pid_t got = ::waitpid(pid, &status, block ? 0 : WNOHANG);
    if (got == pid) return status;
    if (got < 0 && errno == EINTR) continue;
    return std::nullopt;
  }
}

/// True if the last entry in `worker`'s log is a grant: it holds a lease now (or did a
/// moment ago).
bool holds_now(const Plan& plan, std::uint32_t worker) {
  const int fd = ::open(worker_log(plan, worker).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  constexpr auto kSize = static_cast<off_t>(sizeof(Entry));
  Entry last;
  struct stat st {};
  const bool read = ::fstat(fd, &st) == 0 && st.st_size >= kSize &&
                    ::pread(fd, &last, sizeof last, st.st_size / kSize * kSize - kSize) ==
                        static_cast<ssize_t>(sizeof last);
  ::close(fd);
  return read && last.kind == Kind::grant;
}

struct Slot {
  pid_t pid = -1;
  std::uint32_t worker = 0;
  bool done = false;
};

}  // namespace

TEST_CASE("file chaos: the checker finds a planted overlap and a planted fence inversion") {
  const auto grant = [&](std::uint32_t worker, std::uint32_t key, bool exclusive,
                         std::uint64_t fence, Nanos asked, Nanos start, Nanos expires = 1'000'000) {
    Entry e;
    e.kind = Kind::grant;
    e.worker = worker;
    e.pid = 100 + worker;
    e.key = key;
    e.exclusive = exclusive;
    e.fence = fence;
    e.asked = asked;
    e.time = start;
    e.expires = expires;
    return e;
  };
  const auto release = [](const Entry& granted, Nanos end) {
    Entry e = granted;
    e.kind = Kind::release;
    e.time = end;
    return e;
  };
  const auto kill = [](std::uint32_t worker, Nanos time) {
    Entry e;
    e.kind = Kind::kill;
    e.worker = worker;
    e.time = time;
    return e;
  };
  std::vector<Entry> entries;
  const auto held = [&](const Entry& granted, Nanos end) {
    entries.push_back(granted);
    entries.push_back(release(granted, end));
  };
  // Key 0, planted: two exclusive leases overlap in [150, 200].
  held(grant(1, 0, true, 1, 90, 100), 200);
  held(grant(2, 0, true, 2, 140, 150), 250);
  // Key 1, planted: the later exclusive lease has the lower fence.
  held(grant(1, 1, true, 5, 290, 300), 400);
  held(grant(2, 1, true, 4, 450, 500), 600);
  // Key 2, legal: a holder killed at 1100, its successor from 1200; a worker killed (at
  // 1400) before it logged its grant's start (1500): [1500, 1500].
  entries.push_back(grant(3, 2, true, 1, 990, 1000));
  entries.push_back(kill(3, 1100));
  held(grant(4, 2, true, 2, 1050, 1200), 1300);
  entries.push_back(grant(5, 2, false, 3, 1390, 1500));
  entries.push_back(kill(5, 1400));
  held(grant(6, 2, true, 4, 1450, 1600), 1700);
  // Key 3, legal: shared leases; fence 8 ended (900) before fence 7's start was read (950),
  // but 7 was asked for (700) before 8 was granted, so 7 may well have been granted first.
  held(grant(7, 3, false, 7, 700, 950), 1000);
  held(grant(8, 3, false, 8, 800, 850), 900);
  // Key 4, legal: an exclusive lease that expired at 100 stops counting then.
  held(grant(9, 4, true, 1, 10, 20, 100), 500);
  held(grant(10, 4, true, 2, 110, 150), 200);
  // A worker that caught an exception.
  Entry error;
  error.kind = Kind::error;
  error.worker = 11;
  entries.push_back(error);

  const Report report = check(entries);
  REQUIRE(report.violations.size() == 2);
  const Violation& overlap = report.violations[0];
  CHECK(overlap.kind == Violation::Kind::overlap);
  CHECK(overlap.first.grant.key == 0);
  CHECK(overlap.first.grant.fence == 1);
  CHECK(overlap.second.grant.fence == 2);
  const Violation& inversion = report.violations[1];
  CHECK(inversion.kind == Violation::Kind::fence_order);
  CHECK(inversion.first.grant.key == 1);
  CHECK(inversion.first.grant.fence == 5);
  CHECK(inversion.second.grant.fence == 4);
  CHECK(report.total_grants == 12);
  CHECK(report.grants.at(2) == 4);
  CHECK(report.highest_fence.at(1) == 5);
  CHECK(report.kills == 2);
  CHECK(report.kills_while_holding == 2);
  CHECK(report.errors == 1);
  CHECK(report.outlived == 1);
  CHECK(report.stale == 0);
  CHECK(report.anomalies.empty());
  CHECK(report.longest_silence == 480);  // worker 9: granted at 20, released at 500
  CHECK(report.silent_worker == 9);
  MESSAGE(overlap.describe());
  MESSAGE(inversion.describe());

  // Without the two planted faults: nothing to report.
  std::vector<Entry> clean;
  for (const Entry& e : entries)
    if (e.key > 1 || e.kind == Kind::kill || e.kind == Kind::error) clean.push_back(e);
  CHECK(check(clean).violations.empty());

  // Two leases with one fence (shared, so they may overlap): reported as such, only.
  std::vector<Entry> twins;
  for (const Entry& e : {grant(1, 0, false, 9, 1990, 2000), grant(2, 0, false, 9, 2040, 2050)}) {
    twins.push_back(e);
    twins.push_back(release(e, e.time + 100));
  }
  const Report dup = check(twins);
  REQUIRE(dup.violations.size() == 1);
  CHECK(dup.violations[0].kind == Violation::Kind::duplicate_fence);

  // Entries that do not fit together are anomalies.
  std::vector<Entry> odd = {release(grant(1, 0, true, 1, 0, 10), 20), grant(2, 0, true, 2, 30, 40)};
  CHECK(check(odd).anomalies.size() == 2);  // a release never granted; a grant never released
}

TEST_CASE("file chaos: 8 processes, SIGKILLed at random, keep every lease invariant") {
  const double seconds = chaos_seconds();
  test::TempDir tmp;
  Plan plan{tmp.sub("locks"), tmp.sub("logs"), 0};
  std::filesystem::create_directory(plan.logs);
  // fork() from a multi-threaded process is unsafe (and TSan aborts such children).
  REQUIRE(threads_in_this_process() == 1);
  // Lease expiries (steady_clock) and the logged times (CLOCK_MONOTONIC) are one clock.
  const Nanos steady = std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::steady_clock::now().time_since_epoch())
                           .count();
  REQUIRE(std::llabs(steady - now_ns()) < 100 * kMillisecond);

  const std::uint64_t seed = std::random_device{}() * 0x100000001ull ^ std::random_device{}();
  std::mt19937_64 random(seed);
  const int kill_log = open_log(plan.logs / "kills.log");
  REQUIRE(kill_log >= 0);
  std::vector<Slot> slots(kWorkers);
  struct Reaper {  // if the test stops early, so do the workers
    std::vector<Slot>& slots;
    ~Reaper() {
      for (Slot& slot : slots) {
        if (slot.done || slot.pid <= 0) continue;
        ::kill(slot.pid, SIGKILL);
        (void)reap(slot.pid, true);
      }
    }
  } reaper{slots};
  std::vector<std::string> failures;  // workers that ended badly
  std::uint32_t workers_started = 0;
  std::size_t aimed = 0;  // kills aimed at a worker that held a lease
  const auto spawn = [&](Slot& slot) {
    slot.worker = ++workers_started;
    slot.done = false;
    const std::uint64_t worker_seed = seed ^ (0x9e3779b97f4a7c15ull * slot.worker);
    std::fflush(nullptr);  // the child must not print the parent's buffered output again
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) run_worker(plan, slot.worker, worker_seed);
    slot.pid = pid;
  };
  // A worker that ended by itself: fine at the deadline (0), a failure otherwise.
  const auto ended = [&](const Slot& slot, int status) {
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
    failures.push_back("worker " + std::to_string(slot.worker) + " (pid " +
                       std::to_string(slot.pid) + ") ended with " + status_text(status));
  };
  // Kills `slot`'s worker; logs the kill if the worker died of it.
  const auto kill = [&](Slot& slot) {
    Entry entry;
    entry.kind = Kind::kill;
    entry.worker = slot.worker;
    entry.pid = static_cast<std::uint32_t>(slot.pid);
    entry.time = now_ns();
    ::kill(slot.pid, SIGKILL);
    const int status = reap(slot.pid, true).value_or(0);
    slot.done = true;
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      REQUIRE(append(kill_log, entry));
    else
      ended(slot, status);
  };

  const Nanos began = now_ns();
  plan.deadline = began + static_cast<Nanos>(seconds * static_cast<double>(kSecond));
  for (Slot& slot : slots) spawn(slot);
  for (;;) {
    const Nanos pause = 50 * kMillisecond + static_cast<Nanos>(random() % 101) * kMillisecond;
    if (now_ns() + pause >= plan.deadline) break;
    sleep_ns(pause);
    for (Slot& slot : slots) {
      if (const auto status = reap(slot.pid, false)) {
        slot.done = true;
        ended(slot, *status);
        spawn(slot);
      }
    }
    // Half the kills strike anywhere (starting up, waiting, inside a record update, ...);
    // the other half, and the first, aim at a worker that holds a lease, if any does.
    std::size_t victim = random() % kWorkers;
    if (aimed == 0 || random() % 2) {
      std::vector<std::size_t> holders;
      for (std::size_t i = 0; i < kWorkers; ++i)
        if (holds_now(plan, slots[i].worker)) holders.push_back(i);
      if (!holders.empty()) {
        victim = holders[random() % holders.size()];
        ++aimed;
      }
    }
    kill(slots[victim]);
    spawn(slots[victim]);
  }

  // Every worker stops at the deadline by itself; one that does not is stuck.
  const Nanos give_up = plan.deadline + 30 * kSecond;
  std::size_t hung = 0;
  for (;;) {
    bool all_done = true;
    for (Slot& slot : slots) {
      if (slot.done) continue;
      if (const auto status = reap(slot.pid, false)) {
        slot.done = true;
        ended(slot, *status);
      } else {
        all_done = false;
      }
    }
    if (all_done) break;
    if (now_ns() >= give_up) {
      // Show what the stuck workers wait for, then stop them.
      leaselock::file_lock_manager locks{leaselock::FileBackend{plan.locks}};
      for (std::uint32_t key = 0; key < kKeys; ++key) {
        try {
          const auto info = locks.status(key_name(key));
          if (!info) continue;
          std::string text = key_name(key) + ": " + std::to_string(info->waiters) + " waiting;";
          for (const auto& h : info->holders)
            text += " " + h.owner + (h.mode == Mode::exclusive ? " exclusive" : " shared") +
                    " fence " + std::to_string(h.fence);
          MESSAGE(text);
        } catch (const std::exception& e) {
          MESSAGE((key_name(key) + ": " + e.what()));
        }
      }
      for (Slot& slot : slots) {
        if (slot.done) continue;
        ++hung;
        failures.push_back("worker " + std::to_string(slot.worker) + " (pid " +
                           std::to_string(slot.pid) + ") still running 30 s after the deadline");
        kill(slot);
      }
      break;
    }
    sleep_ns(kMillisecond);
  }
  ::close(kill_log);
  const Nanos ran = now_ns() - began;

  // Replay the logs.
  std::vector<Entry> entries;
  std::size_t torn = 0;
  for (std::uint32_t worker = 1; worker <= workers_started; ++worker) {
    torn += read_log(worker_log(plan, worker), entries) != 0;
    std::ifstream failure(worker_failure(plan, worker));
    if (failure)
      failures.push_back(
          "worker " + std::to_string(worker) + ": " +
          std::string((std::istreambuf_iterator<char>(failure)), std::istreambuf_iterator<char>()));
  }
  torn += read_log(plan.logs / "kills.log", entries) != 0;
  const Report report = check(entries);

  // Afterwards: every record reads, and every key is free at once (its dead holders
  // reclaimed) with a fence above every logged one.
  std::size_t unreadable = 0;
  std::size_t busy = 0;
  std::size_t fence_regressions = 0;
  {
    leaselock::file_lock_manager locks{leaselock::FileBackend{plan.locks}};
    for (std::uint32_t key = 0; key < kKeys; ++key) {
      try {
        (void)locks.status(key_name(key));
        auto lease = locks.try_acquire(key_name(key), Mode::exclusive, std::chrono::seconds(10));
        if (!lease) {
          ++busy;
          failures.push_back(key_name(key) + " is still held after every worker ended");
        } else if (report.highest_fence.count(key) &&
                   lease.fence() <= report.highest_fence.at(key)) {
          ++fence_regressions;
          failures.push_back(key_name(key) + ": fence " + std::to_string(lease.fence()) +
                             " after the run, not above the logged " +
                             std::to_string(report.highest_fence.at(key)));
        }
      } catch (const std::exception& e) {
        ++unreadable;
        failures.push_back(key_name(key) + ": " + e.what());
      }
    }
    try {
      (void)locks.list();
    } catch (const std::exception& e) {
      ++unreadable;
      failures.push_back(std::string("list(): ") + e.what());
    }
  }

  std::size_t fewest = report.grants.size() == kKeys ? SIZE_MAX : 0;
  for (const auto& [key, grants] : report.grants) fewest = std::min(fewest, grants);
  std::ostringstream summary;
  summary << "chaos " << static_cast<double>(ran) / static_cast<double>(kSecond) << " s, "
          << workers_started << " workers in " << kWorkers << " slots, " << kKeys
          << " keys: " << report.total_grants << " grants (>= " << fewest << " per key), "
          << report.kills << " kills (" << aimed << " aimed at a holder), "
          << report.kills_while_holding << " while holding, " << report.violations.size()
          << " violations, " << report.errors << " errors, " << unreadable << " unreadable, "
          << report.anomalies.size() << " anomalies, " << report.stale << " stale, "
          << report.outlived << " outlived their TTL, longest silence "
          << static_cast<double>(report.longest_silence) / static_cast<double>(kMillisecond)
          << " ms (worker " << report.silent_worker << ") (seed 0x" << std::hex << seed << ")";
  MESSAGE(summary.str());
  for (std::size_t i = 0; i < report.violations.size() && i < 20; ++i)
    MESSAGE(report.violations[i].describe());
  for (std::size_t i = 0; i < report.anomalies.size() && i < 20; ++i)
    MESSAGE(("anomaly: " + report.anomalies[i]));
  for (std::size_t i = 0; i < failures.size() && i < 20; ++i) MESSAGE(failures[i]);

  CHECK(report.violations.empty());
  CHECK(report.errors == 0);
  CHECK(unreadable == 0);
  CHECK(failures.empty());
  CHECK(hung == 0);
  CHECK(report.longest_silence < 10 * kSecond);
  CHECK(busy == 0);
  CHECK(fence_regressions == 0);
  CHECK(report.anomalies.empty());
  CHECK(torn == 0);
  CHECK(report.grants.size() == kKeys);
  CHECK(fewest > 0);
  CHECK(report.kills > 0);
  CHECK(report.kills_while_holding > 0);
}
