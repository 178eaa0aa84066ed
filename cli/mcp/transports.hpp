// cli/mcp/transports.hpp — how MCP messages reach the Protocol: stdio (stdio.cpp) and
// Streamable HTTP (http.cpp), and what both share.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "json_rpc.hpp"
#include "protocol.hpp"

namespace leaselock::cli::mcp {

struct TransportLimits {
  /// Largest message accepted (a stdio line, an HTTP body).
  std::size_t max_message = 1u << 20;
  /// Largest HTTP request head (request line and headers).
  std::size_t max_head = 16u << 10;
  /// Time a client has to send a whole HTTP request once it has begun.
  std::chrono::milliseconds request_time{10000};
  /// An idle keep-alive HTTP connection is closed after this.
  std::chrono::milliseconds idle_time{30000};
  /// HTTP connections served at once; more are refused with 503.
  std::size_t max_connections = 64;
};

struct HttpOptions {
  std::string host;  // a numeric IPv4/IPv6 address or "localhost"
  unsigned short port = 0;
  /// Required as "Authorization: Bearer <token>" when not empty.
  std::string bearer_token;
  /// Written to once listening (the port actually bound, for --http HOST:0); may be null.
  void (*on_listening)(const std::string& host, unsigned short port) = nullptr;
};

/// Serves stdin/stdout until stdin closes. Returns the exit code.
int serve_stdio(Protocol& protocol, const TransportLimits& limits);

/// Serves HTTP on options.host:port, path /mcp, until killed. Throws std::runtime_error if
/// it cannot listen.
int serve_http(Protocol& protocol, const HttpOptions& options, const TransportLimits& limits);

// --- shared by both ----------------------------------------------------------------------

/// Parses one message; false if it is not JSON.
bool parse_message(std::string_view text, json& message);

/// Whether a request may wait (a lock_file with wait_seconds > 0): it then needs a thread
/// of its own so that the transport keeps reading.
bool may_wait(const Incoming& request);

/// The error answering a message over `limit` bytes (its id cannot be known).
json too_large_response(std::size_t limit);

/// Writes all of `data` to `fd` (a socket: without SIGPIPE); false if the peer is gone.
bool write_all(int fd, std::string_view data, bool socket);

}  // namespace leaselock::cli::mcp
