// cli/tokens.cpp — `leaselock acquire --ttl DUR KEY`, `leaselock release KEY TOKEN` and
// `leaselock renew --ttl DUR KEY TOKEN`: the token-across-calls pattern from the shell.
//
// acquire's lease outlives the process: it is detached bound to no process (only its
// token or its TTL end it), or with --bind-pid PID to that process, which the file
// backend then frees at once when PID has certainly ended. PostgreSQL leases are tied to
// no process (their holders live on other machines): --bind-pid is refused there.
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>

#include <leaselock/detail/posix/process.hpp>
#include <leaselock/holder_process.hpp>

#include "backend.hpp"
#include "commands.hpp"
#include "durations.hpp"
#include "json_out.hpp"
#include "options.hpp"
#include "output.hpp"
#include "request.hpp"
#include "timestamps.hpp"

namespace leaselock::cli {
namespace {

constexpr const char* kAcquireHelp =
    "usage: leaselock acquire [COMMON] [-s|-x] [-n|-w DUR] --ttl DUR [--bind-pid PID] KEY\n"
    "\n"
    "Takes a lease on KEY that outlives this command: it lasts until 'leaselock release\n"
    "KEY TOKEN', or its TTL (renew it with 'leaselock renew'), or with --bind-pid until\n"
    "process PID has ended. Prints the token alone on one line, so that\n"
    "token=$(leaselock acquire --ttl 5m KEY) works. Exits 75 if KEY stayed busy.\n"
    "--json prints {\"key\",\"acquired\":true,\"token\",\"fence\",\"mode\",\"owner\",\n"
    "\"expires_at\",\"expires_in_ms\"}, or {\"key\",\"acquired\":false,\"holders\",\"waiters\"}.\n"
    "\n"
    "options:\n"
    "  --ttl DUR       lease TTL: 250ms, 30s, 5m, 1h, or seconds (required)\n"
    "  --bind-pid PID  the lease also ends as soon as process PID has ended (e.g. $$);\n"
    "                  lock directories only (a PostgreSQL lease has no process)\n";

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

// "HOST" of the library's default owner "PID@HOST".
std::string host_name() {
  const std::string owner = detail::posix::process_owner();
  return owner.substr(owner.find('@') + 1);
}

HolderProcess bind_pid_argument(const std::string& text) {
  std::int64_t pid = 0;
  const bool digits = !text.empty() && text.size() <= 10 &&
                      text.find_first_not_of("0123456789") == std::string::npos;
  if (digits) pid = std::stoll(text);
  if (pid <= 0)
    throw UsageError("--bind-pid needs a process id > 0 (e.g. --bind-pid $$), got '" + text + "'");
  try {
    return HolderProcess::of(pid);
  } catch (const std::invalid_argument&) {
    throw UsageError("--bind-pid " + text +
                     ": no such process (give the pid of a running process, e.g. $$)");
  }
}

}  // namespace

int acquire_command(const Args& arguments) {
  CommonOptions common;
  RequestOptions request;
  std::optional<std::string> bind_pid;
  ArgParser parser("acquire", std::string(kAcquireHelp) + kRequestOptionsHelp, common);
  add_request_options(parser, request);
  parser.option({"--bind-pid"}, [&](const std::string& value) { bind_pid = value; });
  const std::optional<ParsedArgs> args = parser.parse(arguments);
  if (!args) return exit_code::ok;
  if (args->dashes || args->positional.size() != 1)
    throw parser.usage("acquire takes exactly one KEY");
  const std::string& key = key_argument(args->positional[0]);
  if (!request.ttl) throw parser.usage("acquire needs --ttl DUR (e.g. --ttl 5m)");
  if (bind_pid && !common.postgres.empty())
    throw UsageError(
        "--bind-pid is for a lock directory (--dir): a lease in PostgreSQL is not tied to a "
        "process of one machine and lasts until release or its TTL; leave --bind-pid out");
  const HolderProcess holder = bind_pid ? bind_pid_argument(*bind_pid) : HolderProcess::none();
  // The owner names who the lease is for: the bound process, else whoever ran us.
  const auto default_owner =
      std::to_string(bind_pid ? holder.pid() : ::getppid()) + "@" + host_name();

  return with_manager(common, default_owner, [&](auto& manager) {
    auto lease = take_lease(manager, key, request);
    if (!lease) return report_busy("acquire", manager, key, common, request);
    const std::uint64_t fence = lease.fence();
    const Mode mode = lease.mode();
    const auto expires_at = lease.expires_at();
    const Token token = lease.detach(holder);
    if (common.json) {
      Json object{{"key", key},     {"acquired", true},        {"token", token.to_string()},
                  {"fence", fence}, {"mode", mode_name(mode)}, {"owner", manager.owner()}};
      add_expiry(object, expires_at, TimeBridge());
      print_json(object);
    } else {
      print_line(token.to_string());
    }
    return exit_code::ok;
  });
}

int release_command(const Args& arguments) {
  CommonOptions common;
  ArgParser parser("release", kReleaseHelp, common);
  const std::optional<ParsedArgs> args = parser.parse(arguments);
  if (!args) return exit_code::ok;
  const KeyAndToken request = key_and_token(parser, *args);
  const bool released = with_manager(
      common, {}, [&](auto& manager) { return manager.release(request.key, request.token); });
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
  return with_manager(common, {}, [&](auto& manager) {
    // The new expiry, as stored: this token's holder in the key's status.
    std::optional<typename std::decay_t<decltype(manager)>::time_point> expires_at;
    if (manager.renew(request.key, request.token, *ttl)) {
      if (const auto info = manager.status(request.key))
        for (const auto& holder : info->holders)
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
  });
}

}  // namespace leaselock::cli
