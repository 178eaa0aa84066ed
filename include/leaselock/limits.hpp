// leaselock/limits.hpp — the documented limits on keys and owners, and their checks.
//
// A key is 1 to max_key_size bytes, any bytes but NUL (a full path fits). An owner is
// at most max_owner_size bytes, no NUL. TTLs are > 0 (at least 1 ns). Anything else is
// refused with std::invalid_argument naming the reason, before any state is touched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

#ifndef LEASELOCK_MAX_KEY_SIZE
#define LEASELOCK_MAX_KEY_SIZE 4096
#endif
#ifndef LEASELOCK_MAX_OWNER_SIZE
#define LEASELOCK_MAX_OWNER_SIZE 256
#endif

namespace leaselock {

/// The longest key, in bytes (override with -DLEASELOCK_MAX_KEY_SIZE=N).
inline constexpr std::size_t max_key_size = LEASELOCK_MAX_KEY_SIZE;
/// The longest owner string, in bytes (override with -DLEASELOCK_MAX_OWNER_SIZE=N).
inline constexpr std::size_t max_owner_size = LEASELOCK_MAX_OWNER_SIZE;

static_assert(max_key_size >= 1, "LEASELOCK_MAX_KEY_SIZE must be at least 1");

namespace detail {

[[noreturn]] inline void throw_invalid(const std::string& what) {
  throw std::invalid_argument("leaselock: " + what);
}

/// True if any byte of `bytes` is NUL; 8 bytes per step (a word has a zero byte exactly
/// when (w - 0x01..01) & ~w & 0x80..80 is not zero).
inline bool contains_nul(std::string_view bytes) noexcept {
  constexpr std::uint64_t ones = 0x0101010101010101ull;
  constexpr std::uint64_t highs = 0x8080808080808080ull;
  const auto has_zero = [](std::uint64_t w) { return ((w - ones) & ~w & highs) != 0; };
  const char* p = bytes.data();
  const std::size_t size = bytes.size();
  if (size < 8) {
    for (std::size_t i = 0; i < size; ++i)
      if (p[i] == '\0') return true;
    return false;
  }
  std::uint64_t word;
  for (std::size_t i = 0; i + 8 <= size; i += 8) {
    std::memcpy(&word, p + i, 8);
    if (has_zero(word)) return true;
  }
  std::memcpy(&word, p + size - 8, 8);  // the tail, overlapping what came before
  return has_zero(word);
}

inline void validate_key(std::string_view key) {
  if (key.empty()) throw_invalid("key is empty");
  if (key.size() > max_key_size)
    throw_invalid("key is " + std::to_string(key.size()) + " bytes, over the limit of " +
                  std::to_string(max_key_size));
  if (contains_nul(key)) throw_invalid("key contains a NUL byte");
}

inline void validate_owner(std::string_view owner) {
  if (owner.size() > max_owner_size)
    throw_invalid("owner is " + std::to_string(owner.size()) + " bytes, over the limit of " +
                  std::to_string(max_owner_size));
  if (owner.find('\0') != std::string_view::npos) throw_invalid("owner contains a NUL byte");
}

/// `ttl_nanos`: the TTL as detail::AnyDuration gives it (saturated nanoseconds).
inline void validate_ttl(std::int64_t ttl_nanos) {
  if (ttl_nanos <= 0) throw_invalid("ttl must be > 0");
}

}  // namespace detail
}  // namespace leaselock
