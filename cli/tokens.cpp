// cli/tokens.cpp — `leaselock release KEY TOKEN` and `leaselock renew --ttl DUR KEY TOKEN`:
// the token-across-calls pattern from the shell.
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

#include "backend.hpp"
#include "commands.hpp"
#include "durations.hpp"
#include "json_out.hpp"
#include "options.hpp"
#include "output.hpp"
#include "timestamps.hpp"

namespace leaselock::cli {
namespace {

constexpr const char* kReleaseHelp =
    "usage: leaselock release [COMMON] KEY TOKEN\n"
    "\n"
    "Gives back the lease TOKEN holds on KEY (TOKEN: what 'leaselock acquire' printed).\n"
    "Exits 0 whether or not TOKEN still held KEY, and says which. --json prints\n"
    "{\"key\",\"released\"}.\n";

constexpr const char* kRenewHelp =
    "usage: leaselock renew [COMMON] --ttl DUR KEY TOKEN\n"
    "\n"
    "Extends the lease TOKEN holds on KEY to now + DUR. Exits 76 if the lease is gone\n"
    "(expired, or released). --json prints "
    "{\"key\",\"renewed\",\"expires_at\",\"expires_in_ms\"}.\n"
    "\n"
    "options:\n"
    "  --ttl DUR       the new TTL from now: 250ms, 30s, 5m, 1h, or seconds (required)\n";

// KEY and TOKEN, the positional arguments of release and renew.
struct KeyAndToken {
  std::string key;
  Token token;
};

KeyAndToken key_and_token(const ArgParser& parser, const ParsedArgs& args) {
  if (args.dashes || args.positional.size() != 2)
    throw parser.usage(parser.command() + " takes KEY and TOKEN");
  return KeyAndToken{key_argument(args.positional[0]), token_argument(args.positional[1])};
}

}  // namespace

int release_command(const Args& arguments) {
  CommonOptions common;
  ArgParser parser("release", kReleaseHelp, common);
  const std::optional<ParsedArgs> args = parser.parse(arguments);
  if (!args) return exit_code::ok;
  const KeyAndToken request = key_and_token(parser, *args);
  const bool released = open_manager(common)->release(request.key, request.token);
  if (common.json) {
    print_json(Json{{"key", request.key}, {"released", released}});
  } else {
    print_line(released ? "released" : "not held by that token (already released or expired)");
  }
  return exit_code::ok;
}

int renew_command(const Args& arguments) {
  CommonOptions common;
  std::optional<std::chrono::nanoseconds> ttl;
  ArgParser parser("renew", kRenewHelp, common);
  parser.option({"--ttl"}, [&](const std::string& value) { ttl = ttl_argument(value); });
  const std::optional<ParsedArgs> args = parser.parse(arguments);
  if (!args) return exit_code::ok;
  const KeyAndToken request = key_and_token(parser, *args);
  if (!ttl) throw parser.usage("renew needs --ttl DUR (e.g. --ttl 30s)");
  const auto manager = open_manager(common);
  const bool renewed = manager->renew(request.key, request.token,
                                      std::chrono::duration_cast<Manager::duration>(*ttl));
  // The new expiry, as stored: this token's holder in the key's status.
  std::optional<std::chrono::steady_clock::time_point> expires_at;
  if (renewed) {
    if (const auto info = manager->status(request.key))
      for (const HolderInfo& holder : info->holders)
        if (holder.token == request.token) expires_at = holder.expires_at;
  }
  const TimeBridge now;
  if (common.json) {
    Json object{{"key", request.key}, {"renewed", expires_at.has_value()}};
    if (expires_at) {
      add_expiry(object, *expires_at, now);
    } else {
      object["expires_at"] = nullptr;
      object["expires_in_ms"] = 0;
    }
    print_json(object);
  } else if (expires_at) {
    print_line("renewed until " + now.rfc3339(*expires_at));
  } else {
    std::fputs(
        "leaselock renew: not renewed: that token no longer holds the key (expired or "
        "released); take it again with 'leaselock acquire'\n",
        stderr);
  }
  return expires_at ? exit_code::ok : exit_code::lost;
}

}  // namespace leaselock::cli
