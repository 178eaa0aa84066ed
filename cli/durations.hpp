// cli/durations.hpp — durations as the command line writes them, both ways.
//
// parse_duration reads `250ms`, `30s`, `5m`, `1h` or a bare number of seconds (as
// flock -w does), fractions allowed (`1.5s`, `0.25`). human_duration writes one for a
// table ("850ms", "12.3s", "4m05s", "2h03m").
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "errors.hpp"

namespace leaselock::cli {

/// The duration `text` names, or nullopt if it is not one (negative, no digits, an
/// unknown unit, or over 100 years).
inline std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text) {
  std::size_t i = 0;
  std::uint64_t whole = 0;
  std::size_t digits = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, ++digits) {
    if (whole > 1'000'000'000'000ull) return std::nullopt;
    whole = whole * 10 + static_cast<std::uint64_t>(text[i] - '0');
  }
  // Up to nine decimals: nanoseconds of seconds, the finest any unit needs.
  std::uint64_t fraction = 0;  // in units of 1e-9 of the unit
  if (i < text.size() && text[i] == '.') {
    ++i;
    std::uint64_t scale = 100'000'000;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, ++digits) {
      fraction += static_cast<std::uint64_t>(text[i] - '0') * scale;
      scale /= 10;
    }
  }
  if (digits == 0) return std::nullopt;
  const std::string_view unit = text.substr(i);
  std::uint64_t unit_ns = 0;
  if (unit.empty() || unit == "s") {
    unit_ns = 1'000'000'000ull;
  } else if (unit == "ms") {
    unit_ns = 1'000'000ull;
  } else if (unit == "m") {
    unit_ns = 60'000'000'000ull;
  } else if (unit == "h") {
    unit_ns = 3'600'000'000'000ull;
  } else {
    return std::nullopt;
  }
  constexpr std::uint64_t limit_ns = 100ull * 365 * 24 * 3'600'000'000'000ull;
  if (whole > limit_ns / unit_ns) return std::nullopt;
  // fraction/1e9 of a unit, computed without overflow (unit_ns <= 3.6e12).
  const std::uint64_t fraction_ns =
      (fraction / 1000) * (unit_ns / 1'000'000) + (fraction % 1000) * (unit_ns / 1'000'000) / 1000;
  const std::uint64_t total = whole * unit_ns + fraction_ns;
  if (total > limit_ns) return std::nullopt;
  return std::chrono::nanoseconds(static_cast<std::int64_t>(total));
}

/// parse_duration for the value of `option`; throws UsageError saying how to write one.
inline std::chrono::nanoseconds duration_argument(std::string_view option, std::string_view text) {
  if (auto duration = parse_duration(text)) return *duration;
  throw UsageError("bad duration '" + std::string(text) + "' for " + std::string(option) +
                   " (write it like 250ms, 30s, 5m, 1h, or a number of seconds)");
}

/// A TTL: a duration that is > 0. Throws UsageError otherwise.
inline std::chrono::nanoseconds ttl_argument(std::string_view text) {
  const std::chrono::nanoseconds ttl = duration_argument("--ttl", text);
  if (ttl.count() <= 0)
    throw UsageError("--ttl must be more than 0 (e.g. --ttl 30s), got '" + std::string(text) + "'");
  return ttl;
}

/// A short human form for tables: "850ms", "12.3s", "4m05s", "2h03m", "3d04h".
inline std::string human_duration(std::chrono::nanoseconds duration) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
  char text[32];
  if (ms < 0) return "-";
  if (ms < 1000) {
    std::snprintf(text, sizeof text, "%lldms", static_cast<long long>(ms));
  } else if (ms < 60'000) {
    std::snprintf(text, sizeof text, "%lld.%llds", static_cast<long long>(ms / 1000),
                  static_cast<long long>(ms % 1000 / 100));
  } else if (ms < 3'600'000) {
    std::snprintf(text, sizeof text, "%lldm%02llds", static_cast<long long>(ms / 60'000),
                  static_cast<long long>(ms % 60'000 / 1000));
  } else if (ms < 86'400'000) {
    std::snprintf(text, sizeof text, "%lldh%02lldm", static_cast<long long>(ms / 3'600'000),
                  static_cast<long long>(ms % 3'600'000 / 60'000));
  } else {
    std::snprintf(text, sizeof text, "%lldd%02lldh", static_cast<long long>(ms / 86'400'000),
                  static_cast<long long>(ms % 86'400'000 / 3'600'000));
  }
  return text;
}

}  // namespace leaselock::cli
