// cli/mcp/http_wire.hpp — the little HTTP/1.1 the MCP endpoint needs, on POSIX sockets.
//
// Requests with a Content-Length body (no chunked uploads), keep-alive, and responses
// with a body or an event stream. Our own, rather than a library: the `leaselock`
// command starts for every shell call, and linking an HTTP library would load its TLS
// and compression libraries into every one of them.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace leaselock::cli::mcp::http {

struct Request {
  std::string method;
  std::string target;  // the path, without the query
  int minor_version = 1;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  const std::string* header(const std::string& lower_name) const;
};

/// Why read_request() gave up, and the status to answer (0: just close).
struct ReadFailure {
  int status = 0;
  std::string reason;
};

class Connection {
 public:
  explicit Connection(int fd) : fd_(fd) {}
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Reads the next request: the idle wait for its first byte is at most `idle`, the
  /// whole of it must come within `whole`. False on failure (`*failure` says why; status
  /// 0 when the client closed or went quiet between requests).
  bool read_request(Request& request, std::size_t max_head, std::size_t max_body,
                    std::chrono::milliseconds idle, std::chrono::milliseconds whole,
                    ReadFailure* failure);

  /// Writes a response with `body`; false if the client is gone.
  bool respond(int status, const std::vector<std::pair<std::string, std::string>>& headers,
               std::string_view body, bool keep_alive);
  /// Starts a text/event-stream response (ended by closing the connection).
  bool start_events(const std::vector<std::pair<std::string, std::string>>& headers);
  /// Sends one event of a stream begun with start_events.
  bool send_event(std::string_view data);

  /// Closes our side and reads what the client still sends (up to `max_bytes`, for at
  /// most `time`) before the connection is closed, so that a client still writing a
  /// refused request's body reads the answer instead of a reset.
  void drain_before_close(std::size_t max_bytes, std::chrono::milliseconds time);

  /// True once the client has closed its side (or reset the connection). Does not block.
  bool peer_closed() const;
  int fd() const noexcept { return fd_; }

 private:
  int fd_;
  std::string buffer_;  // bytes read past the last request
};

const char* status_text(int status);

}  // namespace leaselock::cli::mcp::http
