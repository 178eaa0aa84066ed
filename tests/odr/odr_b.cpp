#include <leaselock/leaselock.hpp>

#include "odr.hpp"

namespace odr_test {

bool shared_lease_in_b() {
  leaselock::LockManager<std::chrono::steady_clock, leaselock::InProcessBackend> manager;
  auto lease = manager.try_acquire("odr/b", leaselock::Mode::shared, std::chrono::seconds(5));
  if (!lease) return false;
  auto parsed = leaselock::Token::parse(lease.token().to_string());
  return parsed && *parsed == lease.token() && manager.status("odr/b").has_value();
}

}  // namespace odr_test
