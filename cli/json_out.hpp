// cli/json_out.hpp — leases and lock status as JSON objects (Json).
//
// The field names are DESIGN.md's. A status object never carries a holder's token: a
// token is the capability to release, and anyone may ask for status. The MCP server
// reuses these with its own words: "path" for the key, "read"/"write" for modes.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include <leaselock/info.hpp>
#include <leaselock/mode.hpp>

#include "timestamps.hpp"

namespace leaselock::cli {

/// JSON objects keep their fields in the order written (DESIGN.md's order).
using Json = nlohmann::ordered_json;

/// How modes are written: "shared"/"exclusive" (command line) or "read"/"write" (MCP).
enum class ModeWords { shared_exclusive, read_write };

inline const char* mode_name(Mode mode, ModeWords words = ModeWords::shared_exclusive) {
  if (words == ModeWords::read_write) return mode == Mode::shared ? "read" : "write";
  return mode == Mode::shared ? "shared" : "exclusive";
}

/// Adds "expires_at" (RFC 3339 UTC) and "expires_in_ms" (0 once passed) to `object`.
template <class TimePoint>
void add_expiry(Json& object, TimePoint expires_at, const TimeBridge& now) {
  object["expires_at"] = now.rfc3339(expires_at);
  object["expires_in_ms"] = now.ms_until(expires_at);
}

/// {"owner","mode","fence","acquired_at","expires_at","expires_in_ms"}: no token.
template <class Clock>
Json holder_json(const HolderInfo<Clock>& holder, const TimeBridge& now,
                 ModeWords words = ModeWords::shared_exclusive) {
  Json object = Json::object();
  object["owner"] = holder.owner;
  object["mode"] = mode_name(holder.mode, words);
  object["fence"] = holder.fence;
  object["acquired_at"] = now.rfc3339(holder.acquired_at);
  add_expiry(object, holder.expires_at, now);
  return object;
}

/// The holders of `info` as a JSON array of holder_json objects.
template <class Clock>
Json holders_json(const LockInfo<Clock>& info, const TimeBridge& now,
                  ModeWords words = ModeWords::shared_exclusive) {
  Json holders = Json::array();
  for (const HolderInfo<Clock>& holder : info.holders)
    holders.push_back(holder_json(holder, now, words));
  return holders;
}

/// {"<key_field>","locked","mode","holders","waiters"} for `key`, held (`info`) or not
/// (nullptr: locked false, mode null, no holders, 0 waiters).
template <class Clock>
Json status_json(std::string_view key, const LockInfo<Clock>* info, const TimeBridge& now,
                 std::string_view key_field = "key",
                 ModeWords words = ModeWords::shared_exclusive) {
  Json object = Json::object();
  object[std::string(key_field)] = std::string(key);
  object["locked"] = info != nullptr;
  if (info) {
    object["mode"] = mode_name(info->mode, words);
    object["holders"] = holders_json(*info, now, words);
    object["waiters"] = info->waiters;
  } else {
    object["mode"] = nullptr;
    object["holders"] = Json::array();
    object["waiters"] = 0;
  }
  return object;
}

}  // namespace leaselock::cli
