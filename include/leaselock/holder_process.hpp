// leaselock/holder_process.hpp — HolderProcess: which process a lease lives and dies with.
//
// Every lease is bound to a process. By default it is the process that acquired it
// (HolderProcess::this_process()), and a backend that can tell when a process has
// certainly ended (FileBackend, with liveness checks on) frees the lease of a dead
// process at once instead of at its TTL. LockManager::bind and Lease::detach(process)
// move a lease to another process — for example the agent a lease was taken for, when a
// short-lived command took it — or to none(): then only its token or its TTL ends it.
//
// @code
//   auto lease = locks.acquire("build/out", leaselock::Mode::exclusive, std::chrono::minutes(5));
//   const auto token = lease.detach(leaselock::HolderProcess::of(agent_pid));
//   // The lease now ends at its TTL, by release(key, token), or when agent_pid dies.
// @endcode
//
// What each backend does with the binding:
//   InProcessBackend  accepts it and changes nothing: its leases live in this process's
//                     memory, so they end with this process whatever they are bound to,
//                     and before that only by their token or their TTL, as always.
//   FileBackend       stores it with the holder in the record file. It frees a lease
//                     before its TTL only when its bound process has certainly ended
//                     (detail/posix/identity.hpp) and liveness checks are on
//                     (FileBackendOptions::liveness_check > 0). A lease bound to none()
//                     lives until its token or its TTL, whatever removes idle records; one
//                     bound to of(pid) is reclaimed as soon as that process is found dead.
//                     Where /proc cannot tell that process's start time (a /proc of another
//                     PID namespace), it is never found dead: the lease runs to its TTL.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include <leaselock/detail/platform.hpp>
#include <leaselock/limits.hpp>

namespace leaselock {

class HolderProcess {
 public:
  enum class Kind : std::uint8_t {
    this_process,   // the process that makes the call (acquires, binds)
    other_process,  // another process of this machine, by pid
    none,           // no process: only the lease's token or its TTL end it
  };

  /// The process making the call: the default of every acquisition.
  static HolderProcess this_process() noexcept { return HolderProcess(Kind::this_process, 0); }

  /// Process `pid` of this machine, as this process sees pids (its PID namespace); the
  /// calling process's own pid gives this_process(). Throws std::invalid_argument if
  /// pid <= 0 or no such process exists now.
  static HolderProcess of(std::int64_t pid) {
    if (pid <= 0 || pid > std::numeric_limits<std::int32_t>::max())
      detail::throw_invalid("pid must be a process id > 0 (got " + std::to_string(pid) + ")");
    if (pid == detail::platform::current_pid()) return this_process();
    if (!detail::platform::process_exists(pid))
      detail::throw_invalid("no process with pid " + std::to_string(pid) + " exists");
    return HolderProcess(Kind::other_process, pid);
  }

  /// No process: the lease ends only by its token or its TTL.
  static HolderProcess none() noexcept { return HolderProcess(Kind::none, 0); }

  Kind kind() const noexcept { return kind_; }
  /// The bound pid: other_process's, this process's for this_process(), 0 for none().
  std::int64_t pid() const noexcept {
    return kind_ == Kind::this_process ? detail::platform::current_pid() : pid_;
  }

  friend bool operator==(const HolderProcess& a, const HolderProcess& b) noexcept {
    return a.kind_ == b.kind_ && a.pid_ == b.pid_;
  }
  friend bool operator!=(const HolderProcess& a, const HolderProcess& b) noexcept {
    return !(a == b);
  }

 private:
  HolderProcess(Kind kind, std::int64_t pid) noexcept : kind_(kind), pid_(pid) {}

  Kind kind_;
  std::int64_t pid_;
};

}  // namespace leaselock
