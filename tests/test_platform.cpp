// The platform layer (detail/platform.hpp): Linux gets detail/posix/; the std-only
// detail/portable/ variant other systems get is checked here too, against the native
// code, as are the portable forms of the compiler-specific arithmetic.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <random>
#include <string>

#include <leaselock/detail/csprng.hpp>
#include <leaselock/detail/hash.hpp>
#include <leaselock/detail/platform.hpp>
#include <leaselock/detail/portable/fork.hpp>
#include <leaselock/detail/portable/process.hpp>
#include <leaselock/detail/portable/random.hpp>
#include <leaselock/detail/posix/sigbus_guard.hpp>

#include "process.hpp"
#include "support.hpp"

namespace detail = leaselock::detail;

TEST_CASE("on Linux the platform layer is the POSIX one, and FileBackend is offered") {
  CHECK(LEASELOCK_HAS_FILE_BACKEND == 1);
  CHECK((&detail::platform::fill_random == &detail::posix::fill_random));
  CHECK((&detail::platform::fork_generation == &detail::posix::fork_generation));
  CHECK((&detail::platform::process_owner == &detail::posix::process_owner));
  CHECK((&detail::platform::current_pid == &detail::posix::current_pid));
  CHECK((&detail::platform::process_exists == &detail::posix::process_exists));
}

TEST_CASE("the portable 128-bit product agrees with the native one") {
  const std::uint64_t max = ~std::uint64_t{0};
  // (2^64 - 1)^2 = 2^128 - 2^65 + 1: high half 2^64 - 2, low half 1.
  CHECK(detail::fold_multiply_portable(max, max) == ((max - 1) ^ 1));
  CHECK(detail::fold_multiply_portable(0, max) == 0);
  CHECK(detail::fold_multiply_portable(1, max) == max);
  CHECK(detail::fold_multiply_portable(std::uint64_t{1} << 32, std::uint64_t{1} << 32) == 1);
  std::mt19937_64 numbers(7);
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t a = numbers() >> (i % 64), b = numbers();
    CAPTURE(a);
    CAPTURE(b);
    REQUIRE(detail::fold_multiply_portable(a, b) == detail::fold_multiply(a, b));
  }
}

TEST_CASE("the portable ChaCha lanes compute the same blocks as the vector ones") {
  std::uint32_t key[8];
  for (std::uint32_t w = 0; w < 8; ++w) key[w] = 0x9e3779b9u * (w + 1);
  for (const std::uint64_t counter :
       {std::uint64_t{0}, std::uint64_t{0xfffffffeu}, ~std::uint64_t{0}}) {
    std::array<std::uint32_t, 64> vector{}, plain{};
    detail::chacha_four_blocks<12, detail::Lanes>(key, counter, 5, vector.data());
    detail::chacha_four_blocks<12, detail::PlainLanes>(key, counter, 5, plain.data());
    CAPTURE(counter);
    CHECK(vector == plain);
  }
}

TEST_CASE("the portable random source fills every byte asked for") {
  // 64 random bytes are all zero, or equal to the next 64, with probability 2^-512.
  std::array<unsigned char, 64> first{}, second{};
  detail::portable::fill_random(first.data(), first.size());
  detail::portable::fill_random(second.data(), second.size());
  CHECK(first != std::array<unsigned char, 64>{});
  CHECK(first != second);
  // A size that is not a multiple of the device's 4-byte words: the byte after it stays.
  std::array<unsigned char, 8> odd{};
  odd.fill(0xa5);
  for (int attempt = 0; attempt < 4 && odd[0] == 0xa5 && odd[1] == 0xa5 && odd[2] == 0xa5;
       ++attempt)
    detail::portable::fill_random(odd.data(), 3);
  CHECK_FALSE((odd[0] == 0xa5 && odd[1] == 0xa5 && odd[2] == 0xa5));
  CHECK(odd[3] == 0xa5);
}

TEST_CASE("the portable owner names the process the same way every time") {
  const std::string owner = detail::portable::process_owner();
  REQUIRE(owner.size() == 16);
  CHECK(owner.rfind("process-", 0) == 0);
  CHECK(owner.find_first_not_of("0123456789abcdef", 8) == std::string::npos);
  CHECK(detail::portable::process_owner() == owner);
  CHECK_NOTHROW(detail::validate_owner(owner));
  // The id stands for this process: positive, stable, and it "exists".
  const std::int64_t id = detail::portable::current_pid();
  CHECK(id > 0);
  CHECK(detail::portable::current_pid() == id);
  CHECK(detail::portable::process_exists(id));
  CHECK_FALSE(detail::portable::process_exists(0));
  CHECK_FALSE(detail::portable::process_exists(-1));
  CHECK(detail::portable::fork_generation() == detail::portable::fork_generation());
}

TEST_CASE("a page probe that meets a cut file leaves the signal mask as it was, each time") {
  test::TempDir temp;
  const std::string file = (temp.path() / "cut").string();
  test::Child child([&](const auto& report) {
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const int fd = ::open(file.c_str(), O_RDWR | O_CREAT, 0600);
    if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(page)) != 0) return 2;
    void* base = ::mmap(nullptr, 3 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) return 3;
    detail::posix::install_sigbus_guard();
    // A mask with something in it, to see that it is the same one afterwards.
    sigset_t blocked, before, after;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGUSR1);
    ::pthread_sigmask(SIG_BLOCK, &blocked, &before);
    ::pthread_sigmask(SIG_BLOCK, nullptr, &before);
    for (int round = 0; round < 3; ++round) {  // a SIGBUS left blocked would kill round 2
      const bool whole = detail::posix::probe_pages(base, 3 * page);
      ::pthread_sigmask(SIG_BLOCK, nullptr, &after);
      report("round " + std::to_string(round) + ": " + (whole ? "whole" : "cut") + ", SIGBUS " +
             (sigismember(&after, SIGBUS) ? "blocked" : "open") + ", SIGUSR1 " +
             (sigismember(&after, SIGUSR1) ? "blocked" : "open"));
    }
    report(std::string("first page: ") +
           (detail::posix::probe_pages(base, page) ? "whole" : "cut"));
    return 0;
  });
  std::vector<std::string> lines;
  for (std::string line = child.next_line(); !line.empty(); line = child.next_line())
    lines.push_back(line);
  CHECK_MESSAGE(child.wait() == 0, "135 is SIGBUS");
  CHECK(lines == std::vector<std::string>{"round 0: cut, SIGBUS open, SIGUSR1 blocked",
                                          "round 1: cut, SIGBUS open, SIGUSR1 blocked",
                                          "round 2: cut, SIGBUS open, SIGUSR1 blocked",
                                          "first page: whole"});
}
