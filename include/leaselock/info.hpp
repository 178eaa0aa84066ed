// leaselock/info.hpp — what status() and list() report about held keys.
//
// LockInfo is one key that is held now; HolderInfo is one of its current holders. Both
// are snapshots: by the time you read them, leases may have been released or expired.
// Tokens are secrets. A token is the right to release and renew its lease, and status()
// and list() give every holder's token to whoever calls them — so that an operator's C++
// tool can release a stuck lease. Only code trusted with every lease of the manager may
// see a HolderInfo's token: never log it, print it or send it on. The library's own front
// ends (the `leaselock` command, the MCP server) never show another holder's token; a
// front end of yours must leave HolderInfo::token out of what it shows just the same.
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
  /// The holder's token: a secret (see above), for release(key, token) by trusted code.
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
