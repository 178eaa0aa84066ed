// cli/mcp/transports.cpp — what the stdio and HTTP transports share. See transports.hpp.
#include "transports.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace leaselock::cli::mcp {

bool parse_message(std::string_view text, json& message) {
  message = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  return !message.is_discarded();
}

bool may_wait(const Incoming& request) {
  if (request.method != "tools/call") return false;
  const auto name = request.params.find("name");
  if (name == request.params.end() || *name != "lock_file") return false;
  const auto arguments = request.params.find("arguments");
  if (arguments == request.params.end() || !arguments->is_object()) return false;
  const auto wait = arguments->find("wait_seconds");
  return wait != arguments->end() && wait->is_number() && wait->get<double>() > 0;
}

json too_large_response(std::size_t limit) {
  return error_response(
      nullptr, rpc_code::invalid_request,
      "Invalid Request: message over the limit of " + std::to_string(limit) + " bytes");
}

bool write_all(int fd, std::string_view data, bool socket) {
  while (!data.empty()) {
    const ssize_t wrote = socket ? ::send(fd, data.data(), data.size(), MSG_NOSIGNAL)
                                 : ::write(fd, data.data(), data.size());
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(wrote));
  }
  return true;
}

}  // namespace leaselock::cli::mcp
