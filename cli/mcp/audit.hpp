// cli/mcp/audit.hpp — the audit log (--audit-log FILE): one JSON object per line per event.
//
// Events: acquired (with waited_ms), refused (a one-try lock_file found the key busy),
// timed_out (a waiting lock_file gave up), cancelled (the client withdrew a wait),
// released, renewed, expired (a lease whose TTL ran out, logged when this server notices
// it). Each line has "time" (RFC 3339 UTC), "event", "path", and what is known of "mode",
// "owner", "fence"; never a lock_id. Several servers may append to one file: it is opened
// with O_APPEND and each line goes out in one write(2), so lines never interleave.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <leaselock/mode.hpp>
#include <leaselock/observer.hpp>

namespace leaselock::cli::mcp {

class AuditLog final : public Observer {
 public:
  /// Opens (creating it 0600 if missing) `path` for appending. Throws std::runtime_error
  /// with the reason if it cannot.
  explicit AuditLog(const std::string& path);
  ~AuditLog() override;
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  struct Entry {
    std::string_view event;
    std::string_view path;
    const Mode* mode = nullptr;
    std::string_view owner;
    std::uint64_t fence = 0;  // 0: not known or none
    const std::chrono::nanoseconds* waited = nullptr;
  };
  /// Appends one line. Never throws; a failed write is reported once on stderr.
  void write(const Entry& entry) noexcept;

  /// Observer: released, renewed and expired come from the manager (which knows the
  /// holder's owner and fence); acquisitions are logged by the tools, per call.
  void on_event(const LockEvent& event) override;

 private:
  int fd_ = -1;
  std::atomic<bool> reported_failure_{false};
};

}  // namespace leaselock::cli::mcp
