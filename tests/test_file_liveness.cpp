// Which FileBackend leases end with a process: certain death only (a zombie main thread
// with live threads is alive; a /proc of another PID namespace proves nothing), and the
// process each lease is bound to (HolderProcess).
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include "process.hpp"
#include "support.hpp"

using namespace std::chrono_literals;
using leaselock::FileBackend;
using leaselock::FileBackendOptions;
using leaselock::HolderProcess;
using leaselock::Mode;

namespace {

using SteadyFiles = leaselock::file_lock_manager;

}  // namespace

TEST_CASE("file: a process whose main thread ended is alive while another thread holds") {
  test::TempDir tmp;
  const std::string dir = tmp.sub("locks").string();
  SteadyFiles locks{FileBackend{dir}};
  test::Child holder([dir](auto report) {
    std::thread([dir, report] {
      SteadyFiles mine{FileBackend{dir}};
      auto lease = mine.acquire("job", Mode::exclusive, 1h);
      report("holding");
      for (;;) ::pause();
    }).detach();
    ::syscall(SYS_exit, 0);  // ends the main thread only: it shows as a zombie ('Z')
    return 0;
  });
  REQUIRE(holder.next_line() == "holding");
  // Wait until the main thread is a zombie while the holding thread runs on.
  const std::string stat_path = "/proc/" + std::to_string(holder.pid()) + "/stat";
  leaselock::detail::posix::ProcStat stat;
  for (int i = 0; i < 10000; ++i) {
    char buffer[1024];
    REQUIRE(leaselock::detail::posix::read_small_file(stat_path.c_str(), buffer, sizeof buffer) >
            0);
    REQUIRE(leaselock::detail::posix::parse_proc_stat(buffer, stat));
    if (stat.state == 'Z') break;
    std::this_thread::sleep_for(1ms);
  }
  REQUIRE(stat.state == 'Z');
  CHECK_FALSE(locks.try_acquire("job", Mode::exclusive, 1h));        // alive: refused
  CHECK_FALSE(locks.try_acquire("job", Mode::exclusive, 1h, 50ms));  // also after checks
  CHECK(locks.status("job"));
  holder.kill_and_wait_for_zombie();  // now every thread has ended
  CHECK(locks.try_acquire("job", Mode::exclusive, 1h));
}

TEST_CASE("the thread count of /proc/<pid>/status is read exactly") {
  using leaselock::detail::posix::parse_thread_count;
  CHECK(parse_thread_count("Name:\tx\nState:\tZ (zombie)\nThreads:\t3\nSigQ:\t0/1\n") == 3);
  CHECK(parse_thread_count("Name:\tx\nThreads: 12\n") == 12);
  CHECK(parse_thread_count("Name:\tx\nState:\tZ (zombie)\n") == 0);  // none: not certain
}

TEST_CASE("file: a /proc of another PID namespace proves no process dead") {
  // Two processes of a new PID namespace, which still sees the /proc of this one (as
  // `unshare -p -f` without --mount-proc does): pids 1 and 2 there name other processes
  // in /proc, so /proc cannot tell whether the holder lives.
  test::TempDir tmp;
  const std::string dir = tmp.sub("locks").string();
  { SteadyFiles make{FileBackend{dir}}; }
  test::Child outer([dir](auto report) {
    if (::unshare(CLONE_NEWPID) != 0) {
      report(std::string("unshare(CLONE_NEWPID) failed: ") + std::strerror(errno));
      return 1;
    }
    test::Child holder([dir](auto inner_report) {
      SteadyFiles mine{FileBackend{dir}};
      auto lease = mine.acquire("job", Mode::exclusive, 1h);
      inner_report(std::to_string(::getpid()));
      for (;;) ::pause();
      return 0;
    });
    report("holder pid " + holder.next_line());
    test::Child checker([dir](auto inner_report) {
      SteadyFiles mine{FileBackend{dir}};
      inner_report(leaselock::detail::posix::proc_is_own_view() ? "own /proc" : "foreign /proc");
      inner_report(mine.try_acquire("job", Mode::exclusive, 1h, 50ms) ? "granted" : "refused");
      inner_report(mine.status("job") ? "shown held" : "shown free");
      return 0;
    });
    for (int i = 0; i < 3; ++i) report(checker.next_line());
    return checker.wait();
  });
  REQUIRE(outer.next_line() == "holder pid 1");  // the first process of the new namespace
  CHECK(outer.next_line() == "foreign /proc");
  CHECK(outer.next_line() == "refused");  // alive: never taken for dead
  CHECK(outer.next_line() == "shown held");
  CHECK(outer.wait() == 0);
  SteadyFiles locks{FileBackend{dir}};
  CHECK(leaselock::detail::posix::proc_is_own_view());
  // Its namespace is gone with its first process: from here the holder is certainly dead
  // (another PID namespace, though: not certain, so its lease runs to its TTL).
  CHECK_FALSE(locks.try_acquire("job", Mode::exclusive, 1h));
}

// Runs body(report) in a grandchild that lives in a new time namespace whose
// CLOCK_MONOTONIC is `offset_seconds` ahead of this one's; returns its child.
template <class Body>
std::unique_ptr<test::Child> in_time_namespace(long offset_seconds, Body body) {
  return std::make_unique<test::Child>([offset_seconds, body](auto report) {
    if (::unshare(CLONE_NEWTIME) != 0) {
      report(std::string("unshare(CLONE_NEWTIME) failed: ") + std::strerror(errno));
      return 1;
    }
    {
      std::ofstream offsets("/proc/self/timens_offsets");
      offsets << "monotonic " << offset_seconds << " 0\n";
    }
    test::Child inner(body);  // the first child enters the new namespace
    for (std::string line; !(line = inner.next_line()).empty();) report(line);
    return inner.wait();
  });
}

TEST_CASE("a process's identity names its time namespace") {
  using leaselock::detail::posix::ProcessIdentity;
  using leaselock::detail::posix::same_time_namespace;
  const ProcessIdentity self = leaselock::detail::posix::self_identity();
  REQUIRE(self.time_namespace != 0);  // Linux 5.6 and later
  CHECK(same_time_namespace(self));
  auto child = in_time_namespace(86400, [](auto report) {
    const auto& id = leaselock::detail::posix::self_identity();
    report(std::to_string(id.time_namespace));
    return 0;
  });
  const std::string line = child->next_line();
  REQUIRE_MESSAGE(line.find("failed") == std::string::npos, line);
  ProcessIdentity other = self;
  other.time_namespace = static_cast<std::uint32_t>(std::stoul(line));
  CHECK(other.time_namespace != self.time_namespace);
  CHECK_FALSE(same_time_namespace(other));  // its steady_clock is not ours
  CHECK(other == self);                     // still the same process, as far as == goes
  other.time_namespace = 0;                 // not recorded (an older writer): comparable
  CHECK(same_time_namespace(other));
  CHECK(child->wait() == 0);
}

namespace {

using ManualFiles = leaselock::LockManager<leaselock::ManualClock, FileBackend>;

// Keys a child takes and leaves behind, and idle keys that make the parent's cache of
// mappings overflow (64 mappings, one busy one per shard), so that every way an idle
// record is removed runs over the held ones: eviction from the cache, a backend's
// destructor, and remove_idle().
constexpr int kHeldKeys = 40;
constexpr int kIdleKeys = 400;

std::string held_key(int i) { return "held/" + std::to_string(i); }

FileBackendOptions small_cache(std::chrono::milliseconds liveness_check) {
  FileBackendOptions options;
  options.cached_records = 64;
  options.liveness_check = liveness_check;
  return options;
}

// Runs every idle-record removal of FileBackend over `dir`; returns how many record
// files remain.
template <class Clock>
std::size_t remove_idle_records_every_way(const std::filesystem::path& dir, const Clock& clock,
                                          std::chrono::milliseconds liveness_check) {
  using Manager = leaselock::LockManager<Clock, FileBackend>;
  {
    Manager busy{FileBackend{dir, small_cache(liveness_check)}, clock};
    for (int round = 0; round < 2; ++round) {
      for (int i = 0; i < kHeldKeys; ++i) (void)busy.status(held_key(i));
      for (int i = 0; i < kIdleKeys; ++i) {
        auto lease = busy.try_acquire("idle/" + std::to_string(i), Mode::exclusive, 1s);
        REQUIRE(lease);
      }
    }
  }  // the destructor removes what is idle in its cache
  Manager sweeper{FileBackend{dir, small_cache(liveness_check)}, clock};
  (void)sweeper.backend().remove_idle();
  std::size_t records = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    records += entry.path().extension() == ".lease";
  return records;
}

}  // namespace

TEST_CASE("file: a lease bound to no process outlives its acquirer until its TTL") {
  test::TempDir tmp;
  const auto dir = tmp.sub("locks");
  leaselock::ManualClock clock;  // the child's copy starts at the same time
  ManualFiles locks{FileBackend{dir}, clock};
  test::Child acquirer([&](auto report) {
    ManualFiles mine{FileBackend{dir}, clock};
    for (int i = 0; i < kHeldKeys; ++i) {
      auto lease = mine.try_acquire(held_key(i), Mode::exclusive, 1h);
      if (!lease || !lease.detach(HolderProcess::none()).valid()) return 1;
    }
    report("detached");
    return 0;  // exits normally: its leases are bound to no process
  });
  REQUIRE(acquirer.next_line() == "detached");
  REQUIRE(acquirer.wait() == 0);
  // Only the held records are left after every removal of idle records.
  CHECK(remove_idle_records_every_way(dir, clock, 10ms) == kHeldKeys);
  for (int i = 0; i < kHeldKeys; ++i) {
    CAPTURE(i);
    CHECK(locks.status(held_key(i)));
    CHECK_FALSE(locks.try_acquire(held_key(i), Mode::exclusive, 1h));
  }
  clock.advance(1h - 1ns);
  CHECK(remove_idle_records_every_way(dir, clock, 10ms) == kHeldKeys);
  CHECK_FALSE(locks.try_acquire(held_key(0), Mode::shared, 1h));
  clock.advance(1ns);  // their TTL ran out
  for (int i = 0; i < kHeldKeys; ++i) CHECK(locks.try_acquire(held_key(i), Mode::exclusive, 1h));
}

TEST_CASE("file: idle-record removal ends no lease early when liveness checks are off") {
  // The child's leases stay bound to it, and it exits: it is certainly dead, but checks
  // are off, so the leases run to their TTL.
  test::TempDir tmp;
  const auto dir = tmp.sub("locks");
  leaselock::ManualClock clock;
  ManualFiles locks{FileBackend{dir, small_cache(0ms)}, clock};
  test::Child acquirer([&](auto report) {
    ManualFiles mine{FileBackend{dir, small_cache(0ms)}, clock};
    for (int i = 0; i < kHeldKeys; ++i) {
      auto lease = mine.try_acquire(held_key(i), Mode::exclusive, 1h);
      if (!lease) return 1;
      (void)lease.detach();
    }
    report("detached");
    return 0;
  });
  REQUIRE(acquirer.next_line() == "detached");
  REQUIRE(acquirer.wait() == 0);
  CHECK(remove_idle_records_every_way(dir, clock, 0ms) == kHeldKeys);
  for (int i = 0; i < kHeldKeys; ++i) {
    CAPTURE(i);
    CHECK(locks.status(held_key(i)));
    CHECK_FALSE(locks.try_acquire(held_key(i), Mode::exclusive, 1h));
  }
  clock.advance(1h);
  for (int i = 0; i < kHeldKeys; ++i) CHECK(locks.try_acquire(held_key(i), Mode::exclusive, 1h));
}

TEST_CASE("file: a lease bound to another process ends when that process is killed") {
  test::TempDir tmp;
  const auto dir = tmp.sub("locks");
  SteadyFiles locks{FileBackend{dir}};
  test::IdleChild agent;
  const HolderProcess bound = HolderProcess::of(agent.pid());
  test::Child acquirer([&](auto report) {
    SteadyFiles mine{FileBackend{dir}};
    auto lease = mine.try_acquire("job", Mode::exclusive, 1h);
    report(lease && lease.detach(bound).valid() ? "bound" : "failed");
    return 0;  // the acquirer ends; the agent lives on
  });
  REQUIRE(acquirer.next_line() == "bound");
  REQUIRE(acquirer.wait() == 0);
  // Its acquirer has ended, its process lives: held, also after checks while waiting.
  CHECK(remove_idle_records_every_way(dir, std::chrono::steady_clock{}, 10ms) == 1);
  CHECK_FALSE(locks.try_acquire("job", Mode::exclusive, 1h));
  CHECK_FALSE(locks.try_acquire("job", Mode::exclusive, 1h, 50ms));
  CHECK(locks.status("job"));
  agent.kill_and_wait_for_zombie();
  CHECK_FALSE(locks.status("job"));                      // shown free at once ...
  CHECK(locks.try_acquire("job", Mode::exclusive, 1h));  // ... and taken at once
}

TEST_CASE("file: a lease bound in this process to another is reclaimed when it dies") {
  test::TempDir tmp;
  const auto dir = tmp.sub("locks");
  SteadyFiles locks{FileBackend{dir}};
  test::IdleChild agent;
  auto lease = locks.try_acquire("job", Mode::shared, 1h);
  REQUIRE(lease);
  REQUIRE(locks.bind("job", lease.token(), HolderProcess::of(agent.pid())));
  CHECK_FALSE(locks.try_acquire("job", Mode::exclusive, 1h));
  agent.kill_and_wait_for_zombie();
  auto next = locks.try_acquire("job", Mode::exclusive, 1h);
  CHECK(next);
  CHECK_FALSE(lease.release());  // it was reclaimed
}

TEST_CASE("file: binding to a process that has ended throws and changes nothing") {
  test::TempDir tmp;
  const auto dir = tmp.sub("locks");
  SteadyFiles locks{FileBackend{dir}};
  test::IdleChild agent;
  const HolderProcess bound = HolderProcess::of(agent.pid());  // exists now ...
  agent.kill_and_wait_for_zombie();                            // ... not any more
  auto lease = locks.try_acquire("job", Mode::exclusive, 1h);
  REQUIRE(lease);
  CHECK_THROWS_WITH_AS((void)locks.bind("job", lease.token(), bound),
                       ("leaselock: process " + std::to_string(agent.pid()) + " has ended").c_str(),
                       std::invalid_argument);
  CHECK_THROWS_AS((void)lease.detach(bound), std::invalid_argument);
  CHECK(lease);  // the guard is as it was
  CHECK(locks.status("job"));
  CHECK(lease.release());
}

TEST_CASE("file: a process of another time namespace never takes a held lease for expired") {
  test::TempDir tmp;
  const std::string dir = tmp.sub("locks").string();
  SteadyFiles locks{FileBackend{dir}};
  auto held = locks.try_acquire("job", Mode::exclusive, 1h);
  REQUIRE(held);
  // A day ahead there: our lease, which expires within the hour, reads as long expired.
  auto other = in_time_namespace(86400, [dir](auto report) {
    SteadyFiles mine{FileBackend{dir}};
    const auto ahead = std::chrono::steady_clock::now().time_since_epoch();
    report(std::to_string(std::chrono::duration_cast<std::chrono::seconds>(ahead).count()));
    for (const auto& attempt :
         {std::function<bool()>(
              [&] { return static_cast<bool>(mine.try_acquire("job", Mode::exclusive, 1h)); }),
          std::function<bool()>([&] {
            return static_cast<bool>(mine.try_acquire("job", Mode::exclusive, 1h, 20ms));
          }),
          std::function<bool()>([&] { return mine.status("job").has_value(); })}) {
      try {
        report(attempt() ? "granted or shown" : "refused as busy");
      } catch (const leaselock::StorageError& e) {
        report(std::string("storage error: ") + e.what());
      }
    }
    auto fresh = mine.try_acquire("their-own-key", Mode::exclusive, 1h);  // nothing to compare
    report(fresh ? "own key granted" : "own key refused");
    return 0;
  });
  const std::string ahead = other->next_line();
  REQUIRE_MESSAGE(ahead.find("failed") == std::string::npos, ahead);
  const auto ours = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::steady_clock::now().time_since_epoch());
  REQUIRE(std::stoll(ahead) >= ours.count() + 86400 - 60);  // its clock is a day ahead
  for (int i = 0; i < 3; ++i) {
    const std::string line = other->next_line();
    CAPTURE(line);
    CHECK(line.rfind("storage error: ", 0) == 0);  // refused, never granted
    CHECK(line.find("another time namespace") != std::string::npos);
  }
  CHECK(other->next_line() == "own key granted");
  CHECK(other->wait() == 0);
  CHECK(held.release());  // ours all along
}

TEST_CASE("file: a process stopped inside a record operation delays nobody past a deadline") {
  test::TempDir tmp;
  const std::string dir = tmp.sub("locks").string();
  FileBackendOptions options;
  options.stall_timeout = 200ms;
  SteadyFiles locks{FileBackend{dir, options}};
  auto other_lease = locks.try_acquire("other", Mode::shared, 1h);
  REQUIRE(other_lease);
  test::Child staller([dir](auto report) {
    SteadyFiles mine{FileBackend{dir}};
    mine.backend().update("job", [&](leaselock::detail::Record&) {
      report("inside");
      ::raise(SIGSTOP);  // stopped while it holds the record's mutex
      return true;
    });
    report("done");
    return 0;
  });
  REQUIRE(staller.next_line() == "inside");
  const auto elapsed_ms = [](auto since) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 since)
        .count();
  };
  auto start = std::chrono::steady_clock::now();
  CHECK_FALSE(locks.try_acquire("job", Mode::exclusive, 1h));  // one try: busy at once
  CHECK(elapsed_ms(start) < 150);
  start = std::chrono::steady_clock::now();
  CHECK_FALSE(locks.try_acquire("job", Mode::exclusive, 1h, 300ms));  // its deadline holds
  CHECK(elapsed_ms(start) >= 300);
  CHECK(elapsed_ms(start) < 2000);
  start = std::chrono::steady_clock::now();
  CHECK_FALSE(locks.status("job"));  // the last published record: nobody holds it
  CHECK(locks.list().size() == 1);   // "other" only
  CHECK(elapsed_ms(start) < 150);
  start = std::chrono::steady_clock::now();
  const leaselock::Token stranger = leaselock::Token::generate();
  CHECK_THROWS_WITH_AS((void)locks.release("job", stranger),
                       doctest::Contains("stayed locked for 200 ms by a process stopped or hung"),
                       leaselock::StorageError);
  CHECK(elapsed_ms(start) >= 200);
  CHECK(elapsed_ms(start) < 2000);
  ::kill(staller.pid(), SIGCONT);
  CHECK(staller.next_line() == "done");
  CHECK(staller.wait() == 0);
  CHECK(locks.try_acquire("job", Mode::exclusive, 1h));  // and on it goes
}
