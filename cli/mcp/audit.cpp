// cli/mcp/audit.cpp — see audit.hpp.
#include "audit.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "../json_out.hpp"
#include "../timestamps.hpp"

namespace leaselock::cli::mcp {

AuditLog::AuditLog(const std::string& path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd_ < 0)
    throw std::runtime_error("cannot open the audit log '" + path + "': " + std::strerror(errno));
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);
}

void AuditLog::write(const Entry& entry) noexcept {
  try {
    nlohmann::ordered_json line = nlohmann::ordered_json::object();
    line["time"] = rfc3339_utc(std::chrono::system_clock::now());
    line["event"] = std::string(entry.event);
    line["path"] = std::string(entry.path);
    if (entry.mode) line["mode"] = mode_name(*entry.mode, ModeWords::read_write);
    if (!entry.owner.empty()) line["owner"] = std::string(entry.owner);
    if (entry.fence != 0) line["fence"] = entry.fence;
    if (entry.waited)
      line["waited_ms"] =
          std::chrono::duration_cast<std::chrono::milliseconds>(*entry.waited).count();
    line["pid"] = static_cast<long long>(::getpid());
    // Keys may hold any bytes: replace what is not UTF-8 rather than lose the line.
    std::string text = line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    text += '\n';
    // One write: O_APPEND places it whole at the end, whoever else appends.
    const ssize_t written = ::write(fd_, text.data(), text.size());
    if (written != static_cast<ssize_t>(text.size()) && !reported_failure_.exchange(true)) {
      std::fprintf(stderr, "leaselock mcp: cannot write the audit log: %s\n",
                   written < 0 ? std::strerror(errno) : "short write");
    }
  } catch (...) {
  }
}

void AuditLog::on_event(const LockEvent& event) {
  switch (event.kind) {
    case LockEventKind::released:
    case LockEventKind::renewed:
    case LockEventKind::expired: break;
    default: return;  // acquisitions and time-outs: logged per tool call
  }
  Entry entry;
  entry.event = to_string(event.kind);
  entry.path = event.key;
  entry.mode = &event.mode;
  entry.owner = event.owner;
  entry.fence = event.fence;
  write(entry);
}

}  // namespace leaselock::cli::mcp
