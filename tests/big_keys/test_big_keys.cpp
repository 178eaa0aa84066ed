// FileBackend built with a key limit larger than its default mapping (this program is
// compiled with -DLEASELOCK_MAX_KEY_SIZE=3 MiB): keys of every size up to the limit are
// stored, read back and listed whole, and nothing is written outside a record's mapping.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include <leaselock/leaselock.hpp>

#include "../support.hpp"

static_assert(leaselock::max_key_size == 3u << 20, "built with a 3 MiB key limit");

using namespace std::chrono_literals;

TEST_CASE("big keys: FileBackend stores keys up to a raised LEASELOCK_MAX_KEY_SIZE whole") {
  test::TempDir temp;
  leaselock::LockManager<leaselock::ManualClock, leaselock::FileBackend> locks{
      leaselock::FileBackend{temp.sub("locks")}};
  std::vector<leaselock::Lease<leaselock::ManualClock>> leases;
  std::vector<std::string> keys;
  for (const std::size_t size :
       {std::size_t{5000}, std::size_t{1} << 20, std::size_t{2} << 20, leaselock::max_key_size}) {
    std::string key(size, 'k');
    key.back() = static_cast<char>('0' + keys.size());
    keys.push_back(key);
    leases.push_back(locks.try_acquire(key, leaselock::Mode::shared, 10s));
    REQUIRE(leases.back());
    leases.push_back(locks.try_acquire(key, leaselock::Mode::shared, 10s));  // a second holder
    REQUIRE(leases.back());
  }
  const auto listed = locks.list();
  REQUIRE(listed.size() == keys.size());
  for (const std::string& key : keys) {
    const auto status = locks.status(key);
    REQUIRE(status);
    CHECK(status->key == key);
    CHECK(status->holders.size() == 2);
  }
  for (auto& lease : leases) CHECK(lease.release());
  for (const std::string& key : keys) {
    auto again = locks.try_acquire(key, leaselock::Mode::exclusive, 10s);
    CHECK(again);
  }
}
