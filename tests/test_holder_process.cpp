// Binding leases to processes (HolderProcess, LockManager::bind, Lease::detach(process)):
// what every backend does alike. What FileBackend does with a binding when processes end
// is in test_file_liveness.cpp.
#include <unistd.h>

#include <stdexcept>

#include "process.hpp"
#include "support.hpp"

using namespace std::chrono_literals;
using leaselock::HolderProcess;
using leaselock::Mode;
using leaselock::Token;
using test::Harness;

TEST_CASE("HolderProcess names this process or another one or none") {
  CHECK(HolderProcess::this_process().kind() == HolderProcess::Kind::this_process);
  CHECK(HolderProcess::this_process().pid() == ::getpid());
  CHECK(HolderProcess::none().kind() == HolderProcess::Kind::none);
  CHECK(HolderProcess::none().pid() == 0);
  CHECK(HolderProcess::of(::getpid()) == HolderProcess::this_process());
  const HolderProcess parent = HolderProcess::of(::getppid());
  CHECK(parent.kind() == HolderProcess::Kind::other_process);
  CHECK(parent.pid() == ::getppid());
  CHECK(parent != HolderProcess::none());
}

TEST_CASE("HolderProcess::of refuses pids that name no process") {
  CHECK_THROWS_WITH_AS(HolderProcess::of(0), "leaselock: pid must be a process id > 0 (got 0)",
                       std::invalid_argument);
  CHECK_THROWS_AS(HolderProcess::of(-5), std::invalid_argument);
  CHECK_THROWS_AS(HolderProcess::of(std::int64_t{1} << 40), std::invalid_argument);
  test::Child gone([](auto) { return 0; });
  REQUIRE(gone.wait() == 0);  // reaped: its pid names nobody now
  CHECK_THROWS_WITH_AS(
      HolderProcess::of(gone.pid()),
      ("leaselock: no process with pid " + std::to_string(gone.pid()) + " exists").c_str(),
      std::invalid_argument);
}

TEST_CASE_TEMPLATE("bind() answers whether the token holds the key now", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  Harness<Setup> h;
  auto lease = h.locks.try_acquire("doc", Mode::exclusive, 10s);
  REQUIRE(lease);
  CHECK(h.locks.bind("doc", lease.token(), HolderProcess::none()));
  CHECK(h.locks.bind("doc", lease.token(), HolderProcess::this_process()));
  CHECK(h.locks.bind("doc", lease.token(), HolderProcess::of(::getppid())));
  CHECK_FALSE(h.locks.bind("doc", Token::generate(), HolderProcess::none()));
  CHECK_FALSE(h.locks.bind("other", lease.token(), HolderProcess::none()));
  CHECK_THROWS_AS((void)h.locks.bind("", lease.token(), HolderProcess::none()),
                  std::invalid_argument);
  h.clock.advance(10s);  // expired: no longer held
  CHECK_FALSE(h.locks.bind("doc", lease.token(), HolderProcess::none()));
  auto next = h.locks.try_acquire("doc", Mode::exclusive, 10s);
  REQUIRE(next);
  CHECK(next.release());
  CHECK_FALSE(h.locks.bind("doc", next.token(), HolderProcess::none()));  // released
  CHECK_FALSE(h.locks.status("doc"));  // a refused bind leaves nothing behind
}

TEST_CASE_TEMPLATE("a lease bound to no process keeps its token and renewal and TTL", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  Harness<Setup> h;
  auto lease = h.locks.try_acquire("doc", Mode::exclusive, 10s);
  REQUIRE(lease);
  const std::uint64_t fence = lease.fence();
  const Token token = lease.detach(HolderProcess::none());
  CHECK(token == Token::parse(token.to_string()));
  CHECK(token.valid());
  CHECK_FALSE(lease);
  auto info = h.locks.status("doc");
  REQUIRE(info);
  REQUIRE(info->holders.size() == 1);
  CHECK(info->holders[0].token == token);
  CHECK(info->holders[0].fence == fence);
  CHECK_FALSE(h.locks.try_acquire("doc", Mode::shared, 10s));
  h.clock.advance(9s);
  CHECK(h.locks.renew("doc", token, 10s));  // to 19 s
  h.clock.advance(9s);
  CHECK_FALSE(h.locks.try_acquire("doc", Mode::exclusive, 10s));
  h.clock.advance(1s);  // its TTL ran out: free, bound to nobody or not
  auto next = h.locks.try_acquire("doc", Mode::exclusive, 10s);
  REQUIRE(next);
  CHECK(next.fence() > fence);
  CHECK_FALSE(h.locks.release("doc", token));
  // And one released by its token before its TTL.
  const Token again = next.detach(HolderProcess::none());
  CHECK(h.locks.release("doc", again));
  CHECK_FALSE(h.locks.status("doc"));
}

TEST_CASE_TEMPLATE("detach(process) of an empty or lost lease gives the zero token", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  Harness<Setup> h;
  typename Harness<Setup>::Manager::Lease empty;
  CHECK_FALSE(empty.detach(HolderProcess::none()).valid());
  auto lease = h.locks.try_acquire("doc", Mode::exclusive, 10s);
  REQUIRE(lease);
  REQUIRE(h.locks.release("doc", lease.token()));  // released elsewhere by its token
  CHECK_FALSE(lease.detach(HolderProcess::none()).valid());
  CHECK_FALSE(lease);
  auto other = h.locks.try_acquire("doc", Mode::exclusive, 10s);
  CHECK(other);
}
