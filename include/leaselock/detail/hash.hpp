// leaselock/detail/hash.hpp — a seeded 64-bit hash for keys.
//
// Keys may come from untrusted agents, so the in-process table seeds its hash from the
// OS once per process: nobody can precompute keys that all land in one bucket.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

#include <leaselock/detail/posix/random.hpp>

namespace leaselock::detail {

inline std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ull;
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ull;
  x ^= x >> 32;
  return x;
}

inline std::uint64_t process_hash_seed() {
  static const std::uint64_t seed = [] {
    std::uint64_t value = 0;
    posix::fill_random(&value, sizeof value);
    return value;
  }();
  return seed;
}

/// Hash of `bytes` under `seed`: 8 bytes at a time, each folded in with a
/// multiply-rotate step, the tail zero-padded, the length mixed in at the end.
inline std::uint64_t hash_bytes(std::string_view bytes, std::uint64_t seed) noexcept {
  constexpr std::uint64_t k1 = 0x9e3779b97f4a7c15ull;
  constexpr std::uint64_t k2 = 0xbf58476d1ce4e5b9ull;
  std::uint64_t h = seed ^ k1;
  const char* p = bytes.data();
  std::size_t left = bytes.size();
  while (left >= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    h = (h ^ (word * k2)) * k1;
    h = (h << 29) | (h >> 35);
    p += 8;
    left -= 8;
  }
  if (left) {
    std::uint64_t word = 0;
    std::memcpy(&word, p, left);
    h = (h ^ (word * k2)) * k1;
  }
  return mix64(h ^ bytes.size());
}

}  // namespace leaselock::detail
