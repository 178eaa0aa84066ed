// cli/mcp/json_rpc.cpp — see json_rpc.hpp.
#include "json_rpc.hpp"

#include <charconv>

namespace leaselock::cli::mcp {

namespace {

// The length of the UTF-8 sequence at text[i] (0: not valid UTF-8).
std::size_t utf8_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t at) { return static_cast<unsigned char>(text[at]); };
  const unsigned char lead = byte(i);
  std::size_t length;
  unsigned min;
  unsigned code;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2, min = 0x80, code = lead & 0x1fu;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3, min = 0x800, code = lead & 0x0fu;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4, min = 0x10000, code = lead & 0x07u;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xc0u) != 0x80u) return 0;
    code = (code << 6) | (byte(i + k) & 0x3fu);
  }
  if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return 0;
  return length;
}

void dump_string(std::string& out, std::string_view text) {
  static const char* const hex = "0123456789abcdef";
  out += '"';
  std::size_t run = 0;  // start of the bytes not yet copied
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      if (const std::size_t length = utf8_length(text, i)) {
        i += length;
        continue;
      }
    }
    out.append(text.data() + run, i - run);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xf];
        } else {
          out += "\xef\xbf\xbd";  // U+FFFD for a byte that is not UTF-8
        }
    }
    run = ++i;
  }
  out.append(text.data() + run, text.size() - run);
  out += '"';
}

void dump_to(std::string& out, const json& value) {
  switch (value.type()) {
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, member] : value.items()) {
        if (!first) out += ',';
        first = false;
        dump_string(out, key);
        out += ':';
        dump_to(out, member);
      }
      out += '}';
      return;
    }
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const json& element : value) {
        if (!first) out += ',';
        first = false;
        dump_to(out, element);
      }
      out += ']';
      return;
    }
    case json::value_t::string: dump_string(out, value.get_ref<const std::string&>()); return;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: {
      char digits[24];
      const auto end =
          value.is_number_unsigned()
              ? std::to_chars(digits, digits + sizeof digits, value.get<std::uint64_t>())
              : std::to_chars(digits, digits + sizeof digits, value.get<std::int64_t>());
      out.append(digits, end.ptr);
      return;
    }
    default: out += value.dump(); return;  // null, booleans, floating point
  }
}

}  // namespace

std::string dump(const json& value) {
  std::string out;
  out.reserve(256);
  dump_to(out, value);
  return out;
}

Incoming classify(json message) {
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
    in.params = std::move(*params);
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
