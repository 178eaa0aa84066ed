// Helpers for tests that fork: a child process that reports back through a pipe.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <utility>

namespace test {

/// A forked child running `body(report)`; `report(text)` sends a line to the parent.
/// The child exits with body's return value (or 99 after an exception).
class Child {
 public:
  template <class Body>
  explicit Child(Body&& body) {
    int fds[2];
    if (::pipe(fds) != 0) std::abort();
    std::fflush(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) std::abort();
    if (pid_ == 0) {
      ::close(fds[0]);
      const int out = fds[1];
      const auto report = [out](const std::string& text) {
        const std::string line = text + "\n";
        if (::write(out, line.data(), line.size()) < 0) ::_exit(98);
      };
      int code = 99;
      try {
        code = body(report);
      } catch (const std::exception& e) {
        report(std::string("exception: ") + e.what());
      }
      ::close(out);
      ::_exit(code);
    }
    ::close(fds[1]);
    read_fd_ = fds[0];
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      wait();
    }
    if (read_fd_ >= 0) ::close(read_fd_);
  }

  pid_t pid() const noexcept { return pid_; }

  /// The next line the child reported ("" if it closed the pipe first).
  std::string next_line() {
    std::string line;
    char c;
    for (;;) {
      const ssize_t got = ::read(read_fd_, &c, 1);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0 || c == '\n') return line;
      line += c;
    }
  }

  /// Kills the child with SIGKILL and waits until it is a zombie (not reaped).
  void kill_and_wait_for_zombie() {
    ::kill(pid_, SIGKILL);
    siginfo_t info{};
    while (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT) != 0 &&
           errno == EINTR) {
    }
  }

  /// Waits for the child to end; its exit code, or 128 + signal.
  int wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int read_fd_ = -1;
  bool reaped_ = false;
};

/// A child that only waits to be killed (a process for leases to be bound to); running
/// once constructed.
class IdleChild : public Child {
 public:
  IdleChild()
      : Child([](auto report) {
          report("running");
          for (;;) ::pause();
          return 0;
        }) {
    if (next_line() != "running") std::abort();
  }
};

}  // namespace test
