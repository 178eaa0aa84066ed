// cli/mcp/mcp_command.cpp — `leaselock mcp`: the MCP server's options and start-up.
//
//   leaselock mcp [COMMON] [--http HOST:PORT] [--audit-log FILE] [--auth-token-file FILE]
//
// Without --http it serves stdio until stdin closes; with it, Streamable HTTP at
// http://HOST:PORT/mcp until killed (PORT 0: any free port, named on stderr). A host
// other than a loopback address needs --auth-token-file.
#include "mcp_command.hpp"

#include <signal.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "../backend.hpp"
#include "../errors.hpp"
#include "../options.hpp"
#include "audit.hpp"
#include "protocol.hpp"
#include "tools.hpp"
#include "transports.hpp"

namespace leaselock::cli {

namespace {

const char* const kHelp =
    "usage: leaselock mcp [COMMON] [--http HOST:PORT] [--audit-log FILE]\n"
    "                     [--auth-token-file FILE]\n"
    "\n"
    "An MCP server giving AI agents file locks as tools: lock_file, unlock_file,\n"
    "renew_lock, check_lock_status, list_locks. Leases live in the lock directory (or the\n"
    "PostgreSQL database) and belong to their lock_id: every agent may run its own server.\n"
    "\n"
    "  (default)                serve one client on stdin/stdout (logs on stderr)\n"
    "  --http HOST:PORT         serve Streamable HTTP at http://HOST:PORT/mcp\n"
    "                           (e.g. 127.0.0.1:8765; port 0 picks a free one)\n"
    "  --audit-log FILE         append one JSON line per lock event to FILE\n"
    "  --auth-token-file FILE   HTTP: require 'Authorization: Bearer <token in FILE>'\n"
    "Locks are owned by lock_file's owner argument, else --owner, else the client's\n"
    "name and this server's PID@HOST. --json changes nothing here.\n";

struct HostPort {
  std::string host;
  unsigned short port = 0;
};

HostPort parse_host_port(const std::string& text) {
  const auto bad = [&] {
    return UsageError("--http needs HOST:PORT (e.g. 127.0.0.1:8765 or [::1]:8765), not '" + text +
                      "'");
  };
  std::string host;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    const auto close = text.find("]:");
    if (close == std::string::npos) throw bad();
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) throw bad();
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty() || port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) > 65535)
    throw bad();
  return HostPort{host, static_cast<unsigned short>(std::stoul(port))};
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.compare(0, 4, "127.") == 0;
}

std::string read_token(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw UsageError("cannot read --auth-token-file '" + path + "'");
  std::stringstream text;
  text << file.rdbuf();
  std::string token = text.str();
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' '))
    token.pop_back();
  if (token.empty() || token.find_first_of(" \t\r\n") != std::string::npos)
    throw UsageError("--auth-token-file '" + path +
                     "' must hold one token (no spaces), e.g. from 'openssl rand -hex 32'");
  return token;
}

void announce(const std::string& host, unsigned short port) {
  const bool v6 = host.find(':') != std::string::npos;
  std::fprintf(stderr, "leaselock mcp: serving http://%s%s%s:%u/mcp\n", v6 ? "[" : "", host.c_str(),
               v6 ? "]" : "", static_cast<unsigned>(port));
  std::fflush(stderr);
}

}  // namespace

int mcp_command(const Args& args) {
  CommonOptions common;
  std::string http;
  std::string audit_path;
  std::string token_path;
  ArgParser parser("mcp", kHelp, common);
  parser.option({"--http"}, [&](const std::string& value) { http = value; });
  parser.option({"--audit-log"}, [&](const std::string& value) {
    if (value.empty()) throw UsageError("--audit-log needs a file path");
    audit_path = value;
  });
  parser.option({"--auth-token-file"}, [&](const std::string& value) {
    if (value.empty()) throw UsageError("--auth-token-file needs a file path");
    token_path = value;
  });
  const std::optional<ParsedArgs> parsed = parser.parse(args);
  if (!parsed) return exit_code::ok;  // --help was printed
  if (!parsed->positional.empty() || parsed->dashes)
    throw parser.usage("unexpected argument '" +
                       (parsed->positional.empty() ? std::string("--") : parsed->positional[0]) +
                       "'");
  mcp::HttpOptions http_options;
  if (!http.empty()) {
    const HostPort where = parse_host_port(http);
    http_options.host = where.host;
    http_options.port = where.port;
    if (!token_path.empty()) http_options.bearer_token = read_token(token_path);
    if (!is_loopback(where.host) && http_options.bearer_token.empty())
      throw UsageError("--http on " + where.host +
                       " would serve other machines: use a loopback address (127.0.0.1), or "
                       "require a token with --auth-token-file FILE");
    http_options.on_listening = announce;
  } else if (!token_path.empty()) {
    throw UsageError("--auth-token-file is for --http (a stdio server serves its own client)");
  }

  std::unique_ptr<mcp::AuditLog> audit;
  if (!audit_path.empty()) {
    try {
      audit = std::make_unique<mcp::AuditLog>(audit_path);
    } catch (const std::runtime_error& error) {
      throw UsageError(error.what());
    }
  }
  // The storage is opened (the server reached) before serving: a server that cannot be
  // used fails at start, as every other subcommand does.
  return with_manager(common, {}, [&](auto& manager) {
    manager.set_observer(audit.get());
    const std::unique_ptr<mcp::LockTools> tools = mcp::make_lock_tools(
        manager, !common.owner.empty(), audit.get(), ConnectionSecrets(common.postgres));
    mcp::Protocol protocol(*tools);
    ::signal(SIGPIPE, SIG_IGN);
    const mcp::TransportLimits limits;
    if (http.empty()) return mcp::serve_stdio(protocol, limits);
    try {
      return mcp::serve_http(protocol, http_options, limits);
    } catch (const std::runtime_error& error) {
      throw StorageUnavailable(error.what());
    }
  });
}

}  // namespace leaselock::cli
