// The Conan package test's program: the umbrella header compiles from the package, and a
// lease is granted, refused to another request while held, and granted again (with a
// higher fence) once released. Exits 0 then.
#include <chrono>
#include <cstdint>
#include <cstdio>

#include <leaselock/leaselock.hpp>

int main() {
  using leaselock::Mode;
  const auto ttl = std::chrono::seconds(5);
  leaselock::local_lock_manager locks;
  auto lease = locks.try_acquire("test_package/key", Mode::exclusive, ttl);
  const std::uint64_t first_fence = lease.fence();
  const bool refused = !locks.try_acquire("test_package/key", Mode::shared, ttl);
  const bool released = lease.release();
  auto again = locks.try_acquire("test_package/key", Mode::exclusive, ttl);
  const bool ok = first_fence > 0 && refused && released && again && again.fence() > first_fence;
  std::printf("leaselock %d: %s\n", LEASELOCK_VERSION, ok ? "works" : "FAILED");
  return ok ? 0 : 1;
}
