// The in-process library on Windows: built with MinGW-w64 by windows_cross.cmake and, where
// wine is installed, run there. Exits 0 when every check holds; otherwise prints the
// first failed check and exits 1.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>

#include <leaselock/leaselock.hpp>

#if LEASELOCK_HAS_FILE_BACKEND
#error "leaselock.hpp must not offer FileBackend on Windows"
#endif

namespace {

using namespace std::chrono_literals;
using leaselock::Mode;

int failures = 0;

void check(bool ok, const char* what) {
  if (ok) return;
  std::printf("FAILED: %s\n", what);
  ++failures;
}

void manual_clock_expiry_and_fences() {
  leaselock::ManualClock clock;
  leaselock::LockManager<leaselock::ManualClock, leaselock::InProcessBackend> locks{{}, clock};
  auto first = locks.try_acquire("C:\\work\\file.txt", Mode::exclusive, 10s);
  check(static_cast<bool>(first), "a free key is granted");
  check(!locks.try_acquire("C:\\work\\file.txt", Mode::shared, 10s), "a held key is refused");
  clock.advance(11s);
  auto second = locks.try_acquire("C:\\work\\file.txt", Mode::exclusive, 10s);
  check(static_cast<bool>(second), "an expired lease stops counting");
  check(second.fence() > first.fence(), "fences increase");
  check(!first.renew(10s), "an expired lease cannot be renewed");
  const auto info = locks.status("C:\\work\\file.txt");
  check(info && info->holders.size() == 1, "status shows the one holder");
  check(info && info->holders[0].owner.rfind("process-", 0) == 0,
        "the default owner names this process");
}

void detached_lease_bound_to_no_process() {
  leaselock::local_lock_manager locks;
  auto lease = locks.try_acquire("job/42", Mode::exclusive, 60s);
  const auto token = lease.detach(leaselock::HolderProcess::none());
  check(!lease, "a detached guard is empty");
  check(static_cast<bool>(locks.status("job/42")), "a detached lease stays held");
  check(locks.release("job/42", token), "its token releases it");
  check(leaselock::HolderProcess::this_process().pid() > 0, "this process has an id");
}

void tokens() {
  const auto a = leaselock::Token::generate();
  const auto b = leaselock::Token::generate();
  check(!(a == b), "two tokens differ");
  const auto parsed = leaselock::Token::parse(a.to_string());
  check(parsed && *parsed == a, "a token parses back");
}

void named_mutex_with_std_locks() {
  leaselock::local_lock_manager locks;
  auto mutex = locks.mutex("inventory", 30s);
  {
    std::unique_lock<decltype(mutex)> write(mutex);
    check(write.owns_lock(), "unique_lock takes an exclusive lease");
    check(!locks.try_acquire("inventory", Mode::shared, 1s), "it excludes readers");
  }
  std::shared_lock<decltype(mutex)> read(mutex);
  check(read.owns_lock(), "shared_lock takes a shared lease");
  check(static_cast<bool>(locks.try_acquire("inventory", Mode::shared, 1s)), "readers share");
}

void a_waiter_wakes_on_release() {
  leaselock::local_lock_manager locks;
  auto held = locks.try_acquire("queue", Mode::exclusive, 60s);
  std::atomic<bool> granted{false};
  std::thread waiter([&] {
    auto lease = locks.try_acquire("queue", Mode::exclusive, 60s, 30s);
    granted = static_cast<bool>(lease);
  });
  std::this_thread::sleep_for(50ms);
  check(!granted, "the waiter waits while the key is held");
  check(held.release(), "the holder releases");
  waiter.join();
  check(granted, "the waiter gets the key after the release");
}

}  // namespace

int main() {
  manual_clock_expiry_and_fences();
  tokens();
  detached_lease_bound_to_no_process();
  named_mutex_with_std_locks();
  a_waiter_wakes_on_release();
  if (failures == 0) std::printf("windows program: every check passed\n");
  return failures == 0 ? 0 : 1;
}
