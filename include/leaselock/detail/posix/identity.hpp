// leaselock/detail/posix/identity.hpp — which process holds a lease, and whether it died.
//
// A process is named by its pid, its start time (clock ticks since boot, from
// /proc/<pid>/stat), the boot it runs in (a hash of /proc/sys/kernel/random/boot_id) and
// its PID namespace (the inode of /proc/self/ns/pid). Together they rule out pid reuse:
// a recycled pid has another start time. A process is *certainly* dead when
//   - it ran in an earlier boot of this kernel's machine (the boot id differs), or
//   - it ran in this boot and this PID namespace, /proc is this process's own view of
//     its PID namespace (/proc/self is getpid()), and /proc has no process with that
//     pid, or that pid is a zombie with no live thread left, or it started at another
//     time.
// Anything else (another PID namespace, a /proc mounted for another PID namespace, an
// unreadable /proc, an unknown boot id) is not certain, and a lease held there is left
// to run out at its TTL. A process whose main thread ended (pthread_exit) while others
// run shows as a zombie in /proc/<pid>/stat: it is alive while /proc/<pid>/status counts
// more than one thread.
//
// The identity also names the time namespace (the inode of /proc/self/ns/time) whose
// CLOCK_MONOTONIC the process's steady_clock reads: times written by processes of two
// different time namespaces cannot be compared (same_time_namespace()).
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
#include <optional>
#include <string_view>

#include <leaselock/detail/posix/fork.hpp>

namespace leaselock::detail::posix {

struct ProcessIdentity {
  std::uint32_t pid = 0;
  /// The inode of the time namespace (0: unknown, or a kernel without them). Not part
  /// of the process's identity (==): it says which clock its times were read from.
  std::uint32_t time_namespace = 0;
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

/// The inode of /proc/self/ns/<name>, 0 if there is none.
inline std::uint64_t namespace_inode(const char* name) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/ns/%s", name);
  struct stat ns {};
  return ::stat(path, &ns) == 0 ? static_cast<std::uint64_t>(ns.st_ino) : 0;
}

/// True if `proc` is this process's own view of its PID namespace: `proc`/self names
/// getpid(). A /proc mounted for another PID namespace (unshare -p without remounting
/// it, some containers) names other processes by the same numbers.
inline bool proc_is_own_view(const char* proc = "/proc") noexcept {
  char path[256];
  std::snprintf(path, sizeof path, "%s/self", proc);
  char target[32];
  const ssize_t n = ::readlink(path, target, sizeof target - 1);
  if (n <= 0) return false;
  target[n] = '\0';
  char* end = nullptr;
  const unsigned long long pid = std::strtoull(target, &end, 10);
  return end == target + n && pid == static_cast<unsigned long long>(::getpid());
}

/// The "Threads:" count of a /proc/<pid>/status text; 0 if it has none.
inline unsigned long parse_thread_count(std::string_view status) noexcept {
  constexpr std::string_view kField = "\nThreads:";
  const std::size_t at = status.find(kField);
  if (at == std::string_view::npos) return 0;
  std::size_t pos = at + kField.size();
  while (pos < status.size() && (status[pos] == ' ' || status[pos] == '\t')) ++pos;
  unsigned long count = 0;
  for (; pos < status.size() && status[pos] >= '0' && status[pos] <= '9'; ++pos)
    count = count * 10 + static_cast<unsigned long>(status[pos] - '0');
  return count;
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
  id.pid_namespace = namespace_inode("pid");
  id.time_namespace = static_cast<std::uint32_t>(namespace_inode("time"));
  return id;
}

/// What this process knows of itself (recomputed in a child after fork).
struct SelfView {
  ProcessIdentity identity;
  bool proc_is_own_view = false;
};

inline const SelfView& self_view() noexcept {
  thread_local unsigned long generation = ~0ul;
  thread_local SelfView view;
  const unsigned long now = fork_generation();
  if (generation != now) {
    view.identity = compute_identity();
    view.proc_is_own_view = proc_is_own_view();
    generation = now;
  }
  return view;
}

/// This process (recomputed in a child after fork).
inline const ProcessIdentity& self_identity() noexcept { return self_view().identity; }

/// True when times written by process `id` were read from this process's steady clock:
/// both in one time namespace, or either one unknown (a kernel without time namespaces,
/// or a record of a version that did not record it).
inline bool same_time_namespace(const ProcessIdentity& id) noexcept {
  const std::uint32_t mine = self_identity().time_namespace;
  return id.time_namespace == 0 || mine == 0 || id.time_namespace == mine;
}

/// True only when the process `id` has certainly ended (see the file comment).
inline bool certainly_dead(const ProcessIdentity& id) noexcept {
  const SelfView& view = self_view();
  const ProcessIdentity& self = view.identity;
  if (id.pid == 0 || id.boot == 0 || self.boot == 0) return false;
  if (id.boot != self.boot) return true;  // an earlier boot: every process of it has ended
  if (id.pid_namespace == 0 || id.pid_namespace != self.pid_namespace) return false;
  if (id.start_ticks == 0) return false;
  if (id.pid == self.pid) return id.start_ticks != self.start_ticks;
  if (!view.proc_is_own_view) return false;  // /proc's pids are another namespace's
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%u/stat", id.pid);
  char buffer[1024];
  if (read_small_file(path, buffer, sizeof buffer) > 0) {
    ProcStat stat;
    if (!parse_proc_stat(buffer, stat)) return false;
    if (stat.start_ticks != id.start_ticks || stat.state == 'X') return true;
    if (stat.state != 'Z') return false;
    // A zombie main thread: dead only if no other thread of the process still runs.
    std::snprintf(path, sizeof path, "/proc/%u/status", id.pid);
    char status[4096];
    if (read_small_file(path, status, sizeof status) <= 0) return false;
    return parse_thread_count(status) == 1;
  }
  // No /proc entry: gone if the kernel agrees (with /proc unmounted, nothing is certain).
  struct stat proc {};
  if (::stat("/proc/self/stat", &proc) != 0) return false;
  return ::kill(static_cast<pid_t>(id.pid), 0) != 0 && errno == ESRCH;
}

/// The identity of a lease bound to no process: never taken for dead; it keeps this
/// process's time namespace, whose clock its times are read from.
inline ProcessIdentity unbound_identity() noexcept {
  ProcessIdentity id;
  id.time_namespace = self_identity().time_namespace;
  return id;
}

/// The identity of process `pid` (as this process numbers processes), for a lease this
/// process binds to it: its start time, and this process's boot, PID namespace and time
/// namespace; nullopt if it has ended (no such process, or a zombie with no thread left).
/// Where /proc cannot tell its start time (not mounted, or another PID namespace's), the
/// start time is left unknown, so that the process is never taken for dead.
inline std::optional<ProcessIdentity> identity_of_process(std::int64_t pid) noexcept {
  const SelfView& view = self_view();
  if (pid <= 0 || pid > 0x7fffffff) return std::nullopt;
  if (pid == view.identity.pid) return view.identity;
  ProcessIdentity id = view.identity;
  id.pid = static_cast<std::uint32_t>(pid);
  id.start_ticks = 0;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return std::nullopt;
  if (!view.proc_is_own_view) return id;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%u/stat", id.pid);
  char buffer[1024];
  ProcStat stat;
  if (read_small_file(path, buffer, sizeof buffer) <= 0 || !parse_proc_stat(buffer, stat))
    return id;
  id.start_ticks = stat.start_ticks;
  if (certainly_dead(id)) return std::nullopt;
  return id;
}

}  // namespace leaselock::detail::posix
