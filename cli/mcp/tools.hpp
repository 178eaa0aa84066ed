// cli/mcp/tools.hpp — the MCP tools: lock_file, unlock_file, renew_lock, check_lock_status,
// list_locks (DESIGN.md "MCP server": names, arguments and result fields are fixed).
//
// LockTools runs them on a file_lock_manager or a postgres_lock_manager. A lease belongs to its
// lock_id (the token), not to this server: lock_file detaches it from the server process, so it
// lives until unlock_file or its TTL, whatever happens to the server. Results never carry another
// holder's lock_id. The server never opens the files the paths name: a path is a key.
//
// Faults in the call itself (unknown tool, an argument missing or of the wrong JSON type)
// throw RpcError (-32602); a call that runs but cannot do what was asked (bad TTL,
// malformed or expired lock_id) returns a result with isError and a message saying what
// to do. A busy lock is no error: acquired false, with its holders and retry_after_ms.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "../backend.hpp"
#include "audit.hpp"

namespace leaselock::cli::mcp {

using json = nlohmann::ordered_json;  // fields stay in the order written

/// How a waiting lock_file talks to the transport that carries its request.
struct WaitHooks {
  /// True once the client has withdrawn the request (notifications/cancelled, or the
  /// connection closed). Checked at least every poll interval while waiting.
  std::function<bool()> cancelled;
  /// Sends notifications/progress (empty when the request carried no progressToken):
  /// seconds waited, seconds it may wait in all, a line saying who holds the key.
  std::function<void(double waited, double total, const std::string& message)> progress;
};

/// Thrown when a request was cancelled: the transport answers nothing (stdio) or an
/// error (HTTP, if the client is still there). No lease is left behind.
class Cancelled : public std::runtime_error {
 public:
  Cancelled() : std::runtime_error("the request was cancelled; no lock was taken") {}
};

/// The tools, over either kind of lock manager (make_lock_tools()).
class LockTools {
 public:
  /// Longest wait lock_file allows (requests for more are shortened to it): below the
  /// 60 s request timeout common to MCP clients.
  static constexpr double max_wait_seconds = 55.0;
  /// How often a waiting lock_file looks at its cancellation and sends progress.
  static constexpr std::chrono::milliseconds poll_interval{20};
  static constexpr std::chrono::milliseconds progress_interval{500};

  virtual ~LockTools() = default;

  /// The tools/list entries, in their fixed order.
  static const json& definitions();

  /// Runs tool `name` on `arguments` (an object, or null for none); `client` names the
  /// client (clientInfo.name, may be empty) for the default owner. Returns a
  /// CallToolResult; storage that fails (a database that went away) is a tool error.
  /// Throws RpcError or Cancelled.
  virtual json call(const std::string& name, const json& arguments, const std::string& client,
                    const WaitHooks& hooks) = 0;

  /// Releases the lease a lock_file result (its structuredContent) describes, if any:
  /// for a result that could not be delivered. Never throws.
  virtual void give_back(const json& structured) noexcept = 0;
};

/// The tools over `manager` (a file_lock_manager or a postgres_lock_manager), which must
/// outlive them. `owner_fixed`: --owner (or $LEASELOCK_OWNER) named the manager's owner,
/// which then wins over the client's name. `audit` may be null. `secrets`: what storage
/// error messages must not show.
template <class Manager>
std::unique_ptr<LockTools> make_lock_tools(Manager& manager, bool owner_fixed, AuditLog* audit,
                                           ConnectionSecrets secrets);

}  // namespace leaselock::cli::mcp
