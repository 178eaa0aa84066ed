// cli/run.cpp — `leaselock run KEY -- CMD [ARG...]` and `leaselock run KEY -c STRING`:
// a command run under a lease, like flock(1), with a TTL, a token and a fence.
//
// The lease is taken first (waiting per -n/-w), then the command is started with
// LEASELOCK_KEY, LEASELOCK_TOKEN, LEASELOCK_FENCE (and LEASELOCK_DIR or LEASELOCK_POSTGRES,
// so that its own leaselock calls use the same storage) in its environment
// while the library's keep-alive renews the lease every third of its TTL (started once
// the command has run a tenth of the TTL, at most 1 s: a short command needs no
// renewal thread). This process
// then only waits for signals (sigtimedwait, everything of interest blocked in every
// thread): the child's exit; SIGINT, SIGTERM, SIGHUP to forward to it; the keep-alive's
// word that the lease is lost, on which the child gets SIGTERM and, after a grace of a
// quarter of the TTL (at most 5 s), SIGKILL. Should this process die anyway (SIGKILL),
// the command gets SIGTERM from the kernel (Linux), since its lease is then reclaimed (a
// lock directory's at once; PostgreSQL's, no longer renewed, at its TTL).
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "backend.hpp"
#include "commands.hpp"
#include "durations.hpp"
#include "errors.hpp"
#include "options.hpp"
#include "request.hpp"
#include "timestamps.hpp"

extern char** environ;

namespace leaselock::cli {
namespace {

constexpr const char* kRunHelp =
    "usage: leaselock run [COMMON] [-s|-x] [-n|-w DUR] [--ttl DUR] [-E CODE] KEY -- CMD [ARG...]\n"
    "       leaselock run [COMMON] [-s|-x] [-n|-w DUR] [--ttl DUR] [-E CODE] KEY -c STRING\n"
    "\n"
    "Takes a lease on KEY, runs CMD (or 'sh -c STRING') while keeping the lease alive, and\n"
    "releases it when CMD exits. CMD gets LEASELOCK_KEY, LEASELOCK_TOKEN, LEASELOCK_FENCE\n"
    "and LEASELOCK_DIR (or LEASELOCK_POSTGRES) in its environment; SIGINT, SIGTERM and\n"
    "SIGHUP sent to leaselock are passed on to it. Exits with CMD's status (128 + N if signal N "
    "killed it); 75 if\n"
    "KEY stayed busy; 76 if the lease was lost while CMD ran (CMD then gets SIGTERM, and\n"
    "SIGKILL a quarter of the TTL later, at most 5 s); 126/127 if CMD cannot be run.\n"
    "With --json, a busy KEY prints {\"key\",\"acquired\":false,\"holders\",\"waiters\"}.\n"
    "\n"
    "options:\n"
    "  --ttl DUR       lease TTL, renewed every third of it (default 30s)\n"
    "  -c STRING       run 'sh -c STRING' (instead of -- CMD [ARG...])\n";

// The keep-alive's renewal thread says "lost" by setting this and raising kLostSignal.
std::atomic<bool> lease_lost{false};
constexpr int kLostSignal = SIGUSR2;
constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP};

// NAME=VALUE entries for the child: ours replace any of the same name in `environ`, and
// `dropped` (names) are left out.
std::vector<std::string> child_environment(const std::vector<std::string>& ours,
                                           std::string_view dropped) {
  std::vector<std::string> entries;
  for (char** entry = environ; *entry; ++entry) {
    const std::string_view text(*entry);
    const bool replaced = std::any_of(ours.begin(), ours.end(), [&](const std::string& mine) {
      const std::size_t name = mine.find('=') + 1;
      return text.compare(0, name, mine, 0, name) == 0;
    });
    const bool drop = text.size() > dropped.size() &&
                      text.compare(0, dropped.size(), dropped) == 0 && text[dropped.size()] == '=';
    if (!replaced && !drop) entries.emplace_back(text);
  }
  entries.insert(entries.end(), ours.begin(), ours.end());
  return entries;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> result;
  result.reserve(strings.size() + 1);
  for (std::string& text : strings) result.push_back(text.data());
  result.push_back(nullptr);
  return result;
}

// Starts `command` with `environment`, with no signal blocked (and those this process
// was started ignoring still ignored), and SIGTERM for it should
// this process die (killed with SIGKILL, say: its lease is then reclaimed, so the command
// must stop too). The child's pid, or the exit code for a command that could not be
// started (after saying why on stderr). vfork(): the child borrows this process's memory
// until it execs (no page tables copied: a tenth of a short `run`), so it makes system
// calls only (execvpe searches PATH on its stack) and reports exec's error on a pipe.
struct Spawned {
  pid_t pid = -1;
  int failure = 0;
};

Spawned spawn(std::vector<std::string> command, std::vector<std::string> environment) {
  std::vector<char*> argv = pointers(command);
  std::vector<char*> envp = pointers(environment);
  const pid_t parent = ::getpid();
  // The child writes exec's errno here; a successful exec closes it (O_CLOEXEC). (Not a
  // variable in the shared memory: a sanitizer may turn vfork into fork.)
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category());
  Spawned spawned;
  spawned.pid = ::vfork();
  if (spawned.pid == 0) {
#ifdef __linux__
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(exit_code::lost);  // it died before prctl
#endif
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execvpe(argv[0], argv.data(), envp.data());
    const int error = errno;
    const ssize_t written = ::write(report[1], &error, sizeof error);
    ::_exit(written == static_cast<ssize_t>(sizeof error) ? exit_code::not_found
                                                          : exit_code::cannot_execute);
  }
  const int vfork_error = errno;
  ::close(report[1]);
  if (spawned.pid < 0) {
    ::close(report[0]);
    throw std::system_error(vfork_error, std::generic_category(), "vfork");
  }
  int error = 0;
  ssize_t got;
  do {
    got = ::read(report[0], &error, sizeof error);
  } while (got < 0 && errno == EINTR);
  ::close(report[0]);
  if (got == static_cast<ssize_t>(sizeof error)) {
    ::waitpid(spawned.pid, nullptr, 0);
    std::fprintf(stderr, "leaselock run: cannot run '%s': %s\n", command[0].c_str(),
                 std::strerror(error));
    spawned.pid = -1;
    spawned.failure = error == ENOENT ? exit_code::not_found : exit_code::cannot_execute;
  }
  return spawned;
}

int exit_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return exit_code::internal;
}

// Waits for the child, forwarding signals, starting the lease's keep-alive once the
// child has run for `keep_alive_after` (a command that ends sooner needs none: its lease
// is far from expiry), and ending the child if the lease is lost. Returns its wait status
// and whether the lease was lost.
struct Outcome {
  int status = 0;
  bool lost = false;
};

Outcome supervise(pid_t child, const sigset_t& signals, std::chrono::nanoseconds grace,
                  std::chrono::nanoseconds keep_alive_after,
                  const std::function<void()>& start_keep_alive) {
  using Clock = std::chrono::steady_clock;
  Outcome outcome;
  std::optional<Clock::time_point> keep_alive_at = Clock::now() + keep_alive_after;
  std::optional<Clock::time_point> kill_at;
  for (;;) {
    const std::optional<Clock::time_point> wake = kill_at ? kill_at : keep_alive_at;
    siginfo_t info{};
    int signal;
    if (wake) {
      const auto left = std::max(*wake - Clock::now(), Clock::duration::zero());
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      const timespec timeout{static_cast<time_t>(ns / 1'000'000'000),
                             static_cast<long>(ns % 1'000'000'000)};
      signal = ::sigtimedwait(&signals, &info, &timeout);
    } else {
      signal = ::sigwaitinfo(&signals, &info);
    }
    if (signal < 0) {
      if (errno != EAGAIN) continue;  // EINTR
      if (kill_at) {                  // the grace ran out
        ::kill(child, SIGKILL);
        kill_at.reset();
      } else if (keep_alive_at) {
        start_keep_alive();
        keep_alive_at.reset();
      }
      continue;
    }
    if (signal == SIGCHLD) {
      int status = 0;
      if (::waitpid(child, &status, WNOHANG) == child) {
        outcome.status = status;
        return outcome;
      }
      continue;
    }
    if (signal == kLostSignal) {
      if (lease_lost.load() && !outcome.lost) {
        outcome.lost = true;
        std::fputs("leaselock run: the lease was lost; stopping the command\n", stderr);
        ::kill(child, SIGTERM);
        kill_at = Clock::now() + grace;
      }
      continue;
    }
    // SIGINT, SIGTERM, SIGHUP. One the terminal sent went to the whole process group,
    // the child included, already.
    if (info.si_code != SI_KERNEL) ::kill(child, signal);
  }
}

}  // namespace

int run_command(const Args& arguments) {
  CommonOptions common;
  RequestOptions request;
  std::optional<std::string> shell_command;
  ArgParser parser("run", std::string(kRunHelp) + kRequestOptionsHelp, common);
  add_request_options(parser, request);
  parser.option({"-c", "--command"}, [&](const std::string& value) { shell_command = value; });
  const std::optional<ParsedArgs> args = parser.parse(arguments);
  if (!args) return exit_code::ok;
  if (args->positional.size() != 1) throw parser.usage("run takes one KEY before the command");
  if (shell_command && args->dashes)
    throw parser.usage("give either -c STRING or -- CMD [ARG...], not both");
  if (!shell_command && (!args->dashes || args->after_dashes.empty()))
    throw parser.usage("run needs a command: -- CMD [ARG...] or -c STRING");
  const std::string& key = key_argument(args->positional[0]);
  if (!request.ttl) request.ttl = std::chrono::seconds(30);
  std::vector<std::string> command = shell_command
                                         ? std::vector<std::string>{"/bin/sh", "-c", *shell_command}
                                         : args->after_dashes;

  // The command's own leaselock calls use the same storage.
  const bool postgres = !common.postgres.empty();
  const std::string storage =
      postgres ? "LEASELOCK_POSTGRES=" + common.postgres : "LEASELOCK_DIR=" + common.dir;
  const std::string_view other_storage = postgres ? "LEASELOCK_DIR" : "LEASELOCK_POSTGRES";

  return with_manager(common, {}, [&](auto& manager) {
    auto lease = take_lease(manager, key, request);
    if (!lease) return report_busy("run", manager, key, common, request);

    // From here on, the signals we wait for are blocked in this thread and in the renewal
    // thread keep_alive() starts, so that only sigwaitinfo() takes them.
    // A forwarded signal this process was started ignoring (nohup's SIGHUP, SIGINT in a
    // background job) stays ignored, by it and by the command, and is not forwarded.
    sigset_t signals;
    sigemptyset(&signals);
    for (int signal : kForwarded) {
      struct sigaction action {};
      if (::sigaction(signal, nullptr, &action) == 0 && action.sa_handler == SIG_IGN) continue;
      sigaddset(&signals, signal);
    }
    sigaddset(&signals, SIGCHLD);
    sigaddset(&signals, kLostSignal);
    ::pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    const Spawned child = spawn(
        std::move(command),
        child_environment({"LEASELOCK_KEY=" + key, "LEASELOCK_TOKEN=" + lease.token().to_string(),
                           "LEASELOCK_FENCE=" + std::to_string(lease.fence()), storage},
                          other_storage));
    if (child.pid < 0) return child.failure;  // the lease is released on the way out
    const auto start_keep_alive = [&lease] {
      lease.keep_alive([] {
        lease_lost.store(true);
        ::kill(::getpid(), kLostSignal);
      });
    };
    const std::chrono::nanoseconds ttl = *request.ttl;
    const auto grace = std::min<std::chrono::nanoseconds>(ttl / 4, std::chrono::seconds(5));
    const auto keep_alive_after =
        std::min<std::chrono::nanoseconds>(ttl / 10, std::chrono::seconds(1));
    const Outcome outcome =
        supervise(child.pid, signals, grace, keep_alive_after, start_keep_alive);
    if (outcome.lost) return exit_code::lost;
    lease.release();
    return exit_status(outcome.status);
  });
}

}  // namespace leaselock::cli
