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
