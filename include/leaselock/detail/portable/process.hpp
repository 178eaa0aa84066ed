// leaselock/detail/portable/process.hpp — the default lease owner without POSIX calls.
#pragma once

#include <cstdint>
#include <string>

#include <leaselock/detail/portable/random.hpp>

namespace leaselock::detail::portable {

/// "process-<8 hex digits>": the standard library knows neither the process id nor the
/// host name, so a random number, drawn once per process, names this process.
inline std::string process_owner() {
  static const std::string owner = [] {
    std::uint32_t id = 0;
    fill_random(&id, sizeof id);
    static const char digits[] = "0123456789abcdef";
    std::string name = "process-";
    for (int shift = 28; shift >= 0; shift -= 4) name += digits[(id >> shift) & 0xfu];
    return name;
  }();
  return owner;
}

}  // namespace leaselock::detail::portable
