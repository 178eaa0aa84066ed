// The whole of an outside project's code: it takes one lease and exits 0 on success.
#include <leaselock/leaselock.hpp>

int main() {
  leaselock::LockManager<std::chrono::steady_clock, leaselock::InProcessBackend> m;
  auto lease = m.try_acquire("consumer/key", leaselock::Mode::exclusive, std::chrono::seconds(5));
  return lease && lease.fence() > 0 ? 0 : 1;
}
