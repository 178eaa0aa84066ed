// leaselock/detail/posix/process.hpp — who this process is (the default lease owner), and
// whether another process exists.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>

namespace leaselock::detail::posix {

inline std::int64_t current_pid() noexcept { return static_cast<std::int64_t>(::getpid()); }

/// True if a process with this pid exists now in this process's PID namespace (also one
/// this process may not signal).
inline bool process_exists(std::int64_t pid) noexcept {
  if (pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH;
}

/// "pid@hostname" of the calling process (hostname cut to keep it short).
inline std::string process_owner() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::string owner = std::to_string(static_cast<long>(::getpid()));
  owner += '@';
  owner += host[0] ? host : "localhost";
  return owner;
}

}  // namespace leaselock::detail::posix
