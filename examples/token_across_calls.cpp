// The pattern of an agent tool server: one request takes a lock and answers with a
// token; a later, separate request releases (or renews) it with that token. The RAII
// guard must not release at the end of the first request, so the handler detach()es it.
//
// Here the "requests" are plain function calls that pass only strings, as JSON would.
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

#include <leaselock/leaselock.hpp>

namespace {

using namespace std::chrono_literals;

leaselock::local_lock_manager locks;

// lock_file(path, agent) -> token text, or nothing if the file is busy for 100 ms.
std::optional<std::string> lock_file(const std::string& path, const std::string& agent) {
  auto lease = locks.try_acquire(path, leaselock::Mode::exclusive, 60s, 100ms, agent);
  if (!lease) return std::nullopt;
  std::printf("  lock_file(%s) by %s: fence %llu\n", path.c_str(), agent.c_str(),
              static_cast<unsigned long long>(lease.fence()));
  return lease.detach().to_string();  // the lease outlives this call
}

// unlock_file(path, token text) -> whether the caller still held it.
bool unlock_file(const std::string& path, const std::string& token_text) {
  const auto token = leaselock::Token::parse(token_text);
  if (!token) {
    std::printf("  unlock_file(%s): malformed token\n", path.c_str());
    return false;
  }
  return locks.release(path, *token);
}

// check_lock_status(path) -> who holds it.
void check_lock_status(const std::string& path) {
  if (auto info = locks.status(path)) {
    const auto& holder = info->holders.front();
    std::printf("  %s: held %s by %s\n", path.c_str(), std::string(to_string(info->mode)).c_str(),
                holder.owner.c_str());
  } else {
    std::printf("  %s: free\n", path.c_str());
  }
}

}  // namespace

int main() {
  const std::string path = "/workspace/src/parser.cpp";
  std::printf("request 1 (agent-a)\n");
  const auto token = lock_file(path, "agent-a");
  if (!token) return 1;
  check_lock_status(path);

  std::printf("request 2 (agent-b)\n");
  const bool b_got_it = lock_file(path, "agent-b").has_value();
  std::printf("  agent-b %s\n", b_got_it ? "got it (wrong!)" : "was told the file is busy");

  std::printf("request 3 (agent-b tries agent-a's path with a forged token)\n");
  const bool forged = unlock_file(path, leaselock::Token::generate().to_string());
  std::printf("  forged release %s\n", forged ? "worked (wrong!)" : "refused");
  const bool garbage = unlock_file(path, "not-a-token");

  std::printf("request 4 (agent-a releases with its token)\n");
  const bool released = unlock_file(path, *token);
  std::printf("  released: %s\n", released ? "yes" : "no");
  check_lock_status(path);
  return (!b_got_it && !forged && !garbage && released) ? 0 : 1;
}
