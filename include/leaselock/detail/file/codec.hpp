// leaselock/detail/file/codec.hpp — how FileBackend names and encodes one key's record.
//
// Pure functions, no I/O (so they can be fuzzed): the file name a key maps to, and the
// byte encoding of a detail::Record with the process of each holder and waiter.
//
// Names: a key is stored in "<32 hex digits>.lease", the digits a 128-bit hash of the
// key. Names use only [0-9a-f.], so no key can reach outside the lock directory, name a
// special file, or depend on the file system's case or length rules; the full key is
// stored in the file and checked, so two keys never share a record (a hash collision is
// reported as an error, never merged).
//
// Payload (native byte order: a lock directory is used by one machine):
//   u64 last_fence, u64 last_ticket, u64 version, u32 holders, u32 waiters,
//   then each holder:  token[16] u64 fence i64 acquired_at i64 expires_at identity[32]
//                      u8 mode u8[3] 0 u32 owner_size, owner bytes
//   then each waiter:  token[16] u64 ticket i64 ttl i64 deadline identity[32]
//                      u8 mode u8[3] 0 u32 owner_size, owner bytes
// decode() checks every size, count, mode and ordering, so a damaged payload is reported,
// never read past its end or taken for a valid (for example free) record.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <leaselock/detail/hash.hpp>
#include <leaselock/detail/posix/identity.hpp>
#include <leaselock/detail/semantics.hpp>
#include <leaselock/limits.hpp>

namespace leaselock::detail::file {

using posix::ProcessIdentity;

inline constexpr std::string_view kRecordSuffix = ".lease";
inline constexpr std::size_t kRecordNameSize = 32 + 6;

/// The record file name of `key`: 32 lowercase hex digits and ".lease".
inline std::string record_name(std::string_view key) {
  const std::uint64_t halves[2] = {hash_bytes(key, 0x6c656173656c6f63ull),
                                   hash_bytes(key, 0x9e3779b97f4a7c15ull)};
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string name(kRecordNameSize, '.');
  for (std::size_t i = 0; i < 32; ++i)
    name[i] = kDigits[(halves[i / 16] >> (4 * (15 - i % 16))) & 0xf];
  std::memcpy(&name[32], kRecordSuffix.data(), kRecordSuffix.size());
  return name;
}

/// True for names record_name() can produce.
inline bool is_record_name(std::string_view name) noexcept {
  if (name.size() != kRecordNameSize || name.substr(32) != kRecordSuffix) return false;
  for (std::size_t i = 0; i < 32; ++i) {
    const char c = name[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

/// The checksum of a payload written as `generation`.
inline std::uint64_t checksum(const unsigned char* data, std::size_t size,
                              std::uint64_t generation) noexcept {
  return hash_bytes(std::string_view(reinterpret_cast<const char*>(data), size),
                    generation ^ 0x243f6a8885a308d3ull);
}

inline constexpr std::size_t kHeadSize = 32;
inline constexpr std::size_t kPartySize = 80;  // one holder or waiter, before its owner

/// Bytes encode() writes for `record`.
inline std::size_t encoded_size(const Record& record) noexcept {
  std::size_t size = kHeadSize;
  for (const Holder& h : record.holders) size += kPartySize + h.owner.size();
  for (const Waiter& w : record.waiters) size += kPartySize + w.owner.size();
  return size;
}

namespace codec {

template <class T>
void put(unsigned char*& out, const T& value) noexcept {
  std::memcpy(out, &value, sizeof value);
  out += sizeof value;
}

template <class T>
T get(const unsigned char*& in) noexcept {
  T value;
  std::memcpy(&value, in, sizeof value);
  in += sizeof value;
  return value;
}

inline void put_party(unsigned char*& out, const Token& token, std::uint64_t a, Nanos b, Nanos c,
                      const ProcessIdentity& id, Mode mode, const std::string& owner) noexcept {
  put(out, token.high());
  put(out, token.low());
  put(out, a);
  put(out, b);
  put(out, c);
  put(out, id);
  const std::uint32_t mode_word = mode == Mode::exclusive ? 1u : 0u;
  put(out, mode_word);
  put(out, static_cast<std::uint32_t>(owner.size()));
  std::memcpy(out, owner.data(), owner.size());
  out += owner.size();
}

struct Party {
  Token token;
  std::uint64_t a = 0;
  Nanos b = 0;
  Nanos c = 0;
  ProcessIdentity id;
  Mode mode = Mode::exclusive;
  std::string_view owner;
};

// Reads one party; nullptr on success, else what is wrong.
inline const char* get_party(const unsigned char*& in, const unsigned char* end, Party& party) {
  if (static_cast<std::size_t>(end - in) < kPartySize) return "a holder or waiter is cut short";
  const auto high = get<std::uint64_t>(in);
  const auto low = get<std::uint64_t>(in);
  party.token = Token(high, low);
  party.a = get<std::uint64_t>(in);
  party.b = get<Nanos>(in);
  party.c = get<Nanos>(in);
  party.id = get<ProcessIdentity>(in);
  const auto mode_word = get<std::uint32_t>(in);
  const auto owner_size = get<std::uint32_t>(in);
  if (!party.token.valid()) return "a holder or waiter has the zero token";
  if (mode_word > 1) return "a holder or waiter has an unknown mode";
  party.mode = mode_word ? Mode::exclusive : Mode::shared;
  if (owner_size > max_owner_size) return "an owner is over the size limit";
  if (static_cast<std::size_t>(end - in) < owner_size) return "an owner is cut short";
  party.owner = std::string_view(reinterpret_cast<const char*>(in), owner_size);
  if (party.owner.find('\0') != std::string_view::npos) return "an owner contains a NUL byte";
  in += owner_size;
  return nullptr;
}

}  // namespace codec

/// Writes `record` to `out` (encoded_size(record) bytes); identity_of(i, token) gives the
/// process of party i: holder i, then waiter i - holders.size().
template <class IdentityOf>
void encode(const Record& record, IdentityOf&& identity_of, unsigned char* out) {
  std::size_t i = 0;
  codec::put(out, record.last_fence);
  codec::put(out, record.last_ticket);
  codec::put(out, record.version);
  codec::put(out, static_cast<std::uint32_t>(record.holders.size()));
  codec::put(out, static_cast<std::uint32_t>(record.waiters.size()));
  for (const Holder& h : record.holders)
    codec::put_party(out, h.token, h.fence, h.acquired_at, h.expires_at, identity_of(i++, h.token),
                     h.mode, h.owner);
  for (const Waiter& w : record.waiters)
    codec::put_party(out, w.token, w.ticket, w.ttl, w.deadline, identity_of(i++, w.token), w.mode,
                     w.owner);
}

/// Reads a payload into `record` and `ids`. Returns nullptr when it is well formed, else
/// a description of the first thing wrong with it (then `record` is unspecified).
inline const char* decode(const unsigned char* data, std::size_t size, Record& record,
                          std::vector<ProcessIdentity>& ids) {
  const unsigned char* in = data;
  const unsigned char* const end = data + size;
  if (size < kHeadSize) return "the record is shorter than its fixed part";
  record.last_fence = codec::get<std::uint64_t>(in);
  record.last_ticket = codec::get<std::uint64_t>(in);
  record.version = codec::get<std::uint64_t>(in);
  const auto holders = codec::get<std::uint32_t>(in);
  const auto waiters = codec::get<std::uint32_t>(in);
  const std::size_t room = (size - kHeadSize) / kPartySize;
  if (holders > room || waiters > room - holders)
    return "the record counts more holders and waiters than it has room for";
  record.holders.clear();
  record.waiters.clear();
  ids.clear();
  record.holders.reserve(holders);
  record.waiters.reserve(waiters);
  ids.reserve(std::size_t{holders} + waiters);
  codec::Party party;
  for (std::uint32_t i = 0; i < holders; ++i) {
    if (const char* error = codec::get_party(in, end, party)) return error;
    if (party.a == 0 || party.a > record.last_fence)
      return "a holder's fence is beyond the record's last fence";
    if (party.b > party.c) return "a holder expires before it was acquired";
    if (find_holder(record, party.token)) return "two holders share a token";
    if (party.mode == Mode::exclusive && !record.holders.empty())
      return "an exclusive holder shares the key";
    if (!record.holders.empty() && record.holders[0].mode == Mode::exclusive)
      return "an exclusive holder shares the key";
    record.holders.push_back(
        Holder{party.token, party.mode, party.a, party.b, party.c, std::string(party.owner)});
    ids.push_back(party.id);
  }
  std::uint64_t previous_ticket = 0;
  for (std::uint32_t i = 0; i < waiters; ++i) {
    if (const char* error = codec::get_party(in, end, party)) return error;
    if (party.a == 0 || party.a > record.last_ticket)
      return "a waiter's ticket is beyond the record's last ticket";
    if (party.a <= previous_ticket) return "waiters are out of ticket order";
    if (party.b <= 0) return "a waiter has a TTL <= 0";
    previous_ticket = party.a;
    Waiter waiter;
    waiter.ticket = party.a;
    waiter.token = party.token;
    waiter.mode = party.mode;
    waiter.ttl = party.b;
    waiter.deadline = party.c;
    waiter.owner.assign(party.owner.data(), party.owner.size());
    record.waiters.push_back(std::move(waiter));
    ids.push_back(party.id);
  }
  if (in != end) return "the record has bytes after its last waiter";
  return nullptr;
}

}  // namespace leaselock::detail::file
