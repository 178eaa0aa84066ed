// leaselock/detail/time.hpp — time as the lock semantics see it.
//
// Records hold instants as signed nanoseconds since the manager's clock epoch (Nanos),
// so the same record format serves every clock and every storage. Arithmetic saturates:
// a huge TTL or wait means "practically forever", never an overflow.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <string_view>
#include <type_traits>
#include <utility>

#include <leaselock/detail/parker.hpp>

namespace leaselock::detail {

using Nanos = std::int64_t;
inline constexpr Nanos kForever = std::numeric_limits<Nanos>::max();

constexpr Nanos add_saturated(Nanos a, Nanos b) noexcept {
  if (b > 0 && a > kForever - b) return kForever;
  if (b < 0 && a < std::numeric_limits<Nanos>::min() - b) return std::numeric_limits<Nanos>::min();
  return a + b;
}

constexpr Nanos subtract_saturated(Nanos a, Nanos b) noexcept {
  if (b == std::numeric_limits<Nanos>::min()) return a >= 0 ? kForever : a - b;
  return add_saturated(a, -b);
}

/// A duration in nanoseconds, saturating instead of overflowing (NaN counts as zero).
template <class Rep, class Period>
constexpr Nanos to_nanos(std::chrono::duration<Rep, Period> d) noexcept {
  using Wide = std::chrono::duration<long double, std::nano>;
  const long double wide = std::chrono::duration_cast<Wide>(d).count();
  if (wide != wide) return 0;
  if (wide >= static_cast<long double>(kForever)) return kForever;
  if (wide <= static_cast<long double>(std::numeric_limits<Nanos>::min()))
    return std::numeric_limits<Nanos>::min();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

template <class Clock>
Nanos to_nanos(typename Clock::time_point t) noexcept {
  return to_nanos(t.time_since_epoch());
}

/// What every TTL, wait and interval parameter of the library takes: a std::chrono
/// duration of any unit and representation, converted once, here, to nanoseconds that
/// saturate instead of overflowing. So `std::chrono::hours::max()` is "practically
/// forever" (about 292 years), never a negative or tiny value.
class AnyDuration {
 public:
  constexpr AnyDuration() noexcept = default;
  template <class Rep, class Period>
  constexpr AnyDuration(const std::chrono::duration<Rep, Period>& d) noexcept  // NOLINT
      : nanos_(to_nanos(d)) {}
  /// Nanoseconds, in [min, kForever].
  constexpr Nanos count() const noexcept { return nanos_; }

 private:
  Nanos nanos_ = 0;
};

/// How far `deadline` is from its clock's now, in saturated nanoseconds (negative if
/// past). Works for any clock and any time_point duration, time_point::max() included.
template <class Clock, class Duration>
Nanos nanos_until(const std::chrono::time_point<Clock, Duration>& deadline) {
  return subtract_saturated(to_nanos(deadline.time_since_epoch()),
                            to_nanos(Clock::now().time_since_epoch()));
}

template <class Clock>
typename Clock::time_point from_nanos(Nanos n) noexcept {
  using Duration = typename Clock::duration;
  if (n == kForever) return Clock::time_point::max();
  return
      typename Clock::time_point(std::chrono::duration_cast<Duration>(std::chrono::nanoseconds(n)));
}

template <class Clock>
Nanos now_nanos(const Clock& clock) {
  return to_nanos(clock.now().time_since_epoch());
}

/// The name a clock is known by in stored records: "steady_clock", "system_clock", or
/// a clock's own `static constexpr std::string_view clock_name` (ManualClock has one).
template <class Clock, class = void>
struct has_clock_name : std::false_type {};
template <class Clock>
struct has_clock_name<Clock, std::void_t<decltype(Clock::clock_name)>> : std::true_type {};

template <class Clock>
constexpr std::string_view clock_name() noexcept {
  if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>) {
    return "steady_clock";
  } else if constexpr (std::is_same_v<Clock, std::chrono::system_clock>) {
    return "system_clock";
  } else if constexpr (has_clock_name<Clock>::value) {
    return Clock::clock_name;
  } else {
    return "unnamed clock";
  }
}

/// Clocks may offer `clock.park_until(parker, time_point)` to put a waiter to sleep in
/// their own time (ManualClock does); every other clock is waited on in real time.
template <class Clock, class = void>
struct has_park_hook : std::false_type {};
template <class Clock>
struct has_park_hook<Clock, std::void_t<decltype(std::declval<const Clock&>().park_until(
                                std::declval<Parker&>(), std::declval<Nanos>()))>>
    : std::true_type {};

/// Parks the calling thread until its permit is set or `wake_at` has come on `clock`.
/// May return early (spuriously); callers re-check their condition.
template <class Clock>
void park_until(const Clock& clock, Parker& parker, Nanos wake_at) {
  if constexpr (has_park_hook<Clock>::value) {
    clock.park_until(parker, wake_at);
  } else if (wake_at == kForever) {
    parker.park();
  } else {
    const Nanos remaining = wake_at - now_nanos(clock);
    if (remaining > 0) parker.park_for(std::chrono::nanoseconds(remaining));
  }
}

}  // namespace leaselock::detail
