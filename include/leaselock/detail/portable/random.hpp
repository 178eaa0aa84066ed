// leaselock/detail/portable/random.hpp — bytes from the C++ library's random device.
//
// For platforms without getrandom(2): std::random_device, which the mainstream standard
// libraries draw from the operating system's CSPRNG (MSVC and MinGW-w64: rand_s;
// libc++: arc4random or /dev/urandom).
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>

namespace leaselock::detail::portable {

/// Fills `size` bytes at `out` from std::random_device. Throws what it throws
/// (std::exception) if no random source is available.
inline void fill_random(void* out, std::size_t size) {
  std::random_device device;
  auto* bytes = static_cast<unsigned char*>(out);
  while (size > 0) {
    const auto word = static_cast<std::uint_least32_t>(device());
    const std::size_t take = size < 4 ? size : 4;
    for (std::size_t i = 0; i < take; ++i)
      bytes[i] = static_cast<unsigned char>((word >> (8 * i)) & 0xffu);
    bytes += take;
    size -= take;
  }
}

}  // namespace leaselock::detail::portable
