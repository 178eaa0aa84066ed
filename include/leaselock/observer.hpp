// leaselock/observer.hpp — a hook for audit logs and metrics.
//
// Give a LockManager an Observer (set_observer) and it reports every lease event:
// acquired (with how long it waited), released, renewed, expired (a lease whose TTL ran
// out, reported when the manager notices it: at the next operation on its key), timed
// out (a wait that ended without a lease), and lost (keep-alive found its lease gone).
// Events are delivered on the thread that caused them, after every internal lock is
// released, so an observer may call back into the manager. Keep observers fast.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include <leaselock/mode.hpp>
#include <leaselock/token.hpp>

namespace leaselock {

enum class LockEventKind { acquired, released, renewed, expired, timed_out, lost };

constexpr std::string_view to_string(LockEventKind kind) noexcept {
  switch (kind) {
    case LockEventKind::acquired: return "acquired";
    case LockEventKind::released: return "released";
    case LockEventKind::renewed: return "renewed";
    case LockEventKind::expired: return "expired";
    case LockEventKind::timed_out: return "timed_out";
    case LockEventKind::lost: return "lost";
  }
  return "unknown";
}

/// One event. The string views are valid only during the call.
struct LockEvent {
  LockEventKind kind = LockEventKind::acquired;
  std::string_view key;
  Mode mode = Mode::exclusive;
  /// The lease's token (the requester's would-be token for timed_out). A secret: do not log it.
  Token token;
  /// The lease's fence (0 for timed_out).
  std::uint64_t fence = 0;
  std::string_view owner;
  /// For acquired and timed_out: how long the request waited, on the manager's clock.
  std::chrono::nanoseconds waited{0};
};

/// Receives events; must be thread-safe, must not throw (events that throw are dropped).
class Observer {
 public:
  virtual ~Observer() = default;
  virtual void on_event(const LockEvent& event) = 0;
};

}  // namespace leaselock
