// cli/mcp/protocol.cpp — see protocol.hpp.
#include "protocol.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include <leaselock/version.hpp>

namespace leaselock::cli::mcp {

namespace {

constexpr const char* kVersionKey = "io.modelcontextprotocol/protocolVersion";
constexpr const char* kCapabilitiesKey = "io.modelcontextprotocol/clientCapabilities";
constexpr const char* kClientInfoKey = "io.modelcontextprotocol/clientInfo";
constexpr const char* kServerInfoKey = "io.modelcontextprotocol/serverInfo";
// How long a client may keep tools/list and server/discover results: they never change
// while this server runs.
constexpr long long kCacheTtlMs = 3'600'000;

const char* const kInstructions =
    "File locks shared by every agent on this machine. Before editing a file, call "
    "lock_file on its absolute path (mode write, a ttl_seconds that covers your edit); "
    "edit only if acquired is true, then call unlock_file with the lock_id. acquired "
    "false means another agent holds it: wait (wait_seconds) or work on something else.";

json server_info() {
  return json{{"name", "leaselock"},
              {"title", "leaselock file locks"},
              {"version", std::to_string(LEASELOCK_VERSION_MAJOR) + "." +
                              std::to_string(LEASELOCK_VERSION_MINOR) + "." +
                              std::to_string(LEASELOCK_VERSION_PATCH)}};
}

json capabilities() { return json{{"tools", {{"listChanged", false}}}}; }

json all_versions() {
  json versions = json::array({std::string(kModernVersion)});
  for (const std::string& version : legacy_versions()) versions.push_back(version);
  return versions;
}

// A progress notification sender for `request`, or an empty function when the request
// asked for none or the transport cannot send any.
std::function<void(double, double, const std::string&)> progress_sender(const Incoming& request,
                                                                        const Exchange& exchange) {
  if (!exchange.notify) return {};
  const json* meta = nullptr;
  if (const auto found = request.params.find("_meta");
      found != request.params.end() && found->is_object())
    meta = &*found;
  if (!meta) return {};
  const auto token = meta->find("progressToken");
  if (token == meta->end() || !(token->is_string() || token->is_number_integer())) return {};
  return [notify = exchange.notify, token = *token](double done, double total,
                                                    const std::string& message) {
    notify(notification(
        "notifications/progress",
        json{
            {"progressToken", token}, {"progress", done}, {"total", total}, {"message", message}}));
  };
}

std::string client_name(const json& info) {
  if (!info.is_object()) return {};
  const auto name = info.find("name");
  return name != info.end() && name->is_string() ? name->get<std::string>() : std::string();
}

json list_tools(const Incoming& request) {
  if (const auto cursor = request.params.find("cursor");
      cursor != request.params.end() && !cursor->is_null())
    throw RpcError(rpc_code::invalid_params,
                   "invalid cursor: this server lists every tool at once and gives no cursors");
  return json{{"tools", LockTools::definitions()}};
}

}  // namespace

const std::vector<std::string>& legacy_versions() {
  static const std::vector<std::string> versions{"2025-11-25", "2025-06-18", "2025-03-26"};
  return versions;
}

bool is_legacy_version(std::string_view version) {
  const auto& versions = legacy_versions();
  return std::find(versions.begin(), versions.end(), version) != versions.end();
}

std::string Protocol::modern_version(const Incoming& request) {
  const auto meta = request.params.find("_meta");
  if (meta == request.params.end()) return {};
  if (!meta->is_object()) throw RpcError(rpc_code::invalid_params, "\"_meta\" must be an object");
  const auto version = meta->find(kVersionKey);
  if (version == meta->end()) return {};
  if (!version->is_string() || version->get_ref<const std::string&>().empty())
    throw RpcError(rpc_code::invalid_params,
                   std::string("_meta \"") + kVersionKey + "\" must be a protocol version string");
  return version->get<std::string>();
}

json Protocol::initialize(const Incoming& request, Session& session) const {
  if (!session.version.empty())
    throw RpcError(rpc_code::invalid_request,
                   "already initialized (protocol " + session.version + "); initialize once");
  const auto requested = request.params.find("protocolVersion");
  if (requested == request.params.end() || !requested->is_string())
    throw RpcError(rpc_code::invalid_params,
                   "initialize needs \"protocolVersion\" (a string, e.g. \"2025-11-25\")");
  const std::string& wanted = requested->get_ref<const std::string&>();
  // The client's version if we speak it, else our newest: the client decides whether it
  // can go on with that.
  session.version = is_legacy_version(wanted) ? wanted : legacy_versions().front();
  if (const auto info = request.params.find("clientInfo"); info != request.params.end())
    session.client_name = client_name(*info);
  return json{{"protocolVersion", session.version},
              {"capabilities", capabilities()},
              {"serverInfo", server_info()},
              {"instructions", kInstructions}};
}

json Protocol::handle(const Incoming& request, const Session* session, const Exchange& exchange) {
  const std::string version = modern_version(request);
  if (!version.empty()) return handle_modern(request, version, exchange);
  if (request.method == "ping") return json::object();  // allowed before initialize too
  if (!session || session->version.empty())
    throw RpcError(rpc_code::invalid_params,
                   "no session: send \"initialize\" first (protocol 2025-03-26 to 2025-11-25), "
                   "or name the protocol in params._meta[\"" +
                       std::string(kVersionKey) + "\"] (2026-07-28)");
  if (request.method == "tools/list") return list_tools(request);
  if (request.method == "tools/call") return call_tool(request, session->client_name, exchange);
  throw RpcError(rpc_code::method_not_found,
                 "method not found: " + request.method.substr(0, 64) +
                     " (this server offers ping, tools/list and tools/call)");
}

json Protocol::handle_modern(const Incoming& request, const std::string& version,
                             const Exchange& exchange) {
  if (version != kModernVersion)
    throw RpcError(rpc_code::unsupported_protocol_version, "Unsupported protocol version",
                   json{{"supported", all_versions()}, {"requested", version}});
  const json& meta = request.params["_meta"];
  const auto capabilities_found = meta.find(kCapabilitiesKey);
  if (capabilities_found == meta.end() || !capabilities_found->is_object())
    throw RpcError(rpc_code::invalid_params, std::string("_meta \"") + kCapabilitiesKey +
                                                 "\" (an object, {} for none) is required");
  std::string client;
  if (const auto info = meta.find(kClientInfoKey); info != meta.end()) client = client_name(*info);

  json result;
  bool cacheable = false;
  if (request.method == "server/discover") {
    result = json{{"supportedVersions", all_versions()},
                  {"capabilities", capabilities()},
                  {"instructions", kInstructions}};
    cacheable = true;
  } else if (request.method == "tools/list") {
    result = list_tools(request);
    cacheable = true;
  } else if (request.method == "tools/call") {
    result = call_tool(request, client, exchange);
  } else {
    throw RpcError(rpc_code::method_not_found,
                   "method not found: " + request.method.substr(0, 64) +
                       " (this server offers server/discover, tools/list and tools/call)");
  }
  result["resultType"] = "complete";
  if (cacheable) {
    result["ttlMs"] = kCacheTtlMs;
    result["cacheScope"] = "public";
  }
  result["_meta"] = json{{kServerInfoKey, server_info()}};
  return result;
}

json Protocol::call_tool(const Incoming& request, const std::string& client,
                         const Exchange& exchange) {
  const auto name = request.params.find("name");
  if (name == request.params.end() || !name->is_string())
    throw RpcError(rpc_code::invalid_params, "tools/call needs \"name\" (a string)");
  const auto arguments = request.params.find("arguments");
  const json none;
  WaitHooks hooks;
  hooks.cancelled = exchange.cancelled;
  hooks.progress = progress_sender(request, exchange);
  return tools_.call(name->get<std::string>(),
                     arguments == request.params.end() ? none : *arguments, client, hooks);
}

int Protocol::status_for(int code, bool modern) {
  switch (code) {
    case rpc_code::parse_error:
    case rpc_code::invalid_request: return 400;
    case rpc_code::method_not_found: return modern ? 404 : 200;
    case rpc_code::invalid_params:
    case rpc_code::header_mismatch:
    case rpc_code::missing_client_capability:
    case rpc_code::unsupported_protocol_version: return modern ? 400 : 200;
    default: return modern ? 500 : 200;
  }
}

}  // namespace leaselock::cli::mcp
