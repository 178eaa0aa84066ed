// cli/mcp/http_wire.cpp — see http_wire.hpp.
#include "http_wire.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "transports.hpp"

namespace leaselock::cli::mcp::http {

namespace {

using Clock = std::chrono::steady_clock;

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t");
  return std::string(text.substr(first, last - first + 1));
}

// Parses the head (without its final blank line). False with a reason if malformed.
bool parse_head(std::string_view head, Request& request, std::string& reason) {
  std::size_t line_end = head.find("\r\n");
  const std::string_view first = head.substr(0, line_end);
  const auto space1 = first.find(' ');
  const auto space2 = first.rfind(' ');
  if (space1 == std::string_view::npos || space2 == space1) {
    reason = "malformed request line";
    return false;
  }
  request.method = std::string(first.substr(0, space1));
  std::string target(first.substr(space1 + 1, space2 - space1 - 1));
  const std::string_view version = first.substr(space2 + 1);
  if (version == "HTTP/1.1") {
    request.minor_version = 1;
  } else if (version == "HTTP/1.0") {
    request.minor_version = 0;
  } else {
    reason = "only HTTP/1.0 and HTTP/1.1 are served";
    return false;
  }
  target = target.substr(0, target.find('?'));
  request.target = std::move(target);
  while (line_end != std::string_view::npos) {
    const std::size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    const std::string_view line = head.substr(start, line_end - start);
    if (line.empty()) continue;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      reason = "malformed header line";
      return false;
    }
    const std::string name = lower(std::string(line.substr(0, colon)));
    if (name == "host" && request.headers.count(name)) {
      reason = "more than one Host header";
      return false;
    }
    std::string value = trim(line.substr(colon + 1));
    auto [it, inserted] = request.headers.emplace(name, value);
    if (!inserted) it->second += ", " + value;
  }
  return true;
}

std::string head_text(int status, const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string text = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) + "\r\n";
  for (const auto& [name, value] : headers) text += name + ": " + value + "\r\n";
  return text;
}

}  // namespace

const std::string* Request::header(const std::string& lower_name) const {
  const auto found = headers.find(lower_name);
  return found == headers.end() ? nullptr : &found->second;
}

Connection::~Connection() { ::close(fd_); }

bool Connection::read_request(Request& request, std::size_t max_head, std::size_t max_body,
                              std::chrono::milliseconds idle, std::chrono::milliseconds whole,
                              ReadFailure* failure) {
  request = Request{};
  *failure = ReadFailure{};
  Clock::time_point deadline = Clock::now() + idle;
  bool begun = !buffer_.empty();
  if (begun) deadline = Clock::now() + whole;
  // Reads more into buffer_ before the deadline; false on close, error or time-out.
  const auto fill = [&]() -> bool {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      if (begun) *failure = ReadFailure{408, "the request did not arrive in time"};
      return false;
    }
    pollfd pfd{fd_, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) return true;
    if (ready == 0) {
      if (begun) *failure = ReadFailure{408, "the request did not arrive in time"};
      return false;
    }
    char chunk[16384];
    const ssize_t got = ::recv(fd_, chunk, sizeof chunk, 0);
    if (got < 0 && errno == EINTR) return true;
    if (got <= 0) return false;
    if (!begun) {
      begun = true;
      deadline = Clock::now() + whole;
    }
    buffer_.append(chunk, static_cast<std::size_t>(got));
    return true;
  };

  std::size_t head_end;
  while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (buffer_.size() > max_head) {
      *failure =
          ReadFailure{431, "the request head is over " + std::to_string(max_head) + " bytes"};
      return false;
    }
    if (!fill()) return false;
  }
  if (head_end > max_head) {
    *failure = ReadFailure{431, "the request head is over " + std::to_string(max_head) + " bytes"};
    return false;
  }
  std::string reason;
  if (!parse_head(std::string_view(buffer_).substr(0, head_end), request, reason)) {
    *failure = ReadFailure{400, reason};
    return false;
  }
  buffer_.erase(0, head_end + 4);
  if (request.header("transfer-encoding")) {
    *failure = ReadFailure{411, "send the body with a Content-Length, not chunked"};
    return false;
  }
  std::size_t length = 0;
  if (const std::string* text = request.header("content-length")) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long value = std::strtoull(text->c_str(), &end, 10);
    if (text->empty() || *end != '\0' || errno != 0 || text->find('-') != std::string::npos) {
      *failure = ReadFailure{400, "malformed Content-Length"};
      return false;
    }
    if (value > max_body) {
      *failure =
          ReadFailure{413, "the body is over the limit of " + std::to_string(max_body) + " bytes"};
      return false;
    }
    length = static_cast<std::size_t>(value);
  }
  // curl, for one, waits a second for this before sending a body over 1 KiB.
  if (buffer_.size() < length) {
    const std::string* expect = request.header("expect");
    if (expect && lower(*expect) == "100-continue" &&
        !write_all(fd_, "HTTP/1.1 100 Continue\r\n\r\n", /*socket=*/true))
      return false;
  }
  while (buffer_.size() < length)
    if (!fill()) {
      if (failure->status == 0) failure->status = -1;  // closed mid-body: just close
      return false;
    }
  request.body = buffer_.substr(0, length);
  buffer_.erase(0, length);
  return true;
}

bool Connection::respond(int status,
                         const std::vector<std::pair<std::string, std::string>>& headers,
                         std::string_view body, bool keep_alive) {
  std::string text = head_text(status, headers);
  text += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  text += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  text.append(body.data(), body.size());
  return write_all(fd_, text, /*socket=*/true);
}

bool Connection::start_events(const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string text = head_text(200, headers);
  text +=
      "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"
      "Connection: close\r\n\r\n";
  return write_all(fd_, text, /*socket=*/true);
}

bool Connection::send_event(std::string_view data) {
  std::string text = "event: message\ndata: ";
  text.append(data.data(), data.size());
  text += "\n\n";
  return write_all(fd_, text, /*socket=*/true);
}

void Connection::drain_before_close(std::size_t max_bytes, std::chrono::milliseconds time) {
  ::shutdown(fd_, SHUT_WR);
  const Clock::time_point deadline = Clock::now() + time;
  std::size_t drained = 0;
  char chunk[16384];
  while (drained < max_bytes) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return;
    pollfd pfd{fd_, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return;
    const ssize_t got = ::recv(fd_, chunk, sizeof chunk, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return;
    drained += static_cast<std::size_t>(got);
  }
}

bool Connection::peer_closed() const {
  pollfd pfd{fd_, POLLRDHUP, 0};
  if (::poll(&pfd, 1, 0) <= 0) return false;
  return (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

const char* status_text(int status) {
  switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

}  // namespace leaselock::cli::mcp::http
