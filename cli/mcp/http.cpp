// cli/mcp/http.cpp — the Streamable HTTP transport: one endpoint, /mcp.
//
// POST carries one JSON-RPC message: a request is answered with application/json (or,
// for a lock_file that may wait and asked for progress, with an event stream of progress
// notifications and then the response); a notification or response gets 202.
// Legacy clients open a session with initialize (Mcp-Session-Id); modern ones send
// stateless requests whose headers mirror the body. Before anything else, every request
// passes the DNS-rebinding checks (Host and Origin must be loopback names or the address
// served: 403) and, with --auth-token-file, the bearer token check (401). A thread per
// connection; at most TransportLimits::max_connections at once (then 503).
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <leaselock/token.hpp>

#include "http_wire.hpp"
#include "transports.hpp"

namespace leaselock::cli::mcp {

namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr std::size_t kMaxSessions = 1024;

bool is_loopback_name(const std::string& host) {
  return host == "localhost" || host == "127.0.0.1" || host == "::1" ||
         host.compare(0, 4, "127.") == 0;
}

// "name:port", "[v6]:port" or "name" -> name (lower-cased), "" if malformed.
std::string host_name(const std::string& authority) {
  std::string host;
  if (!authority.empty() && authority[0] == '[') {
    const auto close = authority.find(']');
    if (close == std::string::npos) return {};
    host = authority.substr(1, close - 1);
  } else {
    host = authority.substr(0, authority.find(':'));
  }
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return host;
}

// Decodes the "=?base64?...?=" form of Mcp-Name; other values stay as they are.
std::string header_value(const std::string& value) {
  const std::string prefix = "=?base64?", suffix = "?=";
  if (value.size() < prefix.size() + suffix.size() ||
      value.compare(0, prefix.size(), prefix) != 0 ||
      value.compare(value.size() - suffix.size(), suffix.size(), suffix) != 0)
    return value;
  const std::string data =
      value.substr(prefix.size(), value.size() - prefix.size() - suffix.size());
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (const char c : data) {
    int digit;
    if (c >= 'A' && c <= 'Z')
      digit = c - 'A';
    else if (c >= 'a' && c <= 'z')
      digit = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      digit = c - '0' + 52;
    else if (c == '+')
      digit = 62;
    else if (c == '/')
      digit = 63;
    else if (c == '=')
      break;
    else
      return std::string(1, '\0');  // matches no tool name
    buffer = (buffer << 6) | static_cast<unsigned>(digit);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xffu));
    }
  }
  return out;
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

// A transport-level refusal: a JSON-RPC error without id.
std::string refusal_body(int code, const std::string& message) {
  return dump(json{{"jsonrpc", "2.0"}, {"error", {{"code", code}, {"message", message}}}});
}

struct SessionEntry {
  Session session;
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> waiters;
  std::uint64_t last_used = 0;
};

class HttpServer {
 public:
  HttpServer(Protocol& protocol, const HttpOptions& options, const TransportLimits& limits)
      : protocol_(protocol), options_(options), limits_(limits) {}

  int run() {
    const int listener = listen_socket();
    for (;;) {
      const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
          continue;
        }
        std::fprintf(stderr, "leaselock mcp: accept failed: %s\n", std::strerror(errno));
        return 69;
      }
      // Each message goes out in one send(): never hold one back waiting for an ACK.
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (connections_.fetch_add(1) >= limits_.max_connections) {
        http::Connection refused(fd);
        refused.respond(503, {{"Retry-After", "1"}, {"Content-Type", "application/json"}},
                        refusal_body(rpc_code::internal_error, "too many connections; retry"),
                        false);
        connections_.fetch_sub(1);
        continue;
      }
      std::thread([this, fd] {
        serve_connection(fd);
        connections_.fetch_sub(1);
      }).detach();
    }
  }

 private:
  int listen_socket() {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(options_.port);
    if (const int error = ::getaddrinfo(options_.host.c_str(), port.c_str(), &hints, &found))
      throw std::runtime_error("cannot resolve '" + options_.host + "': " + ::gai_strerror(error));
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> owner(found, ::freeaddrinfo);
    std::string failure = "no address";
    for (addrinfo* address = found; address; address = address->ai_next) {
      const int fd = ::socket(address->ai_family, address->ai_socktype | SOCK_CLOEXEC, 0);
      if (fd < 0) continue;
      const int one = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (::bind(fd, address->ai_addr, address->ai_addrlen) == 0 && ::listen(fd, 128) == 0) {
        sockaddr_storage bound{};
        socklen_t size = sizeof bound;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &size);
        const unsigned short actual =
            bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                        : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
        bound_port_ = actual;
        if (options_.on_listening) options_.on_listening(options_.host, actual);
        return fd;
      }
      failure = std::strerror(errno);
      ::close(fd);
    }
    throw std::runtime_error("cannot listen on " + options_.host + ":" + port + ": " + failure);
  }

  bool host_allowed(const std::string& host) const {
    return is_loopback_name(host) || host == host_name(options_.host) || host == options_.host;
  }

  void serve_connection(int fd) {
    http::Connection connection(fd);
    http::Request request;
    for (;;) {
      http::ReadFailure failure;
      if (!connection.read_request(request, limits_.max_head, limits_.max_message,
                                   limits_.idle_time, limits_.request_time, &failure)) {
        if (failure.status > 0 &&
            connection.respond(failure.status, {{"Content-Type", "application/json"}},
                               refusal_body(rpc_code::invalid_request, failure.reason), false))
          connection.drain_before_close(
              4 * limits_.max_message,
              std::min(limits_.request_time, std::chrono::milliseconds(2000)));
        return;
      }
      const bool keep_alive =
          request.minor_version == 1 && !header_is(request, "connection", "close");
      if (!serve_request(connection, request, keep_alive) || !keep_alive) return;
    }
  }

  static bool header_is(const http::Request& request, const char* name, const char* value) {
    const std::string* found = request.header(name);
    if (!found) return false;
    std::string lowered = *found;
    for (char& c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return lowered.find(value) != std::string::npos;
  }

  // Answers one request; false if the connection must close.
  bool serve_request(http::Connection& connection, const http::Request& request, bool keep_alive) {
    const auto refuse = [&](int status, const std::string& message, Headers headers = {}) {
      headers.emplace_back("Content-Type", "application/json");
      return connection.respond(status, headers, refusal_body(rpc_code::invalid_request, message),
                                keep_alive) &&
             status < 500;
    };
    // DNS rebinding: a page in a browser may reach 127.0.0.1 under a name it controls.
    const std::string* host = request.header("host");
    if (!host || !host_allowed(host_name(*host)))
      return refuse(403, "Forbidden: the Host header must name this server (localhost)");
    if (const std::string* origin = request.header("origin")) {
      const auto scheme = origin->find("://");
      if (scheme == std::string::npos || !host_allowed(host_name(origin->substr(scheme + 3))))
        return refuse(403, "Forbidden: requests from origin '" + origin->substr(0, 100) +
                               "' are not accepted");
    }
    if (!options_.bearer_token.empty()) {
      const std::string* authorization = request.header("authorization");
      if (!authorization || !constant_time_equal(*authorization, "Bearer " + options_.bearer_token))
        return refuse(401, "Unauthorized: send 'Authorization: Bearer <token>'",
                      {{"WWW-Authenticate", "Bearer realm=\"leaselock\""}});
    }
    if (request.target != "/mcp") return refuse(404, "Not Found: the MCP endpoint is /mcp");
    if (request.method == "DELETE") return end_session(connection, request, keep_alive);
    if (request.method != "POST")
      return refuse(405, "Method Not Allowed: POST JSON-RPC messages to /mcp",
                    {{"Allow", "POST, DELETE"}});
    if (!header_is(request, "content-type", "application/json"))
      return refuse(415, "Unsupported Media Type: send Content-Type: application/json");
    if (const std::string* accept = request.header("accept")) {
      if (!header_is(request, "accept", "application/json") &&
          !header_is(request, "accept", "text/event-stream") &&
          accept->find("*/*") == std::string::npos)
        return refuse(406, "Not Acceptable: accept application/json and text/event-stream");
    }
    json message;
    if (!parse_message(request.body, message))
      return respond_json(
          connection, 400,
          error_response(nullptr, rpc_code::parse_error, "Parse error: not valid JSON"), {},
          keep_alive);
    Incoming in = classify(std::move(message));
    if (in.kind == Incoming::Kind::invalid)
      return respond_json(
          connection, 400,
          error_response(in.id, rpc_code::invalid_request, "Invalid Request: " + in.problem), {},
          keep_alive);
    if (in.kind != Incoming::Kind::request) {
      on_notification(request, in);
      return connection.respond(202, {}, "", keep_alive);
    }
    return serve_call(connection, request, in, keep_alive);
  }

  bool respond_json(http::Connection& connection, int status, const json& body, Headers headers,
                    bool keep_alive) {
    headers.emplace_back("Content-Type", "application/json");
    return connection.respond(status, headers, dump(body), keep_alive);
  }

  bool serve_call(http::Connection& connection, const http::Request& request, const Incoming& in,
                  bool keep_alive) {
    const auto fail = [&](const RpcError& error, bool modern) {
      return respond_json(connection, Protocol::status_for(error.code(), modern),
                          error_response(in.id, error), {}, keep_alive);
    };
    std::string version;
    try {
      version = Protocol::modern_version(in);
    } catch (const RpcError& error) {
      return fail(error, true);
    }
    if (!version.empty()) {
      if (auto mismatch = header_mismatch(request, in, version)) return fail(*mismatch, true);
      return run_call(connection, request, in, nullptr, keep_alive, true);
    }
    // Legacy: initialize opens a session; everything else needs one.
    if (in.method == "initialize") {
      Session session;
      json result;
      try {
        result = protocol_.initialize(in, session);
      } catch (const RpcError& error) {
        return fail(error, false);
      }
      const std::string id = Token::generate().to_string();
      add_session(id, std::move(session));
      return respond_json(connection, 200, result_response(in.id, std::move(result)),
                          {{"Mcp-Session-Id", id}}, keep_alive);
    }
    if (const std::string* header = request.header("mcp-protocol-version");
        header && !is_legacy_version(*header))
      return fail(
          RpcError(rpc_code::invalid_request,
                   "Bad Request: unsupported MCP-Protocol-Version '" + header->substr(0, 40) + "'"),
          true);
    const std::string* session_id = request.header("mcp-session-id");
    if (!session_id)
      return fail(RpcError(rpc_code::invalid_params,
                           "Bad Request: no Mcp-Session-Id header; send initialize first (or, "
                           "for protocol 2026-07-28, name it in params._meta)"),
                  true);
    std::shared_ptr<SessionEntry> entry = find_session(*session_id);
    if (!entry)
      return respond_json(connection, 404,
                          error_response(in.id, rpc_code::invalid_request,
                                         "Not Found: unknown or ended session; initialize again"),
                          {}, keep_alive);
    return run_call(connection, request, in, entry, keep_alive, false);
  }

  // The -32020 error for a modern request whose headers do not mirror its body.
  static std::optional<RpcError> header_mismatch(const http::Request& request, const Incoming& in,
                                                 const std::string& version) {
    const auto mismatch = [](const std::string& what) {
      return RpcError(rpc_code::header_mismatch, "Header mismatch: " + what);
    };
    const std::string* protocol = request.header("mcp-protocol-version");
    if (!protocol) return mismatch("the MCP-Protocol-Version header is missing");
    if (*protocol != version)
      return mismatch("MCP-Protocol-Version header '" + protocol->substr(0, 40) +
                      "' does not match the body's '" + version.substr(0, 40) + "'");
    const std::string* method = request.header("mcp-method");
    if (!method) return mismatch("the Mcp-Method header is missing");
    if (*method != in.method) return mismatch("Mcp-Method header does not match the body's method");
    if (in.method == "tools/call") {
      const std::string* name = request.header("mcp-name");
      const auto body_name = in.params.find("name");
      if (!name) return mismatch("the Mcp-Name header is missing");
      if (body_name == in.params.end() || !body_name->is_string() ||
          header_value(*name) != body_name->get_ref<const std::string&>())
        return mismatch("Mcp-Name header does not match the body's params.name");
    }
    return std::nullopt;
  }

  bool run_call(http::Connection& connection, const http::Request& request, const Incoming& in,
                const std::shared_ptr<SessionEntry>& entry, bool keep_alive, bool modern) {
    auto cancelled = std::make_shared<std::atomic<bool>>(false);
    const std::string key = id_key(in.id);
    Session session;
    if (entry) {
      std::lock_guard<std::mutex> lock(sessions_mutex_);
      session = entry->session;
      entry->waiters[key] = cancelled;
    }
    struct Unregister {
      HttpServer& server;
      const std::shared_ptr<SessionEntry>& entry;
      const std::string& key;
      ~Unregister() {
        if (!entry) return;
        std::lock_guard<std::mutex> lock(server.sessions_mutex_);
        entry->waiters.erase(key);
      }
    } unregister{*this, entry, key};

    const bool waits = may_wait(in);
    const bool stream =
        waits && header_is(request, "accept", "text/event-stream") && has_progress_token(in);
    bool streaming = false;
    Exchange exchange;
    if (stream) {
      exchange.notify = [&](const json& note) {
        if (!streaming) streaming = connection.start_events({});
        if (streaming) connection.send_event(dump(note));
      };
    }
    exchange.cancelled = [&] { return cancelled->load() || (waits && connection.peer_closed()); };

    json response;
    int status = 200;
    try {
      response = result_response(in.id, protocol_.handle(in, entry ? &session : nullptr, exchange));
    } catch (const RpcError& error) {
      response = error_response(in.id, error);
      status = Protocol::status_for(error.code(), modern);
    } catch (const Cancelled& cancel) {
      response = error_response(in.id, rpc_code::internal_error, cancel.what());
    } catch (const std::exception& error) {
      response = error_response(in.id, rpc_code::internal_error, error.what());
      status = 500;
    }
    const bool delivered =
        streaming ? connection.send_event(dump(response))
                  : respond_json(connection, streaming ? 200 : status, response, {}, keep_alive);
    if (!delivered) release_undelivered(in, response);
    return delivered && !streaming;
  }

  static bool has_progress_token(const Incoming& in) {
    const auto meta = in.params.find("_meta");
    return meta != in.params.end() && meta->is_object() && meta->contains("progressToken");
  }

  // A lock whose lock_id never reached the client would block everyone until its TTL.
  void release_undelivered(const Incoming& in, const json& response) {
    const auto result = response.find("result");
    if (result == response.end() || in.params.value("name", "") != "lock_file") return;
    protocol_.tools().give_back(result->value("structuredContent", json::object()));
  }

  void on_notification(const http::Request& request, const Incoming& in) {
    if (in.kind != Incoming::Kind::notification) return;  // responses: we sent no requests
    const std::string* session_id = request.header("mcp-session-id");
    if (!session_id) return;
    std::lock_guard<std::mutex> lock(sessions_mutex_);
    const auto found = sessions_.find(*session_id);
    if (found == sessions_.end()) return;
    if (in.method == "notifications/initialized") {
      found->second->session.initialized_notified = true;
    } else if (in.method == "notifications/cancelled") {
      const auto id = in.params.find("requestId");
      if (id == in.params.end()) return;
      const auto waiter = found->second->waiters.find(id_key(*id));
      if (waiter != found->second->waiters.end()) waiter->second->store(true);
    }
  }

  bool end_session(http::Connection& connection, const http::Request& request, bool keep_alive) {
    const std::string* session_id = request.header("mcp-session-id");
    if (!session_id) return connection.respond(405, {{"Allow", "POST, DELETE"}}, "", keep_alive);
    bool found = false;
    {
      std::lock_guard<std::mutex> lock(sessions_mutex_);
      const auto it = sessions_.find(*session_id);
      if (it != sessions_.end()) {
        for (auto& waiter : it->second->waiters) waiter.second->store(true);
        sessions_.erase(it);
        found = true;
      }
    }
    return connection.respond(found ? 200 : 404, {}, "", keep_alive);
  }

  void add_session(const std::string& id, Session session) {
    auto entry = std::make_shared<SessionEntry>();
    entry->session = std::move(session);
    std::lock_guard<std::mutex> lock(sessions_mutex_);
    entry->last_used = ++use_counter_;
    if (sessions_.size() >= kMaxSessions) {  // forget the least recently used
      auto oldest = sessions_.begin();
      for (auto it = sessions_.begin(); it != sessions_.end(); ++it)
        if (it->second->last_used < oldest->second->last_used) oldest = it;
      sessions_.erase(oldest);
    }
    sessions_.emplace(id, std::move(entry));
  }

  std::shared_ptr<SessionEntry> find_session(const std::string& id) {
    std::lock_guard<std::mutex> lock(sessions_mutex_);
    const auto found = sessions_.find(id);
    if (found == sessions_.end()) return nullptr;
    found->second->last_used = ++use_counter_;
    return found->second;
  }

  Protocol& protocol_;
  const HttpOptions options_;
  const TransportLimits limits_;
  unsigned short bound_port_ = 0;
  std::atomic<std::size_t> connections_{0};
  std::mutex sessions_mutex_;
  std::map<std::string, std::shared_ptr<SessionEntry>> sessions_;
  std::uint64_t use_counter_ = 0;
};

}  // namespace

int serve_http(Protocol& protocol, const HttpOptions& options, const TransportLimits& limits) {
  HttpServer server(protocol, options, limits);
  return server.run();
}

}  // namespace leaselock::cli::mcp
