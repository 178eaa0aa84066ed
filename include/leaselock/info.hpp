// leaselock/info.hpp — what status() and list() report about held keys.
//
// LockInfo is one key that is held now; HolderInfo is one of its current holders. Both
// are snapshots: by the time you read them, leases may have been released or expired.
// Tokens are secrets: a HolderInfo carries one so that an operator tool can release a
// stuck lease; do not log it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <leaselock/mode.hpp>
#include <leaselock/token.hpp>

namespace leaselock {

/// One current holder of a key.
template <class Clock = std::chrono::steady_clock>
struct HolderInfo {
  Token token;
  Mode mode = Mode::exclusive;
  std::string owner;
  std::uint64_t fence = 0;
  typename Clock::time_point acquired_at{};
  typename Clock::time_point expires_at{};
};

/// A key that is held now.
template <class Clock = std::chrono::steady_clock>
struct LockInfo {
  std::string key;
  /// exclusive if an exclusive lease holds it, else shared.
  Mode mode = Mode::shared;
  std::vector<HolderInfo<Clock>> holders;
  /// Requests queued for the key.
  std::size_t waiters = 0;
};

/// One (key, mode) pair of a multi-key acquisition.
struct LockRequest {
  std::string_view key;
  Mode mode = Mode::exclusive;
};

}  // namespace leaselock
