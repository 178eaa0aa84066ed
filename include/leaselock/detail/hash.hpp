// leaselock/detail/hash.hpp — a seeded 64-bit hash for keys.
//
// The in-process table's hash, seeded from the OS once per process, so the bucket a key
// lands in differs from process to process.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

#include <leaselock/detail/platform.hpp>

namespace leaselock::detail {

/// fold_multiply from four 32 x 32-bit products, for compilers without a 128-bit type.
inline std::uint64_t fold_multiply_portable(std::uint64_t a, std::uint64_t b) noexcept {
  const std::uint64_t a_low = a & 0xffffffffu, a_high = a >> 32;
  const std::uint64_t b_low = b & 0xffffffffu, b_high = b >> 32;
  const std::uint64_t low_low = a_low * b_low, low_high = a_low * b_high;
  const std::uint64_t high_low = a_high * b_low, high_high = a_high * b_high;
  const std::uint64_t middle =
      (low_low >> 32) + (low_high & 0xffffffffu) + (high_low & 0xffffffffu);
  const std::uint64_t low = (middle << 32) | (low_low & 0xffffffffu);
  const std::uint64_t high = high_high + (low_high >> 32) + (high_low >> 32) + (middle >> 32);
  return low ^ high;
}

/// The 128-bit product of a and b, folded to 64 bits (high half xor low half).
inline std::uint64_t fold_multiply(std::uint64_t a, std::uint64_t b) noexcept {
#if defined(__SIZEOF_INT128__)  // GCC, Clang on 64-bit targets: one multiply instruction
  __extension__ using Wide = unsigned __int128;
  const Wide product = static_cast<Wide>(a) * b;
  return static_cast<std::uint64_t>(product) ^ static_cast<std::uint64_t>(product >> 64);
#else
  return fold_multiply_portable(a, b);
#endif
}

inline std::uint64_t load64(const char* p) noexcept {
  std::uint64_t word;
  std::memcpy(&word, p, 8);
  return word;
}

inline std::uint64_t process_hash_seed() {
  static const std::uint64_t seed = [] {
    std::uint64_t value = 0;
    platform::fill_random(&value, sizeof value);
    return value;
  }();
  return seed;
}

/// Hash of `bytes` under `seed`: 16 bytes per 64x64->128-bit multiply, so a short key
/// costs two or three multiplies in a row. A tail is read as the last 8 or 16 bytes of
/// the key (overlapping what came before) or, for keys under 8 bytes, assembled from
/// byte loads — never copied through memory, which would stall the load that follows.
/// Seeded per process; not a cryptographic function.
inline std::uint64_t hash_bytes(std::string_view bytes, std::uint64_t seed) noexcept {
  constexpr std::uint64_t k0 = 0xa0761d6478bd642full;
  constexpr std::uint64_t k1 = 0xe7037ed1a0b428dbull;
  constexpr std::uint64_t k2 = 0x8ebc6af09c88c6e3ull;
  const char* p = bytes.data();
  const std::size_t size = bytes.size();
  std::uint64_t h = seed ^ k0;
  std::size_t i = 0;
  for (; i + 16 <= size; i += 16) h = fold_multiply(load64(p + i) ^ k1, load64(p + i + 8) ^ h);
  const std::size_t left = size - i;
  if (left > 8) {
    h = fold_multiply(load64(p + i) ^ k1, load64(p + size - 8) ^ h);
  } else if (left > 0 && size >= 8) {
    h = fold_multiply(load64(p + size - 8) ^ k1, h ^ k2);
  } else if (left > 0) {
    std::uint64_t word = 0;
    for (std::size_t j = 0; j < size; ++j)
      word |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[j])) << (8 * j);
    h = fold_multiply(word ^ k1, h ^ k2);
  }
  return fold_multiply(h ^ size, k2);
}

/// Byte equality of two keys of the same size, 8 bytes at a time.
inline bool same_bytes(const char* a, const char* b, std::size_t size) noexcept {
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8)
    if (load64(a + i) != load64(b + i)) return false;
  if (i == size) return true;
  if (size >= 8) return load64(a + size - 8) == load64(b + size - 8);
  for (; i < size; ++i)
    if (a[i] != b[i]) return false;
  return true;
}

}  // namespace leaselock::detail
