// leaselock/token.hpp — the secret that proves who holds a lease.
//
// Every grant gets a fresh 128-bit Token from a cryptographic generator (ChaCha12 keyed
// from getrandom). Only the token can release or renew its lease, so hand it only to the
// worker that owns the lease. It crosses process and request boundaries as 32 lowercase
// hex characters: to_string() and parse().
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <leaselock/detail/csprng.hpp>

namespace leaselock {

class Token {
 public:
  /// The all-zero token. Never issued for a lease; an empty Lease carries it.
  constexpr Token() noexcept = default;
  constexpr Token(std::uint64_t high, std::uint64_t low) noexcept : high_(high), low_(low) {}

  /// A fresh unguessable token from the calling thread's CSPRNG (never the zero token).
  static Token generate() {
    for (;;) {
      unsigned char bytes[16];
      detail::thread_generator().fill16(bytes);
      std::uint64_t high;
      std::uint64_t low;
      std::memcpy(&high, bytes, 8);
      std::memcpy(&low, bytes + 8, 8);
      if (high != 0 || low != 0) return Token{high, low};
    }
  }

  /// Parses 32 hex digits (either case). Returns nullopt for anything else.
  static std::optional<Token> parse(std::string_view text) noexcept {
    if (text.size() != 32) return std::nullopt;
    std::uint64_t halves[2] = {0, 0};
    for (std::size_t i = 0; i < 32; ++i) {
      const int digit = hex_value(text[i]);
      if (digit < 0) return std::nullopt;
      std::uint64_t& half = halves[i / 16];
      half = (half << 4) | static_cast<std::uint64_t>(digit);
    }
    return Token{halves[0], halves[1]};
  }

  /// Like parse(), but throws std::invalid_argument naming the problem.
  static Token from_string(std::string_view text) {
    if (auto token = parse(text)) return *token;
    throw std::invalid_argument("leaselock: unparseable token (expected 32 hex digits, got " +
                                std::to_string(text.size()) + " characters)");
  }

  /// 32 lowercase hex digits.
  std::string to_string() const {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string text(32, '0');
    for (int i = 0; i < 16; ++i) {
      text[static_cast<std::size_t>(15 - i)] = kDigits[(high_ >> (4 * i)) & 0xf];
      text[static_cast<std::size_t>(31 - i)] = kDigits[(low_ >> (4 * i)) & 0xf];
    }
    return text;
  }

  constexpr std::uint64_t high() const noexcept { return high_; }
  constexpr std::uint64_t low() const noexcept { return low_; }
  /// False only for the zero token.
  constexpr bool valid() const noexcept { return (high_ | low_) != 0; }

  friend constexpr bool operator==(const Token& a, const Token& b) noexcept {
    return a.high_ == b.high_ && a.low_ == b.low_;
  }
  friend constexpr bool operator!=(const Token& a, const Token& b) noexcept { return !(a == b); }
  friend constexpr bool operator<(const Token& a, const Token& b) noexcept {
    return a.high_ != b.high_ ? a.high_ < b.high_ : a.low_ < b.low_;
  }

 private:
  static constexpr int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  std::uint64_t high_ = 0;
  std::uint64_t low_ = 0;
};

}  // namespace leaselock

template <>
struct std::hash<leaselock::Token> {
  std::size_t operator()(const leaselock::Token& token) const noexcept {
    return static_cast<std::size_t>(token.high() ^ (token.low() * 0x9e3779b97f4a7c15ull));
  }
};
