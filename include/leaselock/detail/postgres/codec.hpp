// leaselock/detail/postgres/codec.hpp — a key's detail::Record as the bytes of its row.
//
// The row's `record` column (bytea) holds the whole record: fences, tickets, the
// semantics' version, every holder and every queued request. Integers are big-endian;
// strings carry their length. decode() checks every length against what is left and
// refuses anything else, so a damaged value is reported, never taken for "free".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <leaselock/detail/postgres/connection.hpp>
#include <leaselock/detail/semantics.hpp>
#include <leaselock/token.hpp>

namespace leaselock::detail::postgres {

inline constexpr std::uint32_t kRecordFormat = 1;

inline void put_token(std::string& out, const Token& token) {
  put_be(out, token.high(), 8);
  put_be(out, token.low(), 8);
}

inline void put_string(std::string& out, std::string_view text) {
  put_be(out, text.size(), 4);
  out.append(text.data(), text.size());
}

inline std::string encode(const Record& record) {
  std::string out;
  out.reserve(64 + record.holders.size() * 64 + record.waiters.size() * 72);
  put_be(out, kRecordFormat, 4);
  put_be(out, record.last_fence, 8);
  put_be(out, record.last_ticket, 8);
  put_be(out, record.version, 8);
  put_be(out, record.holders.size(), 4);
  for (const Holder& h : record.holders) {
    put_token(out, h.token);
    out.push_back(h.mode == Mode::shared ? 's' : 'x');
    put_be(out, h.fence, 8);
    put_be(out, static_cast<std::uint64_t>(h.acquired_at), 8);
    put_be(out, static_cast<std::uint64_t>(h.expires_at), 8);
    put_string(out, h.owner);
  }
  put_be(out, record.waiters.size(), 4);
  for (const Waiter& w : record.waiters) {
    put_be(out, w.ticket, 8);
    put_token(out, w.token);
    out.push_back(w.mode == Mode::shared ? 's' : 'x');
    put_be(out, static_cast<std::uint64_t>(w.ttl), 8);
    put_be(out, static_cast<std::uint64_t>(w.deadline), 8);
    put_string(out, w.owner);
  }
  return out;
}

namespace codec_detail {
struct Reader {
  std::string_view in;
  bool ok = true;
  std::uint64_t u(int bytes) {
    if (!ok || in.size() < static_cast<std::size_t>(bytes)) {
      ok = false;
      return 0;
    }
    const std::uint64_t v = get_be(in.data(), bytes);
    in.remove_prefix(static_cast<std::size_t>(bytes));
    return v;
  }
  Nanos nanos() { return static_cast<Nanos>(u(8)); }
  Token token() {
    const std::uint64_t high = u(8);
    return Token(high, u(8));
  }
  Mode mode() {
    const std::uint64_t c = u(1);
    if (c != 's' && c != 'x') ok = false;
    return c == 's' ? Mode::shared : Mode::exclusive;
  }
  std::string text() {
    const std::uint64_t size = u(4);
    if (!ok || in.size() < size) {
      ok = false;
      return {};
    }
    std::string s(in.substr(0, static_cast<std::size_t>(size)));
    in.remove_prefix(static_cast<std::size_t>(size));
    return s;
  }
};
}  // namespace codec_detail

/// The record in `bytes`, or nullopt if they are not one.
inline std::optional<Record> decode(std::string_view bytes) {
  codec_detail::Reader r{bytes};
  Record record;
  if (r.u(4) != kRecordFormat) return std::nullopt;
  record.last_fence = r.u(8);
  record.last_ticket = r.u(8);
  record.version = r.u(8);
  const std::uint64_t holders = r.u(4);
  if (!r.ok || holders > bytes.size()) return std::nullopt;
  for (std::uint64_t i = 0; i < holders && r.ok; ++i) {
    Holder h;
    h.token = r.token();
    h.mode = r.mode();
    h.fence = r.u(8);
    h.acquired_at = r.nanos();
    h.expires_at = r.nanos();
    h.owner = r.text();
    record.holders.push_back(std::move(h));
  }
  const std::uint64_t waiters = r.u(4);
  if (!r.ok || waiters > bytes.size()) return std::nullopt;
  for (std::uint64_t i = 0; i < waiters && r.ok; ++i) {
    Waiter w;
    w.ticket = r.u(8);
    w.token = r.token();
    w.mode = r.mode();
    w.ttl = r.nanos();
    w.deadline = r.nanos();
    w.owner = r.text();
    record.waiters.push_back(std::move(w));
  }
  if (!r.ok || !r.in.empty()) return std::nullopt;
  return record;
}

/// The latest instant at which some holder of `record` is still live or some queued
/// request still stands (0: none). After it, the row may be removed.
inline Nanos live_until(const Record& record) noexcept {
  Nanos until = 0;
  for (const Holder& h : record.holders) until = h.expires_at > until ? h.expires_at : until;
  for (const Waiter& w : record.waiters) until = w.deadline > until ? w.deadline : until;
  return until;
}

}  // namespace leaselock::detail::postgres
