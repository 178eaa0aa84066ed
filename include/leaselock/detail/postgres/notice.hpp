// leaselock/detail/postgres/notice.hpp — what a notification tells the waiters of a key.
//
// A change that concerns a key's waiters is announced, in the transaction that makes
// it, with pg_notify(schema, payload). The payload names the key by its stable hash and
// lists whom the change concerns (detail::should_wake: a request granted by it, and the
// new head of the queue), each by a 64-bit hash of its token (never the token). For a
// grant it carries the grant too, so that the waiter holds its lease without reading the
// row again:
//
//   <key hash> g<token hash>:<s|x>:<fence>:<acquired_at>:<expires_at> ... w<token hash>
//
// A bare "<key hash>" (the list would not fit) concerns every waiter of the key. The
// notification is committed with the change, so what it says was true then; it is a hint
// all the same: a waiter that misses it re-reads the row (listener.hpp).
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <leaselock/detail/postgres/schema.hpp>
#include <leaselock/detail/semantics.hpp>
#include <leaselock/token.hpp>

namespace leaselock::detail::postgres {

/// A 64-bit hash of a token (a notification names a waiter by it).
inline std::uint64_t token_hash(const Token& token) noexcept {
  char bytes[16];
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<char>((token.high() >> (56 - 8 * i)) & 0xffu);
    bytes[8 + i] = static_cast<char>((token.low() >> (56 - 8 * i)) & 0xffu);
  }
  return stable_hash(std::string_view(bytes, sizeof bytes));
}

/// A grant a notification announced: the holder it made, but for the token and owner.
struct GrantHint {
  Mode mode = Mode::exclusive;
  std::uint64_t fence = 0;
  Nanos acquired_at = 0;
  Nanos expires_at = 0;
};

/// Whom a notification concerns.
struct Notice {
  struct Waiter {
    std::uint64_t token_hash = 0;
    std::optional<GrantHint> grant;  // none: woken only (the new head of the queue)
  };
  std::uint64_t key_hash = 0;
  bool everyone = true;  // a bare notice: every waiter of the key
  std::vector<Waiter> waiters;
};

/// PostgreSQL's limit for a payload is 8000 bytes.
inline constexpr std::size_t kNoticeLimit = 7900;

/// The payload announcing the change of the record of the key with hash `key_hash` from
/// `before` to `after`.
inline std::string make_notice(std::uint64_t key_hash, const Record& before, const Record& after) {
  std::string out = std::to_string(key_hash);
  const std::size_t bare = out.size();
  for (const Holder& h : after.holders) {
    if (find_holder(before, h.token)) continue;  // not granted by this change
    out += " g" + std::to_string(token_hash(h.token)) + (h.mode == Mode::shared ? ":s:" : ":x:") +
           std::to_string(h.fence) + ":" + std::to_string(h.acquired_at) + ":" +
           std::to_string(h.expires_at);
  }
  if (!after.waiters.empty()) out += " w" + std::to_string(token_hash(after.waiters.front().token));
  if (out.size() > kNoticeLimit) out.resize(bare);
  return out;
}

namespace notice_detail {
template <class Int>
bool take(std::string_view& in, Int& value, char end) {
  const auto [next, error] = std::from_chars(in.data(), in.data() + in.size(), value);
  if (error != std::errc()) return false;
  in.remove_prefix(static_cast<std::size_t>(next - in.data()));
  if (end == 0) return true;
  if (in.empty() || in.front() != end) return false;
  in.remove_prefix(1);
  return true;
}
}  // namespace notice_detail

/// The notice in `payload`, or nullopt if it is not one.
inline std::optional<Notice> parse_notice(std::string_view in) {
  using notice_detail::take;
  Notice notice;
  if (!take(in, notice.key_hash, 0)) return std::nullopt;
  while (!in.empty()) {
    if (in.size() < 2 || in[0] != ' ') return std::nullopt;
    const char kind = in[1];
    in.remove_prefix(2);
    Notice::Waiter waiter;
    if (kind == 'w') {
      if (!take(in, waiter.token_hash, 0)) return std::nullopt;
    } else if (kind == 'g') {
      GrantHint grant;
      if (!take(in, waiter.token_hash, ':') || in.size() < 2 || in[1] != ':' ||
          (in[0] != 's' && in[0] != 'x'))
        return std::nullopt;
      grant.mode = in[0] == 's' ? Mode::shared : Mode::exclusive;
      in.remove_prefix(2);
      if (!take(in, grant.fence, ':') || !take(in, grant.acquired_at, ':') ||
          !take(in, grant.expires_at, 0))
        return std::nullopt;
      waiter.grant = grant;
    } else {
      return std::nullopt;
    }
    notice.everyone = false;
    notice.waiters.push_back(waiter);
  }
  return notice;
}

}  // namespace leaselock::detail::postgres
