// cli/mcp/protocol.hpp — the MCP methods, for both eras of the protocol, whatever the
// transport.
//
// Legacy revisions (2025-03-26, 2025-06-18, 2025-11-25) open with `initialize`, which
// negotiates a version for the session (the stdio process, or an HTTP session); then
// ping, tools/list and tools/call. The modern, stateless revision (2026-07-28) has no
// handshake: every request names its version and client capabilities in
// params._meta["io.modelcontextprotocol/..."], and server/discover says what the server
// supports. A request is modern when its _meta names a protocol version; otherwise it
// belongs to the legacy session it arrives in (and without one, it is refused).
//
// Protocol turns requests into responses and throws RpcError for protocol faults (the
// transport answers them, with the HTTP status status_for() gives) and Cancelled.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "json_rpc.hpp"
#include "tools.hpp"

namespace leaselock::cli::mcp {

inline constexpr std::string_view kModernVersion = "2026-07-28";

/// The initialize-based revisions this server speaks, newest first.
const std::vector<std::string>& legacy_versions();
bool is_legacy_version(std::string_view version);

/// One legacy conversation: what `initialize` negotiated.
struct Session {
  std::string version;  // empty: not initialized
  std::string client_name;
  bool initialized_notified = false;
};

/// What a request may do besides answering: send notifications tied to it, and learn
/// whether it was withdrawn.
struct Exchange {
  std::function<void(const json& message)> notify;  // empty: this transport cannot
  std::function<bool()> cancelled;
};

class Protocol {
 public:
  explicit Protocol(LockTools& tools) : tools_(tools) {}

  /// The protocol version a modern request names, or "" for a legacy one. Throws RpcError
  /// (-32602) when _meta is not an object or its version is not a string.
  static std::string modern_version(const Incoming& request);

  /// Answers `initialize` and fills `session`. Throws RpcError.
  json initialize(const Incoming& request, Session& session) const;

  /// Answers any other request: modern (per its _meta) or in `session` (null: none
  /// established). Throws RpcError or Cancelled.
  json handle(const Incoming& request, const Session* session, const Exchange& exchange);

  LockTools& tools() noexcept { return tools_; }

  /// The HTTP status that goes with a JSON-RPC error code.
  static int status_for(int code, bool modern);

 private:
  json handle_modern(const Incoming& request, const std::string& version, const Exchange& exchange);
  json call_tool(const Incoming& request, const std::string& client, const Exchange& exchange);

  LockTools& tools_;
};

}  // namespace leaselock::cli::mcp
