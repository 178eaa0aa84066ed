// leaselock/detail/file/slots.hpp — reading and publishing a record file's two slots.
//
// A record is written into the slot that is not current, with a checksum over its
// generation and bytes, and made current by one aligned 8-byte store of the layout
// (capacity << 1 | current slot); the header's generation and its complement follow. A
// process killed at any instruction leaves the previous record or the new one current,
// each whole; the next process to take the mutex (EOWNERDEAD) finishes the publication
// with recover_after_crash(). Otherwise the header must agree with itself and with the
// current slot — generation == ~generation_check == the current slot's generation — or
// the file is reported damaged: no flipped bit of the layout or the generation can make
// an older slot current, or a stale decoded record look current. The
// functions here work on any bytes laid out as a record file (detail/file/record_layout.hpp)
// — a mapping, or a copy read with pread — and touch no file: growing the file, and
// making sure it is long enough, are the caller's (`grow`, `ensure_size`).
// Callers hold the record's mutex, except for a copy.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include <leaselock/detail/file/codec.hpp>
#include <leaselock/detail/file/record_layout.hpp>
#include <leaselock/detail/posix/identity.hpp>
#include <leaselock/detail/semantics.hpp>

namespace leaselock::detail::file {

/// How long a record file is known to be. Read before the record's mutex is taken (the
/// pages the mutex lies in are probed first) and raised under it by another thread of
/// this process: atomic. Relaxed is enough: a stale value only probes less.
class KnownSize {
 public:
  KnownSize() = default;
  KnownSize(const KnownSize& other) noexcept : size_(std::size_t{other}) {}
  KnownSize& operator=(const KnownSize& other) noexcept { return *this = std::size_t{other}; }
  KnownSize& operator=(std::size_t size) noexcept {
    size_.store(size, std::memory_order_relaxed);
    return *this;
  }
  operator std::size_t() const noexcept { return size_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::size_t> size_{0};
};

/// A record file's bytes as this process sees them, and the record last decoded from them.
struct RecordSlots {
  unsigned char* base = nullptr;
  RecordHeader* header = nullptr;
  std::size_t slot_base = 0;
  KnownSize verified_size;  // the file is known to be at least this long

  // Guarded by the record's own (shared) mutex: the decoded record, valid while the
  // current slot's generation is `generation`.
  bool decoded = false;
  std::uint64_t generation = 0;
  std::uint64_t layout = 0;  // the header's layout when it was read or written
  Record record;
  std::vector<ProcessIdentity> ids;  // holders', then waiters'
};

/// True if both slots of `capacity` lie inside the mapping.
inline bool valid_capacity(const RecordSlots& s, std::size_t capacity) noexcept {
  return capacity >= sizeof(SlotHeader) + kHeadSize && capacity % 64 == 0 &&
         s.slot_base <= kMapSize && capacity <= (kMapSize - s.slot_base) / 2;
}

/// True if the slot at `offset`, of `capacity`, holds a whole record (its checksum
/// matches); sets `generation` to its generation.
inline bool whole_slot(const RecordSlots& s, std::size_t offset, std::size_t capacity,
                       std::uint64_t& generation) noexcept {
  SlotHeader slot_header;
  std::memcpy(&slot_header, s.base + offset, sizeof slot_header);
  if (slot_header.size > capacity - sizeof slot_header) return false;
  generation = slot_header.generation;
  return checksum(s.base + offset + sizeof slot_header, static_cast<std::size_t>(slot_header.size),
                  slot_header.generation) == slot_header.check;
}

/// Makes s.record the current slot's record, decoding only if another write came since
/// this process last read or wrote it. ensure_size(n) makes sure the file is at least n
/// bytes long (and sets s.verified_size) or throws. Returns nullptr when s.record is
/// current — `decoded_now` says whether it was read from the file by this call — or else
/// what is wrong with the file.
template <class EnsureSize>
const char* load_current(RecordSlots& s, EnsureSize&& ensure_size, bool& decoded_now) {
  decoded_now = false;
  const std::uint64_t generation = __atomic_load_n(&s.header->generation, __ATOMIC_ACQUIRE);
  const std::uint64_t generation_check =
      __atomic_load_n(&s.header->generation_check, __ATOMIC_ACQUIRE);
  const std::uint64_t layout = __atomic_load_n(&s.header->layout, __ATOMIC_ACQUIRE);
  // A process's own last write, or its last read, is still current: nothing to read.
  if (s.decoded && generation == s.generation && generation_check == ~s.generation &&
      layout == s.layout)
    return nullptr;
  if (generation_check != ~generation) return "its generation does not match its check";
  const std::size_t capacity = static_cast<std::size_t>(layout >> 1);
  if (!valid_capacity(s, capacity)) return "bad slot layout";
  if (s.slot_base + 2 * capacity > s.verified_size) ensure_size(s.slot_base + 2 * capacity);
  const std::size_t slot = s.slot_base + (layout & 1) * capacity;
  SlotHeader slot_header;
  std::memcpy(&slot_header, s.base + slot, sizeof slot_header);
  if (slot_header.generation != generation)
    return "its current slot is not of the generation its header names";
  if (slot_header.size > capacity - sizeof slot_header) return "bad record size";
  const unsigned char* payload = s.base + slot + sizeof slot_header;
  const auto size = static_cast<std::size_t>(slot_header.size);
  if (checksum(payload, size, slot_header.generation) != slot_header.check)
    return "record checksum mismatch";
  s.decoded = false;
  if (const char* error = decode(payload, size, s.record, s.ids)) return error;
  s.generation = slot_header.generation;
  s.layout = layout;
  s.decoded = true;
  decoded_now = true;
  return nullptr;
}

/// Under a mutex whose last holder died holding it (EOWNERDEAD): finishes what that
/// writer may have left half-done. Of the two slots of the current capacity, the whole one
/// with the higher generation becomes current, and the header's generation and check are
/// made to agree with it (a slot written whole is a record the writer had decided; one
/// cut short fails its checksum). ensure_size as for load_current(). Returns nullptr, or
/// what is wrong when no slot is whole (load_current() then reports it).
template <class EnsureSize>
const char* recover_after_crash(RecordSlots& s, EnsureSize&& ensure_size) {
  s.decoded = false;
  const std::uint64_t layout = __atomic_load_n(&s.header->layout, __ATOMIC_ACQUIRE);
  const std::size_t capacity = static_cast<std::size_t>(layout >> 1);
  if (!valid_capacity(s, capacity)) return "bad slot layout";
  if (s.slot_base + 2 * capacity > s.verified_size) ensure_size(s.slot_base + 2 * capacity);
  int best = -1;
  std::uint64_t best_generation = 0;
  for (int i = 0; i < 2; ++i) {
    std::uint64_t generation = 0;
    if (whole_slot(s, s.slot_base + static_cast<std::size_t>(i) * capacity, capacity, generation) &&
        (best < 0 || generation > best_generation)) {
      best = i;
      best_generation = generation;
    }
  }
  if (best < 0) return "neither slot holds a whole record";
  __atomic_store_n(&s.header->layout,
                   (static_cast<std::uint64_t>(capacity) << 1) | static_cast<std::uint64_t>(best),
                   __ATOMIC_RELEASE);
  __atomic_store_n(&s.header->generation, best_generation, __ATOMIC_RELEASE);
  __atomic_store_n(&s.header->generation_check, ~best_generation, __ATOMIC_RELEASE);
  return nullptr;
}

/// Bytes a slot needs to hold `record`.
inline std::size_t slot_bytes(const Record& record) noexcept {
  return sizeof(SlotHeader) + encoded_size(record);
}

/// Writes `record` as `generation` into the slot at `slot` (which must have room for it);
/// identity_of(i, token) gives each party's process (see encode()).
template <class IdentityOf>
void write_slot(unsigned char* slot, const Record& record, IdentityOf&& identity_of,
                std::uint64_t generation) {
  SlotHeader header{};
  header.generation = generation;
  header.size = encoded_size(record);
  unsigned char* payload = slot + sizeof header;
  encode(record, identity_of, payload);
  header.check = checksum(payload, static_cast<std::size_t>(header.size), generation);
  std::memcpy(slot, &header, sizeof header);
}

/// Writes s.record into the free slot, then makes that slot current. When the slots are
/// too small it moves them to a larger capacity, calling grow(size) to make the file
/// `size` bytes long (which throws if it cannot). Returns false, having changed nothing,
/// if the record cannot fit in kMapSize.
template <class IdentityOf, class Grow>
bool publish(RecordSlots& s, IdentityOf&& identity_of, Grow&& grow) {
  const std::size_t needed = slot_bytes(s.record);
  std::uint64_t layout = __atomic_load_n(&s.header->layout, __ATOMIC_RELAXED);
  std::size_t capacity = static_cast<std::size_t>(layout >> 1);
  std::size_t target = 1 - (layout & 1);
  if (needed > capacity) {
    // Slots of the new capacity start beyond the current one: slot 1 of capacity c'
    // begins at c' >= 2c past slot 0, or >= c when slot 0 is current.
    if (s.slot_base > kMapSize) return false;
    const std::size_t largest = (kMapSize - s.slot_base) / 2 & ~std::size_t{63};
    const std::size_t grown = std::min(std::max(2 * capacity, align64(needed)), largest);
    if (grown < needed) return false;
    if (target == 0 && grown < 2 * capacity) {
      // Slot 1 is current and too close: copy it, unchanged, to slot 0 first.
      unsigned char* current = s.base + s.slot_base + capacity;
      SlotHeader header;
      std::memcpy(&header, current, sizeof header);
      std::memcpy(s.base + s.slot_base, current,
                  sizeof header +
                      std::min(static_cast<std::size_t>(header.size), capacity - sizeof header));
      __atomic_store_n(&s.header->layout, static_cast<std::uint64_t>(capacity) << 1,
                       __ATOMIC_RELEASE);
    }
    grow(s.slot_base + 2 * grown);
    capacity = grown;
    target = 1;
  }
  const std::uint64_t generation = s.generation + 1;
  write_slot(s.base + s.slot_base + target * capacity, s.record, identity_of, generation);
  layout = (static_cast<std::uint64_t>(capacity) << 1) | target;
  __atomic_store_n(&s.header->layout, layout, __ATOMIC_RELEASE);
  __atomic_store_n(&s.header->generation, generation, __ATOMIC_RELEASE);
  __atomic_store_n(&s.header->generation_check, ~generation, __ATOMIC_RELEASE);
  s.generation = generation;
  s.layout = layout;
  return true;
}

}  // namespace leaselock::detail::file
