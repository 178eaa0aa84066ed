// cli/timestamps.hpp — steady_clock instants shown as RFC 3339 UTC times.
//
// file_lock_manager runs on steady_clock (immune to wall-clock steps); people and JSON
// want wall-clock times. TimeBridge reads both clocks once, at the moment of printing,
// and converts through the difference.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdio>
#include <string>

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

/// Both clocks read once; converts steady_clock instants to wall-clock ones.
class TimeBridge {
 public:
  TimeBridge()
      : steady_now_(std::chrono::steady_clock::now()),
        system_now_(std::chrono::system_clock::now()) {}

  std::chrono::steady_clock::time_point steady_now() const noexcept { return steady_now_; }

  std::chrono::system_clock::time_point to_system(
      std::chrono::steady_clock::time_point when) const {
    return system_now_ +
           std::chrono::duration_cast<std::chrono::system_clock::duration>(when - steady_now_);
  }
  std::string rfc3339(std::chrono::steady_clock::time_point when) const {
    return rfc3339_utc(to_system(when));
  }
  /// Whole milliseconds from now until `when`; 0 if it has passed.
  long long ms_until(std::chrono::steady_clock::time_point when) const {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(when - steady_now_).count();
    return left > 0 ? static_cast<long long>(left) : 0;
  }

 private:
  std::chrono::steady_clock::time_point steady_now_;
  std::chrono::system_clock::time_point system_now_;
};

}  // namespace leaselock::cli
