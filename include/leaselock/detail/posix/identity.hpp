// leaselock/detail/posix/identity.hpp — which process holds a lease, and whether it died.
//
// A process is named by its pid, its start time (clock ticks since boot, from
// /proc/<pid>/stat), the boot it runs in (a hash of /proc/sys/kernel/random/boot_id) and
// its PID namespace (the inode of /proc/self/ns/pid). Together they rule out pid reuse:
// a recycled pid has another start time. A process is *certainly* dead when
//   - it ran in an earlier boot of this kernel's machine (the boot id differs), or
//   - it ran in this boot and this PID namespace, and /proc has no process with that
//     pid, or that pid is a zombie, or it started at another time.
// Anything else (another PID namespace, an unreadable /proc, an unknown boot id) is not
// certain, and a lease held there is left to run out at its TTL.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include <leaselock/detail/posix/fork.hpp>

namespace leaselock::detail::posix {

struct ProcessIdentity {
  std::uint32_t pid = 0;
  std::uint32_t reserved = 0;
  std::uint64_t start_ticks = 0;
  std::uint64_t boot = 0;
  std::uint64_t pid_namespace = 0;

  friend bool operator==(const ProcessIdentity& a, const ProcessIdentity& b) noexcept {
    return a.pid == b.pid && a.start_ticks == b.start_ticks && a.boot == b.boot &&
           a.pid_namespace == b.pid_namespace;
  }
  friend bool operator!=(const ProcessIdentity& a, const ProcessIdentity& b) noexcept {
    return !(a == b);
  }
};

/// Reads up to size-1 bytes of a small file into `buffer` (NUL-terminated); the length,
/// or -1 if it cannot be read.
inline long read_small_file(const char* path, char* buffer, std::size_t size) noexcept {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  std::size_t done = 0;
  while (done + 1 < size) {
    const ssize_t got = ::read(fd, buffer + done, size - 1 - done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    done += static_cast<std::size_t>(got);
  }
  ::close(fd);
  buffer[done] = '\0';
  return static_cast<long>(done);
}

/// What /proc/<pid>/stat says: the state letter and the start time.
struct ProcStat {
  char state = '?';
  std::uint64_t start_ticks = 0;
};

/// Parses the text of /proc/<pid>/stat ("pid (comm) S ppid ... starttime ..."; comm may
/// hold spaces and parentheses, so fields are counted after the last ')').
inline bool parse_proc_stat(std::string_view text, ProcStat& out) noexcept {
  const std::size_t close = text.rfind(')');
  if (close == std::string_view::npos || close + 2 >= text.size()) return false;
  std::size_t pos = close + 2;  // at the state letter, field 3
  out.state = text[pos];
  // starttime is field 22: skip 19 more fields after the state.
  for (int field = 3; field < 22; ++field) {
    pos = text.find(' ', pos);
    if (pos == std::string_view::npos) return false;
    ++pos;
  }
  std::uint64_t value = 0;
  bool any = false;
  for (; pos < text.size() && text[pos] >= '0' && text[pos] <= '9'; ++pos) {
    value = value * 10 + static_cast<std::uint64_t>(text[pos] - '0');
    any = true;
  }
  out.start_ticks = value;
  return any;
}

inline std::uint64_t hash_text(std::string_view text) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h ? h : 1;
}

inline ProcessIdentity compute_identity() noexcept {
  ProcessIdentity id;
  id.pid = static_cast<std::uint32_t>(::getpid());
  char buffer[1024];
  if (read_small_file("/proc/self/stat", buffer, sizeof buffer) > 0) {
    ProcStat stat;
    if (parse_proc_stat(buffer, stat)) id.start_ticks = stat.start_ticks;
  }
  const long n = read_small_file("/proc/sys/kernel/random/boot_id", buffer, sizeof buffer);
  if (n > 0) id.boot = hash_text(std::string_view(buffer, static_cast<std::size_t>(n)));
  struct stat ns {};
  if (::stat("/proc/self/ns/pid", &ns) == 0) id.pid_namespace = ns.st_ino;
  return id;
}

/// This process (recomputed in a child after fork).
inline const ProcessIdentity& self_identity() noexcept {
  thread_local unsigned long generation = ~0ul;
  thread_local ProcessIdentity id;
  const unsigned long now = fork_generation();
  if (generation != now) {
    id = compute_identity();
    generation = now;
  }
  return id;
}

/// True only when the process `id` has certainly ended (see the file comment).
inline bool certainly_dead(const ProcessIdentity& id) noexcept {
  const ProcessIdentity& self = self_identity();
  if (id.pid == 0 || id.boot == 0 || self.boot == 0) return false;
  if (id.boot != self.boot) return true;  // an earlier boot: every process of it has ended
  if (id.pid_namespace == 0 || id.pid_namespace != self.pid_namespace) return false;
  if (id.start_ticks == 0) return false;
  if (id.pid == self.pid) return id.start_ticks != self.start_ticks;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%u/stat", id.pid);
  char buffer[1024];
  if (read_small_file(path, buffer, sizeof buffer) > 0) {
    ProcStat stat;
    if (!parse_proc_stat(buffer, stat)) return false;
    return stat.state == 'Z' || stat.state == 'X' || stat.start_ticks != id.start_ticks;
  }
  // No /proc entry: gone if the kernel agrees (with /proc unmounted, nothing is certain).
  struct stat proc {};
  if (::stat("/proc/self/stat", &proc) != 0) return false;
  return ::kill(static_cast<pid_t>(id.pid), 0) != 0 && errno == ESRCH;
}

}  // namespace leaselock::detail::posix
