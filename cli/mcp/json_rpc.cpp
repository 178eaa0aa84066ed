// cli/mcp/json_rpc.cpp — see json_rpc.hpp.
#include "json_rpc.hpp"

namespace leaselock::cli::mcp {

Incoming classify(const json& message) {
  Incoming in;
  if (message.is_array()) {
    in.problem = "batches are not supported: send one JSON-RPC message at a time";
    return in;
  }
  if (!message.is_object()) {
    in.problem = "a JSON-RPC message is a JSON object";
    return in;
  }
  const auto id = message.find("id");
  const bool has_id = id != message.end();
  if (has_id && (id->is_string() || id->is_number_integer())) in.id = *id;
  const auto version = message.find("jsonrpc");
  if (version == message.end() || *version != "2.0") {
    in.problem = "\"jsonrpc\" must be \"2.0\"";
    return in;
  }
  const auto method = message.find("method");
  if (method == message.end()) {
    if (has_id && (message.contains("result") || message.contains("error"))) {
      in.kind = Incoming::Kind::response;
      return in;
    }
    in.problem = "a request needs a \"method\"";
    return in;
  }
  if (!method->is_string()) {
    in.problem = "\"method\" must be a string";
    return in;
  }
  if (has_id && !id->is_string() && !id->is_number_integer()) {
    in.problem = "\"id\" must be a string or an integer (not null)";
    return in;
  }
  in.method = method->get<std::string>();
  const auto params = message.find("params");
  if (params == message.end()) {
    in.params = json::object();
  } else if (params->is_object()) {
    in.params = *params;
  } else {
    in.problem = "\"params\" must be an object";
    return in;
  }
  in.kind = has_id ? Incoming::Kind::request : Incoming::Kind::notification;
  return in;
}

json result_response(const json& id, json result) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

json error_response(const json& id, int code, const std::string& message, json data) {
  json error{{"code", code}, {"message", message}};
  if (!data.is_null()) error["data"] = std::move(data);
  // A null id: the request's could not be read.
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(error)}};
}

json error_response(const json& id, const RpcError& error) {
  return error_response(id, error.code(), error.what(), error.data());
}

json notification(const std::string& method, json params) {
  return json{{"jsonrpc", "2.0"}, {"method", method}, {"params", std::move(params)}};
}

}  // namespace leaselock::cli::mcp
