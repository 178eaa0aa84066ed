// cli/mcp/json_rpc.hpp — JSON-RPC 2.0 messages as the MCP server reads and writes them.
//
// classify() sorts one parsed message into a request, a notification, a response (which
// a client may send us, and we ignore) or an invalid message with the reason. RpcError
// carries a protocol fault to the transport, which answers it with error_response().
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

namespace leaselock::cli::mcp {

using json = nlohmann::ordered_json;  // fields stay in the order written

/// JSON-RPC error codes, and those MCP reserves (2026-07-28 schema).
namespace rpc_code {
inline constexpr int parse_error = -32700;
inline constexpr int invalid_request = -32600;
inline constexpr int method_not_found = -32601;
inline constexpr int invalid_params = -32602;
inline constexpr int internal_error = -32603;
inline constexpr int header_mismatch = -32020;
inline constexpr int missing_client_capability = -32021;
inline constexpr int unsupported_protocol_version = -32022;
}  // namespace rpc_code

/// A protocol fault: answered with a JSON-RPC error, never with a tool result.
class RpcError : public std::runtime_error {
 public:
  RpcError(int code, const std::string& message, json data = nullptr)
      : std::runtime_error(message), code_(code), data_(std::move(data)) {}
  int code() const noexcept { return code_; }
  const json& data() const noexcept { return data_; }

 private:
  int code_;
  json data_;
};

/// One incoming message, sorted.
struct Incoming {
  enum class Kind { request, notification, response, invalid };
  Kind kind = Kind::invalid;
  json id;  // null for notifications and for invalid messages without a usable id
  std::string method;
  json params;          // an object (empty when the message had none)
  std::string problem;  // for invalid: what is wrong
};

/// Sorts `message` (already parsed; its params are moved out). Never throws.
Incoming classify(json message);

json result_response(const json& id, json result);
json error_response(const json& id, int code, const std::string& message, json data = nullptr);
json error_response(const json& id, const RpcError& error);
json notification(const std::string& method, json params);

/// One line of JSON text, as json::dump() writes it but faster (each message is written
/// once whole, and a tool result twice: as text and as structuredContent). Each byte that
/// is not part of valid UTF-8 (keys may hold any bytes) becomes U+FFFD.
std::string dump(const json& value);

/// A request id as a map key ("7" and "\"7\"" differ, as they do on the wire).
inline std::string id_key(const json& id) { return id.dump(); }

}  // namespace leaselock::cli::mcp
