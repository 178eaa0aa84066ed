// Tokens: format, parsing, uniqueness, and no repeats across fork().
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <set>

#include "support.hpp"

using leaselock::Token;

TEST_CASE("a token prints as 32 lowercase hex digits and parses back") {
  const Token token = Token::generate();
  const std::string text = token.to_string();
  REQUIRE(text.size() == 32);
  CHECK(text.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(Token::parse(text) == token);
  std::string upper = text;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(Token::parse(upper) == token);
  CHECK(Token::from_string(text) == token);
  CHECK(Token(0x0123456789abcdefull, 0xfedcba9876543210ull).to_string() ==
        "0123456789abcdeffedcba9876543210");
}

TEST_CASE("malformed token text is refused") {
  CHECK_FALSE(Token::parse(""));
  CHECK_FALSE(Token::parse(std::string(31, 'a')));
  CHECK_FALSE(Token::parse(std::string(33, 'a')));
  CHECK_FALSE(Token::parse("0123456789abcdef0123456789abcdeg"));
  CHECK_FALSE(Token::parse(" 123456789abcdef0123456789abcdef"));
  CHECK_FALSE(Token::parse(std::string("0123456789abcdef0123456789abcde\0", 32)));
  CHECK_THROWS_AS(Token::from_string("xyz"), std::invalid_argument);
}

TEST_CASE("generated tokens are valid, distinct and use every bit") {
  std::set<Token> seen;
  std::uint64_t ones_high = 0;
  std::uint64_t ones_low = 0;
  std::uint64_t zeros_high = ~0ull;
  std::uint64_t zeros_low = ~0ull;
  for (int i = 0; i < 20000; ++i) {
    const Token token = Token::generate();
    CHECK(token.valid());
    seen.insert(token);
    ones_high |= token.high();
    ones_low |= token.low();
    zeros_high &= token.high();
    zeros_low &= token.low();
  }
  CHECK(seen.size() == 20000);
  CHECK(ones_high == ~0ull);  // every bit was 1 at least once...
  CHECK(ones_low == ~0ull);
  CHECK(zeros_high == 0);  // ...and 0 at least once
  CHECK(zeros_low == 0);
  CHECK_FALSE(Token{}.valid());
}

TEST_CASE("a forked child does not repeat its parent's tokens") {
  (void)Token::generate();  // the parent's generator is seeded and has tokens buffered
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  std::fflush(nullptr);  // the child must not print the parent's buffered output again
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const Token token = Token::generate();
    const std::uint64_t halves[2] = {token.high(), token.low()};
    const bool ok =
        ::write(pipe_fds[1], halves, sizeof halves) == static_cast<ssize_t>(sizeof halves);
    ::_exit(ok ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  std::uint64_t halves[2] = {0, 0};
  const ssize_t got = ::read(pipe_fds[0], halves, sizeof halves);
  ::close(pipe_fds[0]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(got == static_cast<ssize_t>(sizeof halves));
  const Token from_child(halves[0], halves[1]);
  const Token from_parent = Token::generate();  // the token the child would repeat
  CHECK(from_child != from_parent);
  CHECK(from_child.valid());
}

TEST_CASE("tokens from different threads are distinct") {
  std::vector<std::vector<Token>> per_thread(4);
  std::vector<std::thread> threads;
  for (auto& tokens : per_thread)
    threads.emplace_back([&tokens] {
      for (int i = 0; i < 5000; ++i) tokens.push_back(Token::generate());
    });
  for (auto& t : threads) t.join();
  std::set<Token> all;
  for (const auto& tokens : per_thread) all.insert(tokens.begin(), tokens.end());
  CHECK(all.size() == 20000);
}

TEST_CASE("the token generator's block function is ChaCha (RFC 8439 section 2.3.2)") {
  // Key 00 01 .. 1f; block counter 1 and nonce 00:00:00:09:00:00:00:4a:00:00:00:00 in the
  // RFC's layout are state words 12..15 = 1, 0x09000000, 0x4a000000, 0.
  std::uint32_t key[8];
  for (std::uint32_t w = 0; w < 8; ++w)
    key[w] = (4 * w) | ((4 * w + 1) << 8) | ((4 * w + 2) << 16) | ((4 * w + 3) << 24);
  std::uint32_t out[64];
  leaselock::detail::chacha_four_blocks<20>(key, 1 | (std::uint64_t{0x09000000} << 32), 0x4a000000,
                                            out);
  const std::uint32_t expected[16] = {0xe4e7f110, 0x15593bd1, 0x1fdd0f50, 0xc47120a3,
                                      0xc7f4d1c7, 0x0368c033, 0x9aaa2204, 0x4e6cd4c3,
                                      0x466482d2, 0x09aa9f07, 0x05d7c214, 0xa2028bd9,
                                      0xd19c12b5, 0xb94e16de, 0xe883d0cb, 0x4e3c50a2};
  for (std::size_t w = 0; w < 16; ++w) {
    CAPTURE(w);
    CHECK(out[w * 4] == expected[w]);  // block 0 of the four sits in lane 0
  }
  // Lane 1 is the next block: it differs from lane 0 in every word but none the same.
  std::size_t same = 0;
  for (std::size_t w = 0; w < 16; ++w) same += out[w * 4 + 1] == out[w * 4];
  CHECK(same == 0);
}
