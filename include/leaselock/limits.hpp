// leaselock/limits.hpp — the documented limits on keys and owners, and their checks.
//
// A key is 1 to max_key_size bytes, any bytes but NUL (a full path fits). An owner is
// at most max_owner_size bytes, no NUL. TTLs are > 0. Anything else is refused with
// std::invalid_argument naming the reason, before any state is touched.
#pragma once

#include <cstddef>
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

inline void validate_key(std::string_view key) {
  if (key.empty()) throw_invalid("key is empty");
  if (key.size() > max_key_size)
    throw_invalid("key is " + std::to_string(key.size()) + " bytes, over the limit of " +
                  std::to_string(max_key_size));
  if (key.find('\0') != std::string_view::npos) throw_invalid("key contains a NUL byte");
}

inline void validate_owner(std::string_view owner) {
  if (owner.size() > max_owner_size)
    throw_invalid("owner is " + std::to_string(owner.size()) + " bytes, over the limit of " +
                  std::to_string(max_owner_size));
  if (owner.find('\0') != std::string_view::npos) throw_invalid("owner contains a NUL byte");
}

template <class Duration>
void validate_ttl(Duration ttl) {
  if (ttl <= Duration::zero()) throw_invalid("ttl must be > 0");
}

}  // namespace detail
}  // namespace leaselock
