// bench/bench_file.cpp — what the file backend costs, next to what processes of one
// machine would otherwise use, measured in the same run.
//
//   cmake --preset release && cmake --build --preset release --target bench_file
//   build/release/bench/bench_file            # ~1 min: 7 repetitions of ~0.2 s per figure
//   build/release/bench/bench_file --quick    # ~15 s: 3 repetitions of ~0.05 s
//   build/release/bench/bench_file --no-peers # skip Python filelock and proper-lockfile
//   tools/bench_file.sh                       # installs the peers, builds, runs this
//
// Prints one markdown table. Every leaselock figure stands beside a baseline measured by
// this program in this run (interleaved with it: AB, BA, AB, ... by repetition), and the
// ratio leaselock / baseline (lower is better everywhere). Figures are medians over
// repetitions; hand-off rows also give the median of the repetitions' p99s. Nothing here
// passes or fails: absolute numbers drift between machines and runs, so read the ratios.
// The "goal" column quotes the project's targets for reference.
//
// The lock directory and every baseline file live in a fresh mkdtemp directory (mode
// 0700) under $TMPDIR or /tmp, removed at the end. Cross-process rows fork: each child
// builds its own FileBackend and LockManager on that directory. A child that is not
// granted a lease within 10 s, two processes holding one exclusive key at once, or a
// child that does not finish, is printed as a PROBLEM line and makes the exit status 1.
//
// Peers are found at run time: Python filelock (LEASELOCK_BENCH_PYTHON, else python3,
// else /usr/bin/python3: the first that imports filelock), npm proper-lockfile (node with
// NODE_PATH = LEASELOCK_BENCH_NODE_PATH, else build/bench-peers/node_modules next to
// this build, where tools/bench_file.sh installs it), and Boost.Interprocess file_lock
// (compiled in if its header is there). Missing ones print "not installed" rows.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <new>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <leaselock/leaselock.hpp>

#include "bench_common.hpp"

#if __has_include(<boost/interprocess/sync/file_lock.hpp>)
#include <boost/interprocess/sync/file_lock.hpp>
#define LEASELOCK_BENCH_HAVE_BOOST 1
#else
#define LEASELOCK_BENCH_HAVE_BOOST 0
#endif

namespace {

using namespace bench;  // the helpers shared with bench_in_process.cpp

namespace fs = std::filesystem;
using Manager = leaselock::file_lock_manager;
using Lease = Manager::Lease;
using leaselock::Mode;

constexpr std::chrono::seconds kTtl{60};
// A wait that should take microseconds (or 10 ms for a dead holder); past this, a hang.
constexpr std::chrono::seconds kWaitLimit{10};
// 21 characters, like a real path (the in-process bench uses the same key).
constexpr const char* kKey = "repo/src/main_mod.cpp";
constexpr const char* kKillKey = "repo/src/killed_mod.cpp";

struct Config {
  int reps = 7;
  double seconds = 0.2;          // per timing of a pair loop
  double handoff_seconds = 0.5;  // per hand-off repetition
  int kill_trials = 10;
  std::size_t keys = 10000;
  int python_handoffs = 40;
  bool peers = true;
};

// --- problems ----------------------------------------------------------------------------

std::vector<std::string> problems;

void problem(const std::string& what) {
  std::fprintf(stderr, "PROBLEM: %s\n", what.c_str());
  std::fflush(stderr);
  problems.push_back(what);
}

[[noreturn]] void fail_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// --- time ------------------------------------------------------------------------------

void sleep_ns(std::int64_t ns) { std::this_thread::sleep_for(std::chrono::nanoseconds(ns)); }

/// Calls of `op` between two readings of the clock in ns_per_op.
constexpr int kBatch = 64;

// --- output ------------------------------------------------------------------------------

std::string ns(double value) {
  if (value >= 1e6) return fmt(value >= 1e8 ? "%.0f ms" : "%.2f ms", value / 1e6);
  if (value >= 1e4) return fmt("%.1f µs", value / 1e3);
  if (value >= 1e3) return fmt("%.2f µs", value / 1e3);
  return fmt("%.0f ns", value);
}

void row(const std::string& what, const std::string& ours, const std::string& baseline,
         double ratio, const std::string& goal) {
  const char* format = ratio >= 0.095 ? "%.2f" : ratio >= 0.00095 ? "%.3f" : "%.5f";
  std::printf("| %s | %s | %s | %s | %s |\n", what.c_str(), ours.c_str(), baseline.c_str(),
              ratio > 0 ? fmt(format, ratio).c_str() : "—", goal.c_str());
  std::fflush(stdout);
}

std::vector<std::string> notes;

void note(const std::string& text) { notes.push_back(text); }

// --- files, processes --------------------------------------------------------------------

/// A fresh mkdtemp directory (0700) under $TMPDIR or /tmp, removed with everything in it
/// by the process that made it.
class ScratchDir {
 public:
  ScratchDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/leaselock-bench-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (!::mkdtemp(buffer.data())) fail_errno("mkdtemp " + pattern);
    path_ = buffer.data();
    if (::chmod(path_.c_str(), 0700) != 0) fail_errno("chmod " + path_.string());
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir() {
    if (::getpid() != creator_) return;  // a forked child never removes it
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const noexcept { return path_; }

 private:
  fs::path path_;
  pid_t creator_ = ::getpid();
};

class Fd {
 public:
  explicit Fd(const fs::path& path)
      : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
    if (fd_ < 0) fail_errno("open " + path.string());
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { ::close(fd_); }
  int get() const noexcept { return fd_; }

 private:
  int fd_;
};

/// The state letter of /proc/<...>/stat ('S': asleep in the kernel, 'R': running), '?'.
char task_state(const std::string& stat_path) {
  char buffer[1024];
  const int fd = ::open(stat_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return '?';
  const ssize_t n = ::read(fd, buffer, sizeof buffer - 1);
  ::close(fd);
  if (n <= 0) return '?';
  buffer[n] = '\0';
  const char* paren = std::strrchr(buffer, ')');  // the command name may hold ')'
  if (!paren || paren[1] != ' ' || paren[2] == '\0') return '?';
  return paren[2];
}

pid_t current_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

/// An object of T in a MAP_SHARED anonymous mapping: shared with children forked later.
template <class T>
class SharedMap {
 public:
  SharedMap() {
    void* memory =
        ::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) fail_errno("mmap");
    object_ = new (memory) T();
  }
  SharedMap(const SharedMap&) = delete;
  SharedMap& operator=(const SharedMap&) = delete;
  ~SharedMap() {
    object_->~T();
    ::munmap(object_, sizeof(T));
  }
  T* operator->() const noexcept { return object_; }
  T& operator*() const noexcept { return *object_; }

 private:
  T* object_ = nullptr;
};

/// Forks a child that runs body() and _exits with its result (never returns into main;
/// it dies with the parent).
template <class Body>
pid_t spawn(Body&& body) {
  std::fflush(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) fail_errno("fork");
  if (pid > 0) return pid;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(3);
  int code = 0;
  try {
    code = body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench child %d: %s\n", static_cast<int>(::getpid()), e.what());
    code = 4;
  }
  ::_exit(code);
}

/// Waits up to `limit_ns` for `pid` to end; SIGKILLs it after that. The exit status,
/// 128 + signal for a signal, or -1 if it had to be killed.
int reap(pid_t pid, std::int64_t limit_ns) {
  const std::int64_t deadline = mono_ns() + limit_ns;
  for (;;) {
    int status = 0;
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (done < 0) return -2;
    if (mono_ns() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    sleep_ns(1000000);
  }
}

// --- row 2: a lease kept by hand in a file with flock + pread + pwrite --------------------

/// What a hand-written lease file holds: 104 bytes.
struct RecordBytes {
  std::uint64_t fence;
  std::uint64_t token_high, token_low;
  std::int64_t expires_at_ns;
  std::uint32_t holders;
  std::uint32_t exclusive;
  char owner[64];
};
static_assert(sizeof(RecordBytes) == 104, "a ~100-byte record");

/// One flock(LOCK_EX), pread of the record, fn(record) (true: write it back), pwrite,
/// flock(LOCK_UN). Returns fn's verdict.
template <class Fn>
bool record_cycle(int fd, Fn&& fn) {
  ::flock(fd, LOCK_EX);
  RecordBytes record{};
  if (::pread(fd, &record, sizeof record, 0) != static_cast<ssize_t>(sizeof record)) {
    record = RecordBytes{};
  }
  const bool write = fn(record);
  if (write) keep(::pwrite(fd, &record, sizeof record, 0));
  ::flock(fd, LOCK_UN);
  return write;
}

/// The hand-written exclusive lease: acquire is one cycle (free or expired? then write
/// a token, an expiry, the next fence and the owner), release another (the token must
/// match; clear). mt19937_64 tokens: cheaper than leaselock's, and not secure.
class HandFileLease {
 public:
  HandFileLease(int fd, const std::string& owner) : fd_(fd), random_(0x5eed5eedULL) {
    std::snprintf(owner_, sizeof owner_, "%s", owner.c_str());
  }

  bool acquire_release() {
    const std::uint64_t high = random_(), low = random_();
    const bool acquired = record_cycle(fd_, [&](RecordBytes& r) {
      const std::int64_t now = mono_ns();
      if (r.holders > 0 && r.expires_at_ns > now) return false;
      r.holders = 1;
      r.exclusive = 1;
      ++r.fence;
      r.token_high = high;
      r.token_low = low;
      r.expires_at_ns = now + std::chrono::nanoseconds(kTtl).count();
      std::memcpy(r.owner, owner_, sizeof r.owner);
      return true;
    });
    if (!acquired) return false;
    return record_cycle(fd_, [&](RecordBytes& r) {
      if (r.holders == 0 || r.token_high != high || r.token_low != low) return false;
      r.holders = 0;
      return true;
    });
  }

 private:
  int fd_;
  std::mt19937_64 random_;
  char owner_[64] = {};
};

// --- row 3: cross-process hand-off -------------------------------------------------------

constexpr std::size_t kMaxSamples = std::size_t{1} << 18;

enum HandoffError : int { kNoError = 0, kNotGranted = 1, kOverlap = 2 };

/// Shared by the parent and its two ping-pong children.
struct HandoffShared {
  std::atomic<std::int64_t> stamp{0};  // CLOCK_MONOTONIC just before a release; 0 once read
  std::atomic<int> holder{-1};         // the side that holds the key now
  std::atomic<int> inside{0};          // sides holding now: 2 means exclusion was broken
  std::atomic<int> trying[2] = {};     // side i is in (or about to enter) its acquire
  std::atomic<int> pid[2] = {};
  std::atomic<int> go{0};
  std::atomic<int> stop{0};
  std::atomic<int> error{kNoError};
  std::atomic<std::size_t> count{0};
  std::int64_t samples[kMaxSamples];
};
static_assert(std::atomic<std::int64_t>::is_always_lock_free, "address-free atomics");
static_assert(std::atomic<int>::is_always_lock_free, "address-free atomics");

/// One side of the ping-pong over `locker` (lock(): blocks until held, false if not
/// granted in time; unlock(); other_queued(): the lock itself says someone waits).
/// The holder waits until the other side is in its acquire, queued, and asleep in the
/// kernel; stamps the time; releases. The other side stamps the time its acquire
/// returned: one sample. Then the releaser waits for the other side to hold the key
/// before it asks again, so both sides alternate.
template <class Locker>
int pingpong(HandoffShared& sh, int me, Locker& locker) {
  const int other = 1 - me;
  while (sh.go.load() == 0) ::sched_yield();
  const std::string other_stat = "/proc/" + std::to_string(sh.pid[other].load()) + "/stat";
  for (;;) {
    sh.trying[me].store(1);
    if (!locker.lock()) {
      sh.error.store(kNotGranted);
      sh.stop.store(1);
      return 1;
    }
    const std::int64_t got = mono_ns();
    sh.trying[me].store(0);
    if (sh.inside.fetch_add(1) != 0) {
      sh.error.store(kOverlap);
      sh.stop.store(1);
    }
    const std::int64_t released = sh.stamp.exchange(0);
    if (released != 0) {
      const std::size_t i = sh.count.fetch_add(1);
      if (i < kMaxSamples) sh.samples[i] = got - released;
    }
    sh.holder.store(me);
    bool stopping = sh.stop.load() != 0;
    while (!stopping && !(sh.trying[other].load() != 0 && locker.other_queued() &&
                          task_state(other_stat) == 'S')) {
      ::sched_yield();
      stopping = sh.stop.load() != 0;
    }
    sh.inside.fetch_sub(1);
    if (!stopping) sh.stamp.store(mono_ns());
    locker.unlock();
    if (stopping) return 0;
    while (sh.holder.load() != other) {
      if (sh.stop.load() != 0) return 0;
      ::sched_yield();
    }
  }
}

class LeaseLocker {
 public:
  explicit LeaseLocker(const fs::path& dir) : locks_(leaselock::FileBackend{dir}) {}
  bool lock() {
    lease_ = locks_.try_acquire(kKey, Mode::exclusive, kTtl, kWaitLimit);
    return static_cast<bool>(lease_);
  }
  void unlock() { keep(lease_.release()); }
  bool other_queued() const {
    const auto info = locks_.status(kKey);
    return info && info->waiters >= 1;
  }

 private:
  Manager locks_;
  Lease lease_;
};

class FlockLocker {
 public:
  explicit FlockLocker(const fs::path& file) : fd_(file) {}  // its own open file description
  bool lock() { return ::flock(fd_.get(), LOCK_EX) == 0; }
  void unlock() { ::flock(fd_.get(), LOCK_UN); }
  bool other_queued() const { return true; }  // flock cannot tell; the task state does

 private:
  Fd fd_;
};

struct Latency {
  double median_ns = -1, p99_ns = -1;
  std::size_t samples = 0;
};

/// One repetition: two children ping-pong for `seconds`.
template <class MakeLocker>
Latency handoff_run(const char* what, double seconds, MakeLocker&& make_locker) {
  SharedMap<HandoffShared> sh;
  pid_t pids[2] = {0, 0};
  for (int me = 0; me < 2; ++me) {
    pids[me] = spawn([&, me] {
      auto locker = make_locker();
      return pingpong(*sh, me, *locker);
    });
    sh->pid[me].store(static_cast<int>(pids[me]));
  }
  sh->go.store(1);
  const std::int64_t end = mono_ns() + static_cast<std::int64_t>(seconds * 1e9);
  while (mono_ns() < end && sh->stop.load() == 0) sleep_ns(2000000);
  sh->stop.store(1);
  bool ok = true;
  for (int me = 0; me < 2; ++me) {
    const int status = reap(pids[me], 15000000000LL);
    if (status != 0) {
      ok = false;
      problem(std::string(what) + " hand-off: child " + std::to_string(me) +
              (status == -1 ? " did not finish within 15 s of being told to stop (hang)"
                            : " exited with status " + std::to_string(status)));
    }
  }
  switch (sh->error.load()) {
    case kNotGranted:
      ok = false;
      problem(std::string(what) + " hand-off: a waiter was not granted the key within " +
              std::to_string(kWaitLimit.count()) + " s of its release");
      break;
    case kOverlap:
      ok = false;
      problem(std::string(what) +
              " hand-off: both processes held the exclusive key at once (mutual exclusion "
              "broken)");
      break;
    default: break;
  }
  Latency result;
  const std::size_t n = std::min(sh->count.load(), kMaxSamples);
  std::vector<std::int64_t> samples(sh->samples, sh->samples + n);
  result.samples = n;
  if (!ok || n == 0) return result;
  result.median_ns = percentile(samples, 0.5);
  result.p99_ns = percentile(samples, 0.99);
  return result;
}

// --- row 4: SIGKILLed holder -------------------------------------------------------------

struct KillShared {
  std::atomic<int> held{0};
  std::atomic<int> failed{0};
};

/// Waits (up to 10 s) for the child to report that it holds the lock.
bool wait_held(KillShared& sh, pid_t child) {
  const std::int64_t deadline = mono_ns() + 10000000000LL;
  while (sh.held.load() == 0) {
    if (sh.failed.load() != 0 || mono_ns() > deadline) return false;
    int status = 0;
    if (::waitpid(child, &status, WNOHANG) == child) return false;
    sleep_ns(100000);
  }
  return true;
}

/// A killer thread: waits until `ready()` (the parent's main thread waits, asleep), then
/// stamps the time and SIGKILLs `child`; reaps it `reap_delay_ns` later.
class Killer {
 public:
  template <class Ready>
  Killer(pid_t child, std::int64_t reap_delay_ns, Ready ready)
      : thread_([this, child, reap_delay_ns, ready] {
          const std::int64_t deadline = mono_ns() + 10000000000LL;
          while (!done_.load() && !ready()) {
            if (mono_ns() > deadline) {
              gave_up_waiting_.store(true);
              break;
            }
            ::sched_yield();
          }
          killed_at_.store(mono_ns());
          ::kill(child, SIGKILL);
          if (reap_delay_ns > 0) sleep_ns(reap_delay_ns);
          ::waitpid(child, nullptr, 0);
        }) {}
  Killer(const Killer&) = delete;
  Killer& operator=(const Killer&) = delete;
  ~Killer() { finish(); }
  void finish() {
    done_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  std::int64_t killed_at() const { return killed_at_.load(); }
  bool gave_up_waiting() const { return gave_up_waiting_.load(); }

 private:
  std::atomic<bool> done_{false};
  std::atomic<bool> gave_up_waiting_{false};
  std::atomic<std::int64_t> killed_at_{0};
  std::thread thread_;
};

/// ns from SIGKILL of a child holding kKillKey (60 s TTL) until `locks` holds it; -1 on
/// failure (reported).
double kill_trial_leaselock(Manager& locks, const fs::path& dir, std::int64_t reap_delay_ns) {
  SharedMap<KillShared> sh;
  const pid_t child = spawn([&] {
    Manager mine{leaselock::FileBackend{dir}};
    auto lease = mine.try_acquire(kKillKey, Mode::exclusive, kTtl, kWaitLimit);
    if (!lease) {
      sh->failed.store(1);
      return 1;
    }
    sh->held.store(1);
    for (;;) ::pause();
  });
  if (!wait_held(*sh, child)) {
    problem("SIGKILL row: the child could not take the key");
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    return -1;
  }
  const std::string my_stat = "/proc/self/task/" + std::to_string(current_tid()) + "/stat";
  std::atomic<int> waiting{0};
  Killer killer(child, reap_delay_ns, [&] {
    if (waiting.load() == 0) return false;
    const auto info = locks.status(kKillKey);
    return info && info->waiters >= 1 && task_state(my_stat) == 'S';
  });
  waiting.store(1);
  Lease lease = locks.try_acquire(kKillKey, Mode::exclusive, kTtl, kWaitLimit);
  const std::int64_t got = mono_ns();
  killer.finish();
  if (killer.gave_up_waiting()) {
    problem("SIGKILL row: the parent's acquire never showed as queued and asleep (10 s)");
  }
  if (!lease) {
    problem("SIGKILL row: a waiter was not granted the key within " +
            std::to_string(kWaitLimit.count()) + " s after its holder was SIGKILLed");
    return -1;
  }
  if (got < killer.killed_at()) {
    problem(
        "SIGKILL row: the parent was granted the key while the child still held it "
        "(mutual exclusion broken)");
    return -1;
  }
  return static_cast<double>(got - killer.killed_at());
}

/// The same with flock: the kernel drops the lock when the child's fd closes at exit.
double kill_trial_flock(const fs::path& file) {
  SharedMap<KillShared> sh;
  const pid_t child = spawn([&] {
    Fd fd(file);
    if (::flock(fd.get(), LOCK_EX) != 0) {
      sh->failed.store(1);
      return 1;
    }
    sh->held.store(1);
    for (;;) ::pause();
  });
  if (!wait_held(*sh, child)) {
    problem("SIGKILL row (flock baseline): the child could not take the lock");
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    return -1;
  }
  Fd fd(file);
  const std::string my_stat = "/proc/self/task/" + std::to_string(current_tid()) + "/stat";
  std::atomic<int> waiting{0};
  Killer killer(child, 0, [&] { return waiting.load() != 0 && task_state(my_stat) == 'S'; });
  waiting.store(1);
  const int rc = ::flock(fd.get(), LOCK_EX);
  const std::int64_t got = mono_ns();
  killer.finish();
  ::flock(fd.get(), LOCK_UN);
  if (rc != 0) return -1;
  return static_cast<double>(got - killer.killed_at());
}

// --- row 5: many keys --------------------------------------------------------------------

/// A hand-written file name for a key: FNV-1a, 16 hex digits.
std::string hand_file_name(const std::string& key) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (char c : key) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  char name[32];
  std::snprintf(name, sizeof name, "%016llx.rec", static_cast<unsigned long long>(hash));
  return name;
}

/// The hand-written way to create a held shared record: open(O_CREAT), flock, pread,
/// pwrite 104 B, unlock, close.
void hand_create_record(const fs::path& file, std::uint64_t token) {
  Fd fd(file);
  record_cycle(fd.get(), [&](RecordBytes& r) {
    r.holders = 1;
    r.exclusive = 0;
    ++r.fence;
    r.token_high = token;
    r.token_low = ~token;
    r.expires_at_ns = mono_ns() + std::chrono::nanoseconds(kTtl).count();
    return true;
  });
}

/// The hand-written list(): readdir, then open + flock(LOCK_SH) + pread + close per file;
/// counts the live records.
std::size_t hand_list(const fs::path& dir) {
  std::size_t live = 0;
  const std::int64_t now = mono_ns();
  for (const auto& entry : fs::directory_iterator(dir)) {
    const int fd = ::open(entry.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    RecordBytes r{};
    ::flock(fd, LOCK_SH);
    const bool whole = ::pread(fd, &r, sizeof r, 0) == static_cast<ssize_t>(sizeof r);
    ::flock(fd, LOCK_UN);
    ::close(fd);
    if (whole && r.holders > 0 && r.expires_at_ns > now) ++live;
  }
  return live;
}

std::size_t count_files(const fs::path& dir) {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file(ec)) ++n;
  }
  return n;
}

// --- peers -------------------------------------------------------------------------------

std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

/// Runs `command` with /bin/sh; its standard output if it exits 0.
std::optional<std::string> run_capture(const std::string& command) {
  std::fflush(nullptr);
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return std::nullopt;
  std::string out;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  if (::pclose(pipe) != 0) return std::nullopt;
  return out;
}

std::string trim(std::string text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

/// The numbers a peer printed (whitespace-separated); empty if it failed.
std::vector<double> numbers_from(const std::optional<std::string>& output) {
  std::vector<double> values;
  if (!output) return values;
  std::istringstream in(*output);
  double value = 0;
  while (in >> value) values.push_back(value);
  return values;
}

// Python filelock: ns per acquire()+release() of a warm FileLock, over argv[2] seconds.
constexpr const char* kPythonPair = R"PY(
import sys, time, filelock
lock = filelock.FileLock(sys.argv[1])
budget = int(float(sys.argv[2]) * 1e9)
for _ in range(200):
    lock.acquire(); lock.release()
n = 0
start = time.monotonic_ns()
while True:
    for _ in range(64):
        lock.acquire(); lock.release()
    n += 64
    now = time.monotonic_ns()
    if now - start >= budget:
        break
print((now - start) / n)
)PY";

// Python filelock hand-off between two forked processes, as bench_file does it: the
// holder waits until the other is in acquire(), then a random 5-60 ms (its waiter polls
// every 50 ms: this lands the release anywhere in that period), stamps
// time.monotonic_ns() (CLOCK_MONOTONIC) in a shared anonymous mmap, releases; the other
// stamps when acquire() returned. Prints median, p99 (ns) and the number of samples.
constexpr const char* kPythonHandoff = R"PY(
import mmap, os, random, sys, time, filelock
path, wanted = sys.argv[1], int(sys.argv[2])
shm = mmap.mmap(-1, 8 * (16 + wanted))
v = memoryview(shm).cast('q')
STAMP, HOLDER, STOP, COUNT, TRYING, SAMPLES = 0, 1, 2, 3, 4, 16
v[HOLDER] = -1
def side(me):
    other = 1 - me
    lock = filelock.FileLock(path)
    while True:
        v[TRYING + me] = 1
        lock.acquire()
        got = time.monotonic_ns()
        v[TRYING + me] = 0
        stamp = v[STAMP]
        v[STAMP] = 0
        if stamp:
            n = v[COUNT]
            v[SAMPLES + n] = got - stamp
            v[COUNT] = n + 1
            if n + 1 >= wanted:
                v[STOP] = 1
        v[HOLDER] = me
        while not v[STOP] and not v[TRYING + other]:
            time.sleep(0)
        stopping = v[STOP]
        if not stopping:
            time.sleep(random.uniform(0.005, 0.06))
            v[STAMP] = time.monotonic_ns()
        lock.release()
        if stopping:
            return
        while v[HOLDER] != other:
            if v[STOP]:
                return
            time.sleep(0)
pids = []
for me in (0, 1):
    pid = os.fork()
    if pid == 0:
        try:
            side(me)
        finally:
            os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
samples = sorted(v[SAMPLES + i] for i in range(v[COUNT]))
n = len(samples)
print(samples[n // 2], samples[min(n - 1, round(0.99 * (n - 1)))], n)
)PY";

// proper-lockfile: ns per lockSync+unlockSync, then per await lock()+release(), each
// over argv[2] seconds (node -e: the first argument is process.argv[1]).
constexpr const char* kNodePair = R"JS(
const fs = require('fs');
const lockfile = require('proper-lockfile');
const file = process.argv[1];
const budget = BigInt(Math.round(Number(process.argv[2]) * 1e9));
fs.writeFileSync(file, '');
function timeSync() {
  for (let i = 0; i < 50; i++) { lockfile.lockSync(file); lockfile.unlockSync(file); }
  let n = 0; const start = process.hrtime.bigint(); let now;
  do {
    for (let i = 0; i < 16; i++) { lockfile.lockSync(file); lockfile.unlockSync(file); }
    n += 16; now = process.hrtime.bigint();
  } while (now - start < budget);
  return Number(now - start) / n;
}
async function timeAsync() {
  for (let i = 0; i < 50; i++) { const release = await lockfile.lock(file); await release(); }
  let n = 0; const start = process.hrtime.bigint(); let now;
  do {
    for (let i = 0; i < 16; i++) { const release = await lockfile.lock(file); await release(); }
    n += 16; now = process.hrtime.bigint();
  } while (now - start < budget);
  return Number(now - start) / n;
}
(async () => {
  const sync = timeSync();
  const asynchronous = await timeAsync();
  console.log(sync, asynchronous);
})().catch((e) => { console.error(e); process.exit(1); });
)JS";

struct Peer {
  std::string command;  // a shell command prefix that runs the interpreter
  std::string version;
};

std::optional<Peer> find_python() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("LEASELOCK_BENCH_PYTHON"); env && *env) {
    candidates.push_back(env);
  }
  candidates.push_back("python3");
  candidates.push_back("/usr/bin/python3");
  for (const auto& candidate : candidates) {
    const std::string command = shell_quote(candidate);
    const auto out = run_capture(
        command + " -c 'import filelock; print(filelock.__version__)' 2>/dev/null </dev/null");
    if (out && !trim(*out).empty()) return Peer{command, trim(*out)};
  }
  return std::nullopt;
}

std::optional<Peer> find_proper_lockfile() {
  std::string node_path;
  if (const char* env = std::getenv("LEASELOCK_BENCH_NODE_PATH"); env && *env) {
    node_path = env;
  } else {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    // build/<preset>/bench/bench_file -> build/bench-peers/node_modules
    const fs::path guess =
        exe.parent_path().parent_path().parent_path() / "bench-peers" / "node_modules";
    if (!ec && fs::is_directory(guess, ec)) node_path = guess.string();
  }
  const std::string command =
      (node_path.empty() ? std::string() : "NODE_PATH=" + shell_quote(node_path) + " ") + "node";
  const auto out = run_capture(
      command +
      " -e \"console.log(require('proper-lockfile/package.json').version)\" 2>/dev/null "
      "</dev/null");
  if (out && !trim(*out).empty()) return Peer{command, trim(*out)};
  return std::nullopt;
}

// --- machine -----------------------------------------------------------------------------

std::string filesystem_of(const fs::path& path) {
  struct statfs info {};
  if (::statfs(path.c_str(), &info) != 0) return "unknown filesystem";
  switch (static_cast<unsigned long>(info.f_type)) {
    case 0xEF53UL: return "ext4";
    case 0x01021994UL: return "tmpfs";
    case 0x58465342UL: return "xfs";
    case 0x9123683EUL: return "btrfs";
    case 0x794C7630UL: return "overlayfs";
    default: {
      char name[48];
      std::snprintf(name, sizeof name, "filesystem f_type 0x%lx",
                    static_cast<unsigned long>(info.f_type));
      return name;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  const bool flags_ok =
      parse_flags(argc, argv, {"--quick", "--no-peers"}, [&](std::string_view flag) {
        if (flag == "--quick") {
          cfg.reps = 3;
          cfg.seconds = 0.05;
          cfg.handoff_seconds = 0.15;
          cfg.kill_trials = 5;
          cfg.python_handoffs = 15;
        } else {  // --no-peers
          cfg.peers = false;
        }
      });
  if (!flags_ok) return 2;
  const double s = cfg.seconds;
  const std::int64_t bench_start = mono_ns();

  ScratchDir scratch;
  const fs::path lock_dir = scratch.path() / "locks";
  const fs::path base_dir = scratch.path() / "baseline";
  const fs::path records_dir = scratch.path() / "records";
  fs::create_directory(base_dir);
  fs::create_directory(records_dir);
  Manager locks{leaselock::FileBackend{lock_dir}};

  utsname uts{};
  ::uname(&uts);
  std::printf(
      "machine: %ld CPUs online, %s, Linux %s; compiler: g++ %s%s; lock directory on %s "
      "(%s); %d reps x %.2f s, medians; load average (1, 5 min): %s\n\n",
      ::sysconf(_SC_NPROCESSORS_ONLN), cpu_model().c_str(), uts.release, __VERSION__,
#ifdef NDEBUG
      ", NDEBUG",
#else
      "",
#endif
      filesystem_of(scratch.path()).c_str(), scratch.path().c_str(), cfg.reps, s,
      loadavg().c_str());
  std::printf("| measurement | leaselock | baseline (same run) | ratio | goal |\n");
  std::printf("|---|---|---|---|---|\n");

  const std::string key = kKey;
  std::size_t empty_leases = 0;
  auto lease_pair = [&](Mode mode) {
    auto op = [&] {
      auto lease = locks.try_acquire(key, mode, kTtl);
      if (!lease) ++empty_leases;
      keep(lease.fence());
    };
    return ns_per_op<kBatch>(op, s);
  };
  const Fd warm(base_dir / "flock-warm");
  auto flock_pair = [&](int how) {
    auto op = [&] {
      ::flock(warm.get(), how);
      ::flock(warm.get(), LOCK_UN);
    };
    return ns_per_op<kBatch>(op, s);
  };

  // 1. one process, warm key: exclusive and shared pairs vs flock on an open fd.
  const Pair ex = interleaved(
      cfg.reps, [&] { return lease_pair(Mode::exclusive); }, [&] { return flock_pair(LOCK_EX); });
  row("1. exclusive try_acquire+release, warm 21-char key, 1 process", ns(ex.ma()),
      "flock(LOCK_EX)+flock(LOCK_UN) on an open fd: " + ns(ex.mb()), ex.ma() / ex.mb(), "≤ 0.5");
  const Pair sh = interleaved(
      cfg.reps, [&] { return lease_pair(Mode::shared); }, [&] { return flock_pair(LOCK_SH); });
  row("1b. shared try_acquire+release, same", ns(sh.ma()),
      "flock(LOCK_SH)+flock(LOCK_UN): " + ns(sh.mb()), sh.ma() / sh.mb(), "—");

  // 2. the hand-written lease record in a file.
  const Fd record_file(base_dir / "lease-record");
  HandFileLease hand(record_file.get(), locks.owner());
  std::size_t hand_refused = 0;
  const Pair rec = interleaved(
      cfg.reps, [&] { return lease_pair(Mode::exclusive); },
      [&] {
        auto op = [&] {
          if (!hand.acquire_release()) ++hand_refused;
        };
        return ns_per_op<kBatch>(op, s);
      });
  row("2. exclusive try_acquire+release vs a lease record kept by hand", ns(rec.ma()),
      "acquire + release, each flock EX, pread 104 B, check/modify, pwrite, flock UN: " +
          ns(rec.mb()),
      rec.ma() / rec.mb(), "—");
  const Pair cycle = interleaved(
      cfg.reps, [&] { return lease_pair(Mode::exclusive); },
      [&] {
        auto op = [&] {
          record_cycle(record_file.get(), [](RecordBytes& r) {
            ++r.fence;
            return true;
          });
        };
        return ns_per_op<kBatch>(op, s);
      });
  row("2b. same vs one record update", ns(cycle.ma()),
      "one flock EX, pread 104 B, modify, pwrite, flock UN: " + ns(cycle.mb()),
      cycle.ma() / cycle.mb(), "—");
  if (empty_leases != 0) {
    problem("rows 1-2: " + std::to_string(empty_leases) +
            " try_acquire calls on a free key returned an empty Lease");
  }
  if (hand_refused != 0) problem("row 2: the hand-written lease refused itself (bench bug)");

  // 3. cross-process hand-off.
  const fs::path flock_pingpong = base_dir / "flock-pingpong";
  std::vector<double> ours_med, ours_p99, base_med, base_p99;
  std::size_t ours_n = 0, base_n = 0;
  interleaved(
      cfg.reps,
      [&] {
        const Latency l = handoff_run("leaselock", cfg.handoff_seconds,
                                      [&] { return std::make_unique<LeaseLocker>(lock_dir); });
        if (l.median_ns >= 0) {
          ours_med.push_back(l.median_ns);
          ours_p99.push_back(l.p99_ns);
        }
        ours_n += l.samples;
        return l.median_ns;
      },
      [&] {
        const Latency l = handoff_run("flock", cfg.handoff_seconds, [&] {
          return std::make_unique<FlockLocker>(flock_pingpong);
        });
        if (l.median_ns >= 0) {
          base_med.push_back(l.median_ns);
          base_p99.push_back(l.p99_ns);
        }
        base_n += l.samples;
        return l.median_ns;
      });
  const double handoff_median = ours_med.empty() ? -1 : median(ours_med);
  const double handoff_p99 = ours_p99.empty() ? -1 : median(ours_p99);
  row("3. hand-off between 2 processes, release → waiter in the other holds, median (" +
          std::to_string(ours_n) + " / " + std::to_string(base_n) + " samples)",
      handoff_median >= 0 ? ns(handoff_median) : "FAILED",
      "flock ping-pong on one file: " + ns(median(base_med)),
      handoff_median >= 0 ? handoff_median / median(base_med) : -1, "≤ 1.5");
  row("3b. same, p99 (median of the repetitions' p99)",
      handoff_p99 >= 0 ? ns(handoff_p99) : "FAILED", "flock ping-pong: " + ns(median(base_p99)),
      handoff_p99 >= 0 ? handoff_p99 / median(base_p99) : -1, "—");

  // 4. SIGKILLed holder → waiter holds.
  const fs::path flock_killed = base_dir / "flock-killed";
  std::vector<double> kill_ours, kill_base;
  for (int t = 0; t < cfg.kill_trials; ++t) {
    for (int i = 0; i < 2; ++i) {
      if ((t + i) % 2 == 0) {
        const double v = kill_trial_leaselock(locks, lock_dir, 0);
        if (v >= 0) kill_ours.push_back(v);
      } else {
        const double v = kill_trial_flock(flock_killed);
        if (v >= 0) kill_base.push_back(v);
      }
    }
  }
  const auto max_of = [](const std::vector<double>& v) {
    return v.empty() ? -1.0 : *std::max_element(v.begin(), v.end());
  };
  const std::string trials =
      std::to_string(kill_ours.size()) + "/" + std::to_string(cfg.kill_trials) + " trials";
  row("4. holder SIGKILLed (60 s TTL) → blocked waiter in another process holds, median (" +
          trials + ")",
      kill_ours.empty() ? "FAILED" : ns(median(kill_ours)),
      "flock holder SIGKILLed → blocking flock returns: " + ns(median(kill_base)),
      kill_ours.empty() ? -1 : median(kill_ours) / median(kill_base), "≤ 50 ms");
  row("4b. same, max", kill_ours.empty() ? "FAILED" : ns(max_of(kill_ours)),
      "flock: " + ns(max_of(kill_base)),
      kill_ours.empty() ? -1 : max_of(kill_ours) / max_of(kill_base), "≤ 50 ms");
  {
    const double zombie = kill_trial_leaselock(locks, lock_dir, 300000000);
    if (zombie >= 0) {
      note(
          "row 4, one more trial with the killed holder left unreaped (a zombie) for 300 ms: "
          "acquired " +
          ns(zombie) + " after the kill" +
          (zombie >= 3e8 ? " (waited for the reap)" : " (did not wait for the reap)"));
    }
  }

  // 5. 10,000 keys, each held shared by this manager.
  const std::vector<std::string> keys = make_keys(cfg.keys);
  const std::string count = std::to_string(cfg.keys);
  std::vector<Lease> held;
  held.reserve(keys.size());
  const std::int64_t create_start = mono_ns();
  for (const auto& k : keys) held.push_back(locks.try_acquire(k, Mode::shared, kTtl));
  const double create_ns = static_cast<double>(mono_ns() - create_start);
  const auto not_held = static_cast<std::size_t>(
      std::count_if(held.begin(), held.end(), [](const Lease& l) { return !l; }));
  if (not_held != 0) problem("row 5: " + std::to_string(not_held) + " fresh keys not granted");
  const std::size_t record_files = count_files(lock_dir);
  std::mt19937_64 token_source(0x70c3);
  const std::int64_t hand_create_start = mono_ns();
  for (const auto& k : keys) hand_create_record(records_dir / hand_file_name(k), token_source());
  const double hand_create_ns = static_cast<double>(mono_ns() - hand_create_start);

  std::size_t next = 0;
  std::size_t cycle_empty = 0;
  const Pair many = interleaved(
      cfg.reps,
      [&] {
        auto op = [&] {
          auto lease = locks.try_acquire(keys[next], Mode::shared, kTtl);
          if (!lease) ++cycle_empty;
          keep(lease.fence());
          if (++next == keys.size()) next = 0;
        };
        return ns_per_op<kBatch>(op, s);
      },
      [&] {
        auto op = [&] {
          auto lease = locks.try_acquire(keys[0], Mode::shared, kTtl);
          if (!lease) ++cycle_empty;
          keep(lease.fence());
        };
        return ns_per_op<kBatch>(op, s);
      });
  row("5. shared try_acquire+release cycling over " + count + " keys, each also held shared (" +
          std::to_string(record_files) + " files in the lock directory)",
      ns(many.ma()), "the same on 1 key: " + ns(many.mb()), many.ma() / many.mb(), "≤ 1.5");
  if (cycle_empty != 0) {
    problem("row 5: " + std::to_string(cycle_empty) +
            " shared try_acquire calls on shared-held keys returned an empty Lease");
  }
  row("5b. one-off: first shared acquire of " + count + " new keys (records created), per key",
      ns(create_ns / static_cast<double>(keys.size())),
      "by hand, per key: open(O_CREAT)+flock+pread+pwrite 104 B+unlock+close: " +
          ns(hand_create_ns / static_cast<double>(keys.size())),
      create_ns / hand_create_ns, "—");
  std::size_t listed = 0, hand_listed = 0;
  bool list_checked = false;
  const Pair listing = interleaved(
      cfg.reps,
      [&] {
        const std::int64_t start = mono_ns();
        const auto infos = locks.list();
        const auto elapsed = static_cast<double>(mono_ns() - start);
        listed = infos.size();
        if (!list_checked) {
          list_checked = true;
          std::size_t odd = 0;
          for (const auto& info : infos) {
            if (info.mode != Mode::shared || info.holders.size() != 1) ++odd;
          }
          if (odd != 0) {
            problem("row 5: list() shows " + std::to_string(odd) +
                    " keys not held by exactly one shared holder");
          }
        }
        return elapsed;
      },
      [&] {
        const std::int64_t start = mono_ns();
        hand_listed = hand_list(records_dir);
        return static_cast<double>(mono_ns() - start);
      });
  if (listed != keys.size()) {
    problem("row 5: list() returned " + std::to_string(listed) + " keys, " + count + " are held");
  }
  if (hand_listed != keys.size()) problem("row 5: the hand-written listing is off (bench bug)");
  row("5c. list() over " + count + " held keys", ns(listing.ma()),
      "by hand: readdir + open+flock(LOCK_SH)+pread+close per file: " + ns(listing.mb()),
      listing.ma() / listing.mb(), "—");
  held.clear();
  const std::int64_t idle_start = mono_ns();
  const std::size_t removed = locks.backend().remove_idle();
  const double idle_ns = static_cast<double>(mono_ns() - idle_start);
  const std::size_t left = count_files(lock_dir);
  note("row 5: after releasing the " + count + " leases, remove_idle() removed " +
       std::to_string(removed) + " record files in " + ns(idle_ns) + "; " + std::to_string(left) +
       (left == 1 ? " file" : " files") + " left in the lock directory");

  // 6. peers.
  auto ours_exclusive = [&] { return lease_pair(Mode::exclusive); };
  const fs::path peer_file = base_dir / "peer-lock";
  std::optional<Peer> python, node;
  if (cfg.peers) {
    python = find_python();
    node = find_proper_lockfile();
  }
  const char* missing = cfg.peers ? "not installed" : "skipped (--no-peers)";
  if (python) {
    const std::string name = "Python filelock " + python->version;
    bool failed = false;
    const Pair py = interleaved(cfg.reps, ours_exclusive, [&] {
      const auto v = numbers_from(run_capture(python->command + " -c " + shell_quote(kPythonPair) +
                                              " " + shell_quote(peer_file.string() + ".py") + " " +
                                              fmt("%.3f", s) + " </dev/null"));
      if (v.empty()) failed = true;
      return v.empty() ? 0.0 : v[0];
    });
    if (failed) {
      row("6. " + name + " acquire+release, warm lock", ns(py.ma()), "it failed to run", -1, "—");
    } else {
      row("6. exclusive try_acquire+release vs " + name + " acquire+release, warm lock",
          ns(py.ma()), name + " (opens, flocks, closes each time): " + ns(py.mb()),
          py.ma() / py.mb(), "—");
    }
    const auto v =
        numbers_from(run_capture(python->command + " -c " + shell_quote(kPythonHandoff) + " " +
                                 shell_quote(peer_file.string() + ".handoff") + " " +
                                 std::to_string(cfg.python_handoffs) + " </dev/null"));
    if (v.size() >= 3) {
      row("6b. hand-off between 2 processes (row 3), median / p99 (" + fmt("%.0f", v[2]) +
              " Python samples)",
          handoff_median >= 0 ? ns(handoff_median) + " / " + ns(handoff_p99) : "FAILED",
          name + " (polls every 50 ms): " + ns(v[0]) + " / " + ns(v[1]),
          handoff_median >= 0 ? handoff_median / v[0] : -1, "—");
    } else {
      row("6b. hand-off vs " + name, "—", "it failed to run", -1, "—");
    }
  } else {
    row("6. vs Python filelock", "—", std::string("Python filelock: ") + missing, -1, "—");
  }
  if (node) {
    const std::string name = "proper-lockfile " + node->version;
    bool failed = false;
    std::vector<double> async_ns;
    const Pair js = interleaved(cfg.reps, ours_exclusive, [&] {
      const auto v = numbers_from(run_capture(node->command + " -e " + shell_quote(kNodePair) +
                                              " " + shell_quote(peer_file.string() + ".js") + " " +
                                              fmt("%.3f", s) + " </dev/null"));
      if (v.size() < 2) {
        failed = true;
        return 0.0;
      }
      async_ns.push_back(v[1]);
      return v[0];
    });
    if (failed) {
      row("6c. vs " + name, ns(js.ma()), "it failed to run", -1, "—");
    } else {
      row("6c. exclusive try_acquire+release vs npm " + name + " lockSync+unlockSync", ns(js.ma()),
          name + " (mkdir/rmdir): " + ns(js.mb()), js.ma() / js.mb(), "—");
      row("6d. same vs await lock()+release()", ns(js.ma()),
          name + ", async: " + ns(median(async_ns)), js.ma() / median(async_ns), "—");
    }
  } else {
    row("6c. vs npm proper-lockfile", "—", std::string("proper-lockfile: ") + missing, -1, "—");
  }
#if LEASELOCK_BENCH_HAVE_BOOST
  {
    const fs::path boost_file = base_dir / "boost-lock";
    { const Fd create(boost_file); }
    boost::interprocess::file_lock boost_lock(boost_file.c_str());
    const Pair bex = interleaved(cfg.reps, ours_exclusive, [&] {
      auto op = [&] {
        boost_lock.lock();
        boost_lock.unlock();
      };
      return ns_per_op<kBatch>(op, s);
    });
    row("6e. exclusive try_acquire+release vs Boost.Interprocess file_lock lock+unlock",
        ns(bex.ma()),
        "Boost " + std::to_string(BOOST_VERSION / 100000) + "." +
            std::to_string(BOOST_VERSION / 100 % 1000) +
            " file_lock (fcntl record lock): " + ns(bex.mb()),
        bex.ma() / bex.mb(), "—");
    const Pair bsh = interleaved(
        cfg.reps, [&] { return lease_pair(Mode::shared); },
        [&] {
          auto op = [&] {
            boost_lock.lock_sharable();
            boost_lock.unlock_sharable();
          };
          return ns_per_op<kBatch>(op, s);
        });
    row("6f. shared try_acquire+release vs file_lock lock_sharable+unlock_sharable", ns(bsh.ma()),
        "Boost file_lock, sharable: " + ns(bsh.mb()), bsh.ma() / bsh.mb(), "—");
  }
#else
  row("6e. vs Boost.Interprocess file_lock", "—",
      "Boost.Interprocess: not installed (when this was compiled)", -1, "—");
#endif

  std::printf("\n");
  for (const auto& text : notes) std::printf("- %s\n", text.c_str());
  std::printf(
      "- ratio = leaselock / baseline (lower is better); hand-off latency = CLOCK_MONOTONIC "
      "just before release() in one process to just after acquire returned in the other, "
      "with the waiter queued and asleep first\n");
  std::printf("- total run time: %.1f s; load average at the end: %s\n",
              static_cast<double>(mono_ns() - bench_start) / 1e9, loadavg().c_str());
  if (!problems.empty()) {
    std::printf("\nPROBLEMS (%zu):\n", problems.size());
    for (const auto& text : problems) std::printf("- %s\n", text.c_str());
    return 1;
  }
  return 0;
}
