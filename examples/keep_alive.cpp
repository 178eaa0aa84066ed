// A long job keeps its lease alive in the background, and stops writing the moment the
// lease is lost — here because an operator force-releases it by token mid-job (a paused
// process whose TTL ran out is told the same way).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include <leaselock/leaselock.hpp>

int main() {
  using namespace std::chrono_literals;
  leaselock::local_lock_manager locks;

  auto lease = locks.try_acquire("index/rebuild", leaselock::Mode::exclusive, 600ms);
  if (!lease) return 1;
  std::atomic<bool> told_lost{false};
  lease.keep_alive([&] { told_lost = true; }, 150ms);  // renew every 150 ms for 600 ms

  // The job runs for 1.5 s — more than two TTLs — writing one chunk every 50 ms.
  int chunks = 0;
  const auto job_end = std::chrono::steady_clock::now() + 1500ms;
  while (std::chrono::steady_clock::now() < job_end && !lease.lost()) {
    ++chunks;
    std::this_thread::sleep_for(50ms);
  }
  const bool held_through = !lease.lost() && locks.status("index/rebuild").has_value();
  std::printf("job wrote %d chunks over 1.5 s under a 600 ms lease: %s\n", chunks,
              held_through ? "still held" : "LOST");

  // An operator frees the key by token; the keep-alive notices at its next renewal.
  (void)locks.release("index/rebuild", lease.token());
  const auto give_up = std::chrono::steady_clock::now() + 2s;
  int chunks_after = 0;
  while (!lease.lost() && std::chrono::steady_clock::now() < give_up) {
    ++chunks_after;  // still writing, blind, until told
    std::this_thread::sleep_for(10ms);
  }
  std::printf("lease lost after a force-release: %s (callback: %s, %d chunks written meanwhile)\n",
              lease.lost() ? "detected" : "NOT detected", told_lost ? "called" : "not called",
              chunks_after);
  return held_through && lease.lost() && told_lost ? 0 : 1;
}
