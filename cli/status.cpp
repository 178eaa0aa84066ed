// cli/status.cpp — `leaselock status KEY` and `leaselock list [PREFIX]`: who holds what.
//
// A table for people (key, mode, owner, fence, held for, expires in, waiters; one row per
// holder) or, with --json, DESIGN.md's status objects. Neither ever prints a token.
#include <algorithm>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "backend.hpp"
#include "commands.hpp"
#include "durations.hpp"
#include "json_out.hpp"
#include "options.hpp"
#include "output.hpp"
#include "timestamps.hpp"

namespace leaselock::cli {
namespace {

constexpr const char* kStatusHelp =
    "usage: leaselock status [COMMON] KEY\n"
    "\n"
    "Shows who holds KEY: mode, owner, fence, how long held, when it expires, and how many\n"
    "requests wait. Tokens are never shown. Exits 0 whether or not KEY is held. --json\n"
    "prints {\"key\",\"locked\",\"mode\",\"holders\":[...],\"waiters\"}.\n";

constexpr const char* kListHelp =
    "usage: leaselock list [COMMON] [PREFIX]\n"
    "\n"
    "Shows every key held now (only those starting with PREFIX, if given), sorted by key,\n"
    "one row per holder. Tokens are never shown. --json prints {\"locks\":[...]}, one\n"
    "object per key as 'leaselock status --json' prints it.\n";

// Rows of text columns, padded to the widest cell of each column.
template <class Clock>
void print_table(const std::vector<const LockInfo<Clock>*>& infos, const TimeBridge& now) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"KEY", "MODE", "OWNER", "FENCE", "HELD FOR", "EXPIRES IN", "WAITERS"});
  for (const LockInfo<Clock>* info : infos) {
    for (const HolderInfo<Clock>& holder : info->holders) {
      rows.push_back({info->key, mode_name(holder.mode), holder.owner, std::to_string(holder.fence),
                      human_duration(now.now<Clock>() - holder.acquired_at),
                      human_duration(holder.expires_at - now.now<Clock>()),
                      std::to_string(info->waiters)});
    }
  }
  std::vector<std::size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows)
    for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line.append(widths[c] - row[c].size() + 2, ' ');
    }
    print_line(line);
  }
}

}  // namespace

int status_command(const Args& arguments) {
  CommonOptions common;
  ArgParser parser("status", kStatusHelp, common);
  const std::optional<ParsedArgs> args = parser.parse(arguments);
  if (!args) return exit_code::ok;
  if (args->dashes || args->positional.size() != 1)
    throw parser.usage("status takes exactly one KEY");
  const std::string& key = key_argument(args->positional[0]);
  return with_manager(common, {}, [&](auto& manager) {
    const auto info = manager.status(key);
    const TimeBridge now;
    if (common.json) {
      print_json(status_json(key, info ? &*info : nullptr, now));
    } else if (!info) {
      print_line(key + ": not held");
    } else {
      print_table(std::vector{&*info}, now);
    }
    return exit_code::ok;
  });
}

int list_command(const Args& arguments) {
  CommonOptions common;
  ArgParser parser("list", kListHelp, common);
  const std::optional<ParsedArgs> args = parser.parse(arguments);
  if (!args) return exit_code::ok;
  if (args->dashes || args->positional.size() > 1)
    throw parser.usage("list takes at most one PREFIX");
  const std::string prefix = args->positional.empty() ? std::string() : args->positional[0];
  return with_manager(common, {}, [&](auto& manager) {
    using Info = typename std::decay_t<decltype(manager)>::LockInfo;
    const std::vector<Info> infos = manager.list();
    const TimeBridge now;
    std::vector<const Info*> shown;
    for (const Info& info : infos)
      if (info.key.compare(0, prefix.size(), prefix) == 0) shown.push_back(&info);
    std::sort(shown.begin(), shown.end(),
              [](const Info* a, const Info* b) { return a->key < b->key; });
    if (common.json) {
      Json locks = Json::array();
      for (const Info* info : shown) locks.push_back(status_json(info->key, info, now));
      print_json(Json{{"locks", std::move(locks)}});
    } else if (shown.empty()) {
      print_line(prefix.empty() ? "no key is held" : "no key under '" + prefix + "' is held");
    } else {
      print_table(shown, now);
    }
    return exit_code::ok;
  });
}

}  // namespace leaselock::cli
