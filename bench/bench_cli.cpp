// bench/bench_cli.cpp — the leaselock command from a shell's point of view: whole
// invocations, process start included, each beside flock(1) doing the same in the same
// run, alternating A B B A so that drift hits both alike.
//
//   bench_cli [--quick] [--leaselock PATH] [--postgres CONNINFO]
//   (PATH: default, the one built beside it)
//
// Rows: `leaselock run -n KEY -- true` vs `flock -n FILE true`; an acquire + release pair
// (the token read from acquire's stdout, as `token=$(...)` does) vs two `flock -n FILE
// true`; `leaselock status KEY` vs `flock -n FILE true`. Medians of per-invocation wall
// times. With --postgres, also the acquire + release pair over that database beside the
// same pair over the lock directory. Prints one markdown table; exit 1 if a command failed.
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench_common.hpp"

extern char** environ;

namespace {

bool failed = false;

// Runs `argv` to its end with stdin from /dev/null and stdout into `out` (if given; else
// /dev/null); returns its wall time in ns. A failure is reported once and marks the run.
double run(const std::vector<std::string>& args, std::string* out = nullptr, int expect = 0) {
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  int pipe_fds[2] = {-1, -1};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (out) {
    if (::pipe(pipe_fds) != 0) std::perror("pipe");
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
    posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
    posix_spawn_file_actions_addclose(&actions, pipe_fds[1]);
  } else {
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  }
  const std::int64_t start = bench::mono_ns();
  pid_t pid = -1;
  const int error = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (out) {
    ::close(pipe_fds[1]);
    out->clear();
    char buffer[256];
    ssize_t got;
    while ((got = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0)
      out->append(buffer, static_cast<std::size_t>(got));
    ::close(pipe_fds[0]);
  }
  int status = 0;
  if (error == 0) ::waitpid(pid, &status, 0);
  const std::int64_t end = bench::mono_ns();
  if (error != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != expect) {
    if (!failed)
      std::fprintf(stderr, "PROBLEM: '%s' failed (%s, status %d)\n", args[0].c_str(),
                   error ? std::strerror(error) : "ran", status);
    failed = true;
  }
  return static_cast<double>(end - start);
}

std::string ms(double ns) { return bench::fmt("%.2f ms", ns / 1e6); }

void row(const char* what, const bench::Pair& pair, const char* baseline, const char* goal) {
  std::printf("| %s | %s | %s: %s | %.2f | %s |\n", what, ms(pair.ma()).c_str(), baseline,
              ms(pair.mb()).c_str(), pair.ma() / pair.mb(), goal);
}

std::string default_leaselock(const char* self) {
#ifdef LEASELOCK_CLI_PATH
  (void)self;
  return LEASELOCK_CLI_PATH;
#else
  std::string path(self);
  const std::size_t slash = path.rfind('/');
  return (slash == std::string::npos ? std::string(".") : path.substr(0, slash)) +
         "/../cli/leaselock";
#endif
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 200;
  std::string leaselock = default_leaselock(argv[0]);
  std::string postgres;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      reps = 40;
    } else if (arg == "--leaselock" && i + 1 < argc) {
      leaselock = argv[++i];
    } else if (arg == "--postgres" && i + 1 < argc) {
      postgres = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--leaselock PATH] [--postgres CONNINFO]\n",
                   argv[0]);
      return 2;
    }
  }
  char dir_template[] = "/tmp/leaselock-bench-cli.XXXXXX";
  const char* dir = ::mkdtemp(dir_template);
  if (!dir) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string locks = std::string(dir) + "/locks";
  const std::string flock_file = std::string(dir) + "/flock";
  ::setenv("LEASELOCK_DIR", locks.c_str(), 1);
  const std::string key = "repo/src/main_mod.cpp";

  const std::vector<std::string> run_true = {leaselock, "run", "-n", key, "--", "true"};
  const std::vector<std::string> flock_true = {"flock", "-n", flock_file, "true"};
  const std::vector<std::string> status = {leaselock, "status", key};
  // Warm-up: page cache, the lock directory created.
  for (int i = 0; i < 5; ++i) {
    run(run_true);
    run(flock_true);
  }

  std::printf("leaselock command vs flock(1), %d invocations each, %s, load %s\n\n", reps,
              bench::cpu_model().c_str(), bench::loadavg().c_str());
  std::printf(
      "| per invocation, process start included | leaselock | baseline (same run) | ratio | goal "
      "|\n");
  std::printf("|---|---|---|---|---|\n");
  const bench::Pair runs = bench::interleaved(
      reps, [&] { return run(run_true); }, [&] { return run(flock_true); });
  row("`leaselock run -n KEY -- true`", runs, "`flock -n FILE true`", "≤ 1.3");

  // acquire + release through the command, over `storage` (none: $LEASELOCK_DIR).
  std::string token;
  const auto acquire_release = [&](const std::vector<std::string>& storage) {
    std::vector<std::string> acquire = {leaselock, "acquire"};
    acquire.insert(acquire.end(), storage.begin(), storage.end());
    acquire.insert(acquire.end(), {"--ttl", "30s", key});
    double ns = run(acquire, &token);
    if (!token.empty() && token.back() == '\n') token.pop_back();
    std::vector<std::string> release = {leaselock, "release"};
    release.insert(release.end(), storage.begin(), storage.end());
    release.insert(release.end(), {key, token});
    return ns + run(release);
  };
  const bench::Pair pairs = bench::interleaved(
      reps, [&] { return acquire_release({}); }, [&] { return run(flock_true) + run(flock_true); });
  row("`acquire --ttl 30s KEY` + `release KEY TOKEN`", pairs, "two `flock -n FILE true`", "");
  if (!postgres.empty()) {
    const bench::Pair over_postgres = bench::interleaved(
        reps,
        [&] {
          return acquire_release({"--postgres", postgres});
        },
        [&] { return acquire_release({}); });
    row("the same pair with `--postgres URL`", over_postgres, "the pair over `--dir`", "");
  }

  const bench::Pair statuses = bench::interleaved(
      reps, [&] { return run(status); }, [&] { return run(flock_true); });
  row("`leaselock status KEY`", statuses, "`flock -n FILE true`", "");

  std::printf(
      "\n- medians of wall time from spawn to exit; stdout read from a pipe (acquire) or "
      "/dev/null\n");
  std::string cleanup = std::string("rm -rf '") + dir + "'";
  if (std::system(cleanup.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", dir);
  return failed ? 1 : 0;
}
