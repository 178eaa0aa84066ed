// leaselock/detail/portable/process.hpp — who this process is, without POSIX calls.
//
// The C++ standard library knows neither process ids nor host names. A random number,
// drawn once per process, stands for this process's id; whether another process exists
// cannot be told, so every positive id is taken as existing (InProcessBackend, the only
// backend where this layer is used, keeps a lease's process binding and acts on none).
#pragma once

#include <cstdint>
#include <string>

#include <leaselock/detail/portable/random.hpp>

namespace leaselock::detail::portable {

/// A random 30-bit number drawn once per process (0 if no random source works: then the
/// token generator, which needs one too, throws).
inline std::uint32_t process_random_id() noexcept {
  static const std::uint32_t id = [] {
    std::uint32_t bits = 0;
    try {
      fill_random(&bits, sizeof bits);
    } catch (...) {
      bits = 0;
    }
    return bits & 0x3fffffffu;
  }();
  return id;
}

/// A positive number that names this process for as long as it runs (not the OS's pid).
inline std::int64_t current_pid() noexcept { return std::int64_t{process_random_id()} + 1; }

/// Always true for pid > 0: without the OS, nothing shows that a process has ended.
inline bool process_exists(std::int64_t pid) noexcept { return pid > 0; }

/// "process-<8 hex digits>": this process's random number, the same every call.
inline std::string process_owner() {
  static const char digits[] = "0123456789abcdef";
  const std::uint32_t id = process_random_id();
  std::string name = "process-";
  for (int shift = 28; shift >= 0; shift -= 4) name += digits[(id >> shift) & 0xfu];
  return name;
}

}  // namespace leaselock::detail::portable
