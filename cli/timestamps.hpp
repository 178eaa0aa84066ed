// cli/timestamps.hpp — lease times shown as RFC 3339 UTC times.
//
// file_lock_manager runs on steady_clock (immune to wall-clock steps), postgres_lock_manager
// on system_clock; people and JSON want wall-clock times. TimeBridge reads both clocks
// once, at the moment of printing, and converts steady_clock instants through the
// difference.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <type_traits>

namespace leaselock::cli {

/// "2026-12-01T06:53:13.123Z".
inline std::string rfc3339_utc(std::chrono::system_clock::time_point when) {
  using namespace std::chrono;
  const auto ms_total = duration_cast<milliseconds>(when.time_since_epoch()).count();
  auto seconds = static_cast<time_t>(ms_total / 1000);
  auto ms = ms_total % 1000;
  if (ms < 0) {
    ms += 1000;
    --seconds;
  }
  struct tm utc {};
  ::gmtime_r(&seconds, &utc);
  char text[80];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(ms));
  return text;
}

/// Both clocks read once; shows instants of either clock as wall-clock times.
/// file_lock_manager's times are steady_clock instants, converted through the difference
/// of the two readings; postgres_lock_manager's are system_clock instants already.
class TimeBridge {
 public:
  TimeBridge()
      : steady_now_(std::chrono::steady_clock::now()),
        system_now_(std::chrono::system_clock::now()) {}

  /// Now, on the clock of `Clock::time_point`s.
  template <class Clock>
  typename Clock::time_point now() const noexcept {
    if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>) {
      return steady_now_;
    } else {
      static_assert(std::is_same_v<Clock, std::chrono::system_clock>);
      return system_now_;
    }
  }

  std::chrono::system_clock::time_point to_system(
      std::chrono::steady_clock::time_point when) const {
    return system_now_ +
           std::chrono::duration_cast<std::chrono::system_clock::duration>(when - steady_now_);
  }
  std::chrono::system_clock::time_point to_system(
      std::chrono::system_clock::time_point when) const noexcept {
    return when;
  }
  template <class TimePoint>
  std::string rfc3339(TimePoint when) const {
    return rfc3339_utc(to_system(when));
  }
  /// Whole milliseconds from now until `when`; 0 if it has passed.
  template <class TimePoint>
  long long ms_until(TimePoint when) const {
    using Clock = typename TimePoint::clock;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(when - now<Clock>()).count();
    return left > 0 ? static_cast<long long>(left) : 0;
  }

 private:
  std::chrono::steady_clock::time_point steady_now_;
  std::chrono::system_clock::time_point system_now_;
};

}  // namespace leaselock::cli
