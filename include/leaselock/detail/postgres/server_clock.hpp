// leaselock/detail/postgres/server_clock.hpp — what a PostgresBackend knows of the
// database server's clock, learned from the round trips its statements make anyway.
//
// Every statement returns the server's clock_timestamp(). From a round trip that went
// out at steady time `sent` and came back at `back`, the server's clock is estimated as
// its reading at the midpoint of the two: transitions run at that estimate (now()), and
// the statement that stores a decision checks it against the server's own clock, so the
// estimate's error costs a retry, never a wrong decision. Instants a holder sees are moved
// to the LockManager's clock by an upper bound of the offset instead (clock_offset()): the
// server read its clock after the statement went out, so server time minus the clock's
// reading at sending bounds the offset from above, and an expiry moved by it is never
// later than the server's.
#pragma once

#include <atomic>
#include <chrono>
#include <optional>

#include <leaselock/detail/time.hpp>

namespace leaselock::detail::postgres {

/// The steady clock's reading, in nanoseconds (what round trips are timed by).
inline Nanos steady_nanos() noexcept { return now_nanos(std::chrono::steady_clock{}); }

/// The estimate of the server's clock, and the bound of its offset from the manager's
/// clock. Thread-safe: each figure is one relaxed atomic, a reader sees the latest one
/// stored.
class ServerClock {
 public:
  /// After a round trip that went out at steady `sent` and clock `sent_clock` (the
  /// manager's clock; nullopt if none is attached) and came back at steady `back`, with
  /// the server's clock at `server_now`.
  void observe(Nanos server_now, Nanos sent, Nanos back, std::optional<Nanos> sent_clock) {
    offset_mid_.store(server_now - sent / 2 - back / 2, std::memory_order_relaxed);
    // The server read its clock after the statement went out, truncated to 1 us: every
    // such reading bounds the offset from above. The least bound of the last second
    // is used, so that conversions of nearby instants agree (and drift cannot age it).
    if (!sent_clock) return;
    const Nanos bound = server_now + 1000 - *sent_clock;
    const Nanos since = offset_clock_since_.load(std::memory_order_relaxed);
    if (back - since > 1000000000 || bound < offset_clock_.load(std::memory_order_relaxed)) {
      offset_clock_.store(bound, std::memory_order_relaxed);
      if (back - since > 1000000000) offset_clock_since_.store(back, std::memory_order_relaxed);
    }
  }

  /// The server's clock now, as estimated from the latest round trip.
  Nanos now() const noexcept {
    return steady_nanos() + offset_mid_.load(std::memory_order_relaxed);
  }

  /// An upper bound of server time minus the manager's clock (the least of the last
  /// second): add it to go from the manager's clock to the server's, subtract it to go
  /// back.
  Nanos clock_offset() const noexcept { return offset_clock_.load(std::memory_order_relaxed); }

 private:
  std::atomic<Nanos> offset_mid_{0};          // server minus steady, at the midpoint
  std::atomic<Nanos> offset_clock_{0};        // server minus the manager's clock, bound
  std::atomic<Nanos> offset_clock_since_{0};  // steady time its second began
};

}  // namespace leaselock::detail::postgres
