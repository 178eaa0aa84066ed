// cli/mcp/tools.cpp — the tools' handlers. See tools.hpp.
#include "tools.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include <leaselock/holder_process.hpp>
#include <leaselock/limits.hpp>
#include <leaselock/token.hpp>

#include "../json_out.hpp"
#include "../timestamps.hpp"
#include "json_rpc.hpp"

namespace leaselock::cli::mcp {

namespace {

using std::chrono::steady_clock;

// --- arguments ---------------------------------------------------------------------------
// A missing required argument or one of the wrong JSON type is a fault in the call
// (-32602); a value of the right type that cannot be used is a tool error (isError).

class ToolError : public std::runtime_error {
 public:
  explicit ToolError(const std::string& message, json structured = nullptr)
      : std::runtime_error(message), structured_(std::move(structured)) {}
  const json& structured() const noexcept { return structured_; }

 private:
  json structured_;
};

[[noreturn]] void invalid_argument(const std::string& tool, const std::string& what) {
  throw RpcError(rpc_code::invalid_params, "invalid arguments for " + tool + ": " + what);
}

const json* find_argument(const json& arguments, const char* name) {
  const auto found = arguments.find(name);
  if (found == arguments.end() || found->is_null()) return nullptr;
  return &*found;
}

std::string string_argument(const json& arguments, const char* name, const std::string& tool) {
  const json* value = find_argument(arguments, name);
  if (!value) invalid_argument(tool, std::string("\"") + name + "\" (a string) is required");
  if (!value->is_string()) invalid_argument(tool, std::string("\"") + name + "\" must be a string");
  return value->get<std::string>();
}

std::optional<std::string> optional_string(const json& arguments, const char* name,
                                           const std::string& tool) {
  if (!find_argument(arguments, name)) return std::nullopt;
  return string_argument(arguments, name, tool);
}

std::optional<double> optional_number(const json& arguments, const char* name,
                                      const std::string& tool) {
  const json* value = find_argument(arguments, name);
  if (!value) return std::nullopt;
  if (!value->is_number())
    invalid_argument(tool, std::string("\"") + name + "\" must be a number of seconds");
  return value->get<double>();
}

double number_argument(const json& arguments, const char* name, const std::string& tool) {
  if (auto value = optional_number(arguments, name, tool)) return *value;
  invalid_argument(tool, std::string("\"") + name + "\" (a number of seconds) is required");
}

constexpr double kMaxTtlSeconds = 365.0 * 24 * 3600;

steady_clock::duration ttl_from(double seconds) {
  if (!(seconds > 0) || !std::isfinite(seconds))
    throw ToolError(
        "ttl_seconds must be a number of seconds greater than 0 (e.g. 60): the lock "
        "ends by itself when it runs out. Nothing was changed.");
  if (seconds > kMaxTtlSeconds)
    throw ToolError(
        "ttl_seconds is over the limit of one year; ask for less and renew with "
        "renew_lock if needed. Nothing was changed.");
  return std::chrono::duration_cast<steady_clock::duration>(std::chrono::duration<double>(seconds));
}

Mode mode_from(const std::optional<std::string>& text) {
  if (!text || *text == "write" || *text == "exclusive") return Mode::exclusive;
  if (*text == "read" || *text == "shared") return Mode::shared;
  throw ToolError("mode must be \"write\" (to change the file) or \"read\" (to read it); got \"" +
                  text->substr(0, 40) + "\". Nothing was changed.");
}

Token lock_id_from(const std::string& text) {
  if (auto token = Token::parse(text)) return *token;
  throw ToolError("malformed lock_id \"" + text.substr(0, 40) +
                  "\": pass the lock_id (32 hex digits) that lock_file returned. Nothing was "
                  "changed.");
}

// The library's reason for refusing a key or an owner, without its prefix.
[[noreturn]] void refused_input(const std::invalid_argument& error) {
  throw ToolError(reason(error) + ". Nothing was changed.");
}

// --- results -----------------------------------------------------------------------------

json tool_result(json structured) {
  json result = json::object();
  result["content"] = json::array({json{{"type", "text"}, {"text", dump(structured)}}});
  result["structuredContent"] = std::move(structured);
  return result;
}

json error_result(const std::string& message, json structured = nullptr) {
  json result = json::object();
  result["content"] = json::array({json{{"type", "text"}, {"text", message}}});
  if (!structured.is_null()) {  // the message first, then the same JSON as structured
    result["content"].push_back(json{{"type", "text"}, {"text", dump(structured)}});
    result["structuredContent"] = std::move(structured);
  }
  result["isError"] = true;
  return result;
}

// How long until the holders that block a request in `mode` are gone (unless renewed).
template <class Clock>
long long retry_after_ms(const LockInfo<Clock>& info, Mode mode, const TimeBridge& now) {
  long long wait = 0;
  for (const HolderInfo<Clock>& holder : info.holders) {
    if (mode == Mode::shared && holder.mode == Mode::shared) continue;  // readers share
    wait = std::max(wait, now.ms_until(holder.expires_at));
  }
  return wait;
}

template <class Clock>
std::string holders_text(const LockInfo<Clock>& info) {
  std::string text;
  for (const HolderInfo<Clock>& holder : info.holders) {
    if (!text.empty()) text += ", ";
    text += holder.owner;
    text += holder.mode == Mode::shared ? " (read)" : " (write)";
  }
  return text.empty() ? "nobody" : text;
}

// The tools over one Manager; make_lock_tools() makes them.
template <class Manager>
class ManagerTools final : public LockTools {
 public:
  ManagerTools(Manager& manager, bool owner_fixed, AuditLog* audit, ConnectionSecrets secrets)
      : manager_(manager), owner_fixed_(owner_fixed), audit_(audit), secrets_(std::move(secrets)) {}

  json call(const std::string& name, const json& arguments, const std::string& client,
            const WaitHooks& hooks) override;
  void give_back(const json& structured) noexcept override;

 private:
  using Lease = typename Manager::Lease;
  using LockInfo = typename Manager::LockInfo;
  using HolderInfo = typename Manager::HolderInfo;

  json lock_file(const json& arguments, const std::string& client, const WaitHooks& hooks);
  json unlock_file(const json& arguments);
  json renew_lock(const json& arguments);
  json check_lock_status(const json& arguments);
  json list_locks(const json& arguments);

  Manager& manager_;
  bool owner_fixed_;
  AuditLog* audit_;
  ConnectionSecrets secrets_;
};

template <class Manager>
json ManagerTools<Manager>::call(const std::string& name, const json& arguments,
                                 const std::string& client, const WaitHooks& hooks) {
  static const json no_arguments = json::object();
  const json& args = arguments.is_null() ? no_arguments : arguments;
  if (!args.is_object())
    throw RpcError(rpc_code::invalid_params, "\"arguments\" must be an object");
  try {
    if (name == "lock_file") return lock_file(args, client, hooks);
    if (name == "unlock_file") return unlock_file(args);
    if (name == "renew_lock") return renew_lock(args);
    if (name == "check_lock_status") return check_lock_status(args);
    if (name == "list_locks") return list_locks(args);
  } catch (const ToolError& error) {
    return error_result(error.what(), error.structured());
  } catch (const std::invalid_argument& error) {
    return error_result(reason(error) + ". Nothing was changed.");
  } catch (const StorageError& error) {
    return error_result("the lock storage failed: " + secrets_.hide(reason(error)) +
                        ". Try again in a moment; if this call was to change a lock, "
                        "check_lock_status then shows whether it did.");
  }
  throw RpcError(rpc_code::invalid_params,
                 "unknown tool \"" + name.substr(0, 64) +
                     "\" (tools: lock_file, unlock_file, renew_lock, check_lock_status, "
                     "list_locks)");
}

template <class Manager>
void ManagerTools<Manager>::give_back(const json& structured) noexcept {
  try {
    if (!structured.value("acquired", false)) return;
    const auto token = Token::parse(structured.value("lock_id", ""));
    if (token) (void)manager_.release(structured.value("path", ""), *token);
  } catch (...) {
  }
}

template <class Manager>
json ManagerTools<Manager>::lock_file(const json& args, const std::string& client,
                                      const WaitHooks& hooks) {
  static const std::string tool = "lock_file";
  const std::string path = string_argument(args, "path", tool);
  const Mode mode = mode_from(optional_string(args, "mode", tool));
  const auto ttl = ttl_from(number_argument(args, "ttl_seconds", tool));
  double wait_seconds = optional_number(args, "wait_seconds", tool).value_or(0.0);
  if (!(wait_seconds >= 0) || !std::isfinite(wait_seconds))
    throw ToolError("wait_seconds must be 0 (try once) or more (at most " +
                    std::to_string(static_cast<int>(max_wait_seconds)) +
                    " seconds). Nothing was changed.");
  wait_seconds = std::min(wait_seconds, max_wait_seconds);
  std::string owner = optional_string(args, "owner", tool).value_or("");
  if (owner.empty() && !owner_fixed_ && !client.empty()) owner = client + " " + manager_.owner();
  if (owner.size() > max_owner_size) owner.resize(max_owner_size);
  const std::string& shown_owner = owner.empty() ? manager_.owner() : owner;

  const auto start = steady_clock::now();
  Lease lease;
  try {
    lease = manager_.try_acquire(path, mode, ttl, steady_clock::duration::zero(), owner);
    if (!lease && wait_seconds > 0) {
      // Wait in short slices: between them the request can be withdrawn at once and
      // progress reported; the lease is only ever granted inside try_acquire.
      const auto deadline = start + std::chrono::duration_cast<steady_clock::duration>(
                                        std::chrono::duration<double>(wait_seconds));
      auto next_progress = start;
      while (!lease) {
        const auto now = steady_clock::now();
        if (hooks.cancelled && hooks.cancelled()) break;
        if (now >= deadline) break;
        if (hooks.progress && now >= next_progress) {
          const auto info = manager_.status(path);
          hooks.progress(std::chrono::duration<double>(now - start).count(), wait_seconds,
                         "waiting for " + path + ", held by " +
                             (info ? holders_text(*info) : std::string("nobody")));
          next_progress = now + progress_interval;
        }
        const auto slice = std::min<steady_clock::duration>(deadline - now, poll_interval);
        lease = manager_.try_acquire(path, mode, ttl, slice, owner);
      }
    }
  } catch (const std::invalid_argument& error) {
    refused_input(error);
  }
  const std::chrono::nanoseconds waited = steady_clock::now() - start;
  if (hooks.cancelled && hooks.cancelled()) {
    if (lease) lease.release();  // granted as the client withdrew: give it back
    if (audit_) audit_->write({"cancelled", path, &mode, shown_owner, 0, &waited});
    throw Cancelled();
  }

  json result = json::object();
  result["path"] = path;
  if (lease) {
    const TimeBridge now;
    const std::uint64_t fence = lease.fence();
    const auto expires_at = lease.expires_at();
    // The lease belongs to its lock_id from here on, not to this process.
    const Token token = lease.detach(HolderProcess::none());
    if (audit_) audit_->write({"acquired", path, &mode, shown_owner, fence, &waited});
    result["acquired"] = true;
    result["lock_id"] = token.to_string();
    result["fence"] = fence;
    result["mode"] = mode_name(mode, ModeWords::read_write);
    add_expiry(result, expires_at, now);
    return tool_result(std::move(result));
  }
  if (audit_)
    audit_->write(
        {wait_seconds > 0 ? "timed_out" : "refused", path, &mode, shown_owner, 0, &waited});
  const std::optional<LockInfo> info = manager_.status(path);
  const TimeBridge now;
  result["acquired"] = false;
  if (info) {
    result["holders"] = holders_json(*info, now, ModeWords::read_write);
    result["waiters"] = info->waiters;
    result["retry_after_ms"] = retry_after_ms(*info, mode, now);
  } else {  // released between the refusal and this look: try again now
    result["holders"] = json::array();
    result["waiters"] = 0;
    result["retry_after_ms"] = 0;
  }
  return tool_result(std::move(result));
}

template <class Manager>
json ManagerTools<Manager>::unlock_file(const json& args) {
  static const std::string tool = "unlock_file";
  const std::string path = string_argument(args, "path", tool);
  const Token token = lock_id_from(string_argument(args, "lock_id", tool));
  const bool released = manager_.release(path, token);
  json result{{"path", path}, {"released", released}};
  if (!released)
    throw ToolError(
        "lock_id does not hold " + path +
            " now: it was released already, or its TTL ran out. Another agent may have "
            "changed the file since; re-read it (under a new lock_file) before relying on "
            "your edit.",
        std::move(result));
  return tool_result(std::move(result));
}

template <class Manager>
json ManagerTools<Manager>::renew_lock(const json& args) {
  static const std::string tool = "renew_lock";
  const std::string path = string_argument(args, "path", tool);
  const Token token = lock_id_from(string_argument(args, "lock_id", tool));
  const auto ttl = ttl_from(number_argument(args, "ttl_seconds", tool));
  const bool renewed = manager_.renew(path, token, ttl);
  std::optional<typename Manager::time_point> expires_at;
  if (renewed) {
    if (const auto info = manager_.status(path)) {
      for (const HolderInfo& holder : info->holders)
        if (holder.token == token) expires_at = holder.expires_at;
    }
  }
  if (!expires_at)
    throw ToolError(
        "the lock on " + path +
            " has ended (its TTL ran out, or it was released) and cannot be renewed: take a "
            "new one with lock_file, and re-read the file, since another agent may have "
            "changed it.",
        json{{"path", path}, {"renewed", false}});
  json result{{"path", path}, {"renewed", true}};
  add_expiry(result, *expires_at, TimeBridge{});
  return tool_result(std::move(result));
}

template <class Manager>
json ManagerTools<Manager>::check_lock_status(const json& args) {
  const std::string path = string_argument(args, "path", "check_lock_status");
  const std::optional<LockInfo> info = manager_.status(path);
  return tool_result(
      status_json(path, info ? &*info : nullptr, TimeBridge{}, "path", ModeWords::read_write));
}

template <class Manager>
json ManagerTools<Manager>::list_locks(const json& args) {
  const std::string prefix = optional_string(args, "prefix", "list_locks").value_or("");
  std::vector<LockInfo> infos = manager_.list();
  std::sort(infos.begin(), infos.end(),
            [](const LockInfo& a, const LockInfo& b) { return a.key < b.key; });
  const TimeBridge now;
  json locks = json::array();
  for (const LockInfo& info : infos) {
    if (info.key.compare(0, prefix.size(), prefix) != 0) continue;
    locks.push_back(status_json(info.key, &info, now, "path", ModeWords::read_write));
  }
  return tool_result(json{{"locks", std::move(locks)}});
}

}  // namespace

template <class Manager>
std::unique_ptr<LockTools> make_lock_tools(Manager& manager, bool owner_fixed, AuditLog* audit,
                                           ConnectionSecrets secrets) {
  return std::make_unique<ManagerTools<Manager>>(manager, owner_fixed, audit, std::move(secrets));
}

template std::unique_ptr<LockTools> make_lock_tools(file_lock_manager&, bool, AuditLog*,
                                                    ConnectionSecrets);
#if LEASELOCK_CLI_POSTGRES
template std::unique_ptr<LockTools> make_lock_tools(postgres_lock_manager&, bool, AuditLog*,
                                                    ConnectionSecrets);
#endif

}  // namespace leaselock::cli::mcp
