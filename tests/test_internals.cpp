// Word-at-a-time helpers on the hot path, checked against the obvious byte loops for
// every length and position that matters (short, word-sized, inline limit and beyond).
#include <leaselock/detail/hash.hpp>
#include <leaselock/detail/key_buffer.hpp>

#include "support.hpp"

TEST_CASE("contains_nul finds a NUL at any position of any length") {
  for (std::size_t size = 0; size <= 40; ++size) {
    std::string bytes(size, '\x80');  // high bits set: the classic false-positive trap
    CHECK_FALSE(leaselock::detail::contains_nul(bytes));
    for (std::size_t at = 0; at < size; ++at) {
      std::string with_nul = bytes;
      with_nul[at] = '\0';
      CAPTURE(size);
      CAPTURE(at);
      CHECK(leaselock::detail::contains_nul(with_nul));
    }
  }
  CHECK_FALSE(leaselock::detail::contains_nul(std::string("\x01\xff\x7f\x81 abcdefgh", 13)));
}

TEST_CASE("same_bytes and hash_bytes agree with byte equality for every length") {
  const std::uint64_t seed = 42;
  for (std::size_t size = 1; size <= 40; ++size) {
    std::string a(size, 'a');
    for (std::size_t i = 0; i < size; ++i) a[i] = static_cast<char>('a' + (i * 7) % 26);
    CHECK(leaselock::detail::same_bytes(a.data(), a.data(), size));
    CHECK(leaselock::detail::hash_bytes(a, seed) == leaselock::detail::hash_bytes(a, seed));
    for (std::size_t at = 0; at < size; ++at) {
      std::string b = a;
      b[at] = static_cast<char>(b[at] ^ 1);
      CAPTURE(size);
      CAPTURE(at);
      CHECK_FALSE(leaselock::detail::same_bytes(a.data(), b.data(), size));
      CHECK(leaselock::detail::hash_bytes(a, seed) != leaselock::detail::hash_bytes(b, seed));
    }
  }
  // The length is part of the hash: a key and the same key with a zero byte appended
  // (the same words once zero-padded) hash apart.
  CHECK(leaselock::detail::hash_bytes(std::string_view("abc", 3), seed) !=
        leaselock::detail::hash_bytes(std::string_view("abc\0", 4), seed));
  CHECK(leaselock::detail::hash_bytes(std::string_view("abcdefghij", 10), seed) !=
        leaselock::detail::hash_bytes(std::string_view("abcdefghij\0", 11), seed));
}

TEST_CASE("KeyBuffer keeps any key, inline or on the heap, across moves") {
  using leaselock::detail::KeyBuffer;
  for (std::size_t size = 0; size <= KeyBuffer::kInline + 10; ++size) {
    std::string key(size, 'x');
    for (std::size_t i = 0; i < size; ++i) key[i] = static_cast<char>('A' + i % 50);
    KeyBuffer buffer(key);
    CHECK(buffer.view() == key);
    KeyBuffer moved(std::move(buffer));
    CHECK(moved.view() == key);
    CHECK(buffer.view().empty());  // NOLINT(bugprone-use-after-move): checks the moved-from state
    KeyBuffer assigned;
    assigned = std::move(moved);
    CHECK(assigned.view() == key);
    assigned.assign("short");
    CHECK(assigned.view() == "short");
  }
}
