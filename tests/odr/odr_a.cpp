#include <leaselock/leaselock.hpp>

#include "odr.hpp"

namespace odr_test {

bool exclusive_lease_in_a() {
  leaselock::LockManager<std::chrono::steady_clock, leaselock::InProcessBackend> manager;
  auto lease = manager.try_acquire("odr/a", leaselock::Mode::exclusive, std::chrono::seconds(5));
  return lease && lease.fence() > 0 && lease.release();
}

}  // namespace odr_test
