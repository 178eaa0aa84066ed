// cli/request.hpp — taking a lease from the command line: the options `run` and
// `acquire` share (-s/-x, -n/-w DUR, --ttl DUR, -E CODE) and what a busy key prints.
#pragma once

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

#include <leaselock/info.hpp>
#include <leaselock/mode.hpp>

#include "durations.hpp"
#include "errors.hpp"
#include "json_out.hpp"
#include "options.hpp"
#include "output.hpp"
#include "timestamps.hpp"

namespace leaselock::cli {

/// How to ask for the lease.
struct RequestOptions {
  Mode mode = Mode::exclusive;
  /// How long to wait (-w DUR; -n is zero); nullopt: as long as it takes.
  std::optional<std::chrono::nanoseconds> wait;
  std::optional<std::chrono::nanoseconds> ttl;
  int busy_code = exit_code::busy;
};

/// The help lines for the options add_request_options() declares (all but --ttl), to
/// follow a subcommand's "options:" lines.
inline constexpr const char* kRequestOptionsHelp =
    "  -x, --exclusive exclusive lease (the default)\n"
    "  -s, --shared    shared lease: any number of shared holders, no exclusive one\n"
    "  -n, --nonblock  one try: exit 75 at once if KEY is busy\n"
    "  -w, --wait DUR  wait up to DUR for KEY, then exit 75 (default: as long as it takes)\n"
    "  -E, --conflict-exit-code CODE\n"
    "                  exit CODE (0-255) instead of 75 when KEY is busy or the wait ran out\n";

/// Declares -s/-x, -n/-w, --ttl and -E on `parser`, filling `options`.
inline void add_request_options(ArgParser& parser, RequestOptions& options) {
  parser.flag({"-x", "-e", "--exclusive"}, [&] { options.mode = Mode::exclusive; });
  parser.flag({"-s", "--shared"}, [&] { options.mode = Mode::shared; });
  parser.flag({"-n", "--nonblock"}, [&] { options.wait = std::chrono::nanoseconds::zero(); });
  parser.option({"-w", "--wait", "--timeout"},
                [&](const std::string& value) { options.wait = duration_argument("-w", value); });
  parser.option({"--ttl"}, [&](const std::string& value) { options.ttl = ttl_argument(value); });
  parser.option({"-E", "--conflict-exit-code"}, [&](const std::string& value) {
    int code = -1;
    if (!value.empty() && value.size() <= 3 &&
        value.find_first_not_of("0123456789") == std::string::npos)
      code = std::stoi(value);
    if (code < 0 || code > 255)
      throw UsageError("-E needs an exit code from 0 to 255, got '" + value + "'");
    options.busy_code = code;
  });
}

/// Takes the lease `options` ask for; an empty Lease if KEY was still busy at the end
/// of the wait.
template <class Manager>
typename Manager::Lease take_lease(Manager& manager, const std::string& key,
                                   const RequestOptions& options) {
  if (!options.wait) return manager.acquire(key, options.mode, *options.ttl);
  return manager.try_acquire(key, options.mode, *options.ttl, *options.wait);
}

/// What stands in the way on a busy KEY, as one line for stderr: "held exclusive by
/// 123@host (fence 7, expires in 12.3s); 2 waiting".
template <class Clock>
std::string busy_description(const std::optional<LockInfo<Clock>>& info, const TimeBridge& now) {
  if (!info || info->holders.empty()) return "busy";
  const HolderInfo<Clock>& first = info->holders.front();
  std::string text = std::string("held ") + mode_name(info->mode) + " by " + first.owner;
  if (info->holders.size() > 1)
    text += " and " + std::to_string(info->holders.size() - 1) + " more";
  text += " (fence " + std::to_string(first.fence) + ", expires in " +
          human_duration(first.expires_at - now.now<Clock>()) + ")";
  if (info->waiters) text += "; " + std::to_string(info->waiters) + " waiting";
  return text;
}

/// Reports that KEY stayed busy (for `command`) and returns the busy exit code: with
/// --json, {"key","acquired":false,"holders":[...],"waiters"} on stdout; otherwise one
/// line on stderr saying who holds it. Never a token.
template <class Manager>
int report_busy(const char* command, Manager& manager, const std::string& key,
                const CommonOptions& common, const RequestOptions& options) {
  const auto info = manager.status(key);
  const TimeBridge now;
  if (common.json) {
    print_json(Json{{"key", key},
                    {"acquired", false},
                    {"holders", info ? holders_json(*info, now) : Json::array()},
                    {"waiters", info ? info->waiters : 0}});
  } else {
    std::fprintf(stderr, "leaselock %s: '%s' is %s\n", command, key.c_str(),
                 busy_description(info, now).c_str());
  }
  return options.busy_code;
}

}  // namespace leaselock::cli
