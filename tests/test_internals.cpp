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

TEST_CASE("SmallVector keeps elements inline, then on the heap, through every operation") {
  using leaselock::detail::SmallVector;
  SmallVector<std::string, 1> v;
  CHECK(v.empty());
  CHECK(v.capacity() == 1);
  v.push_back(std::string(40, 'a'));  // long strings: a lost move or double free shows
  CHECK(v.capacity() == 1);
  for (int i = 1; i < 9; ++i) v.emplace_back(std::string(40, static_cast<char>('a' + i)));
  REQUIRE(v.size() == 9);
  CHECK(v.capacity() >= 9);
  CHECK(v[4] == std::string(40, 'e'));
  v.erase(v.begin() + 1, v.begin() + 3);  // removes b, c; keeps order
  REQUIRE(v.size() == 7);
  CHECK(v[1] == std::string(40, 'd'));
  CHECK(v.back() == std::string(40, 'i'));
  SmallVector<std::string, 1> copy(v);
  SmallVector<std::string, 1> moved(std::move(v));
  CHECK(copy.size() == 7);
  CHECK(moved.size() == 7);
  CHECK(moved[6] == copy[6]);
  SmallVector<std::string, 1> one;
  one.push_back("x");
  SmallVector<std::string, 1> other;
  other = one;  // inline to inline
  CHECK(other[0] == "x");
  other = copy;  // heap over inline
  CHECK(other.size() == 7);
  other = std::move(one);  // inline over heap
  REQUIRE(other.size() == 1);
  CHECK(other[0] == "x");
  other.pop_back();
  CHECK(other.empty());
}
