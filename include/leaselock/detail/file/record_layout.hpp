// leaselock/detail/file/record_layout.hpp — the bytes of one FileBackend record file.
//
// A record file starts with a RecordHeader: what the file is (magic, format, the clock its
// times are on), the key it holds (its size here, its bytes at kKeyOffset, both covered by
// header_check), and one cache line of what every operation touches: the record's robust
// mutex, the slot layout, the futex word waiters sleep on, the removed mark and the
// current generation. Two slots follow at slot_base and slot_base + capacity; each is a
// SlotHeader and an encoded record (detail/file/codec.hpp). detail/file/slots.hpp reads
// and publishes them.
#pragma once

#include <pthread.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include <leaselock/detail/hash.hpp>
#include <leaselock/limits.hpp>

namespace leaselock::detail::file {

inline constexpr char kRecordMagic[8] = {'l', 'e', 'a', 's', 'e', 'r', 'e', 'c'};
inline constexpr std::uint32_t kFormat = 2;
inline constexpr std::size_t kClockNameSize = 32;
inline constexpr std::size_t kInitialSlot = 512;

/// The first bytes of a record file. The key follows at kKeyOffset, the two slots at
/// slot_base and slot_base + capacity.
struct RecordHeader {
  char magic[8];
  std::uint32_t format;
  std::uint32_t header_size;
  std::uint32_t key_size;
  std::uint32_t slot_base;
  char clock[kClockNameSize];
  std::uint64_t header_check;  // of the bytes before it, and the key
  // What every operation touches shares one cache line.
  alignas(64) pthread_mutex_t mutex;
  std::uint64_t layout;            // slot capacity << 1 | current slot
  std::uint32_t wake;              // futex word: bumped when waiters should look again
  std::uint32_t removed;           // 0, or kRemovedMark: the file was (or is being) unlinked
  std::uint64_t generation;        // of the current slot (its own header has it too)
  std::uint64_t generation_check;  // ~generation, so a damaged generation is seen
};
static_assert(offsetof(RecordHeader, removed) + sizeof(std::uint32_t) <= 128,
              "the mutex, layout and wake word share one cache line");
inline constexpr std::size_t kKeyOffset = (sizeof(RecordHeader) + 63) & ~std::size_t{63};

/// `removed` of a record file that was (or is being) unlinked: open the key afresh. No
/// flipped bit of 0 gives it (it has 16 bits set), and a remover writes it only after
/// storing the record idle and raising the directory's fence floor to its last fence.
inline constexpr std::uint32_t kRemovedMark = 0x6d657672;

inline constexpr std::size_t align64(std::size_t n) noexcept { return (n + 63) & ~std::size_t{63}; }

/// Address space reserved for one record file (the file grows inside it): the header,
/// the longest key this build accepts, and 1 MiB for the two slots.
inline constexpr std::size_t kMapSize =
    (align64(kKeyOffset + max_key_size) + (std::size_t{1} << 20) + 4095) & ~std::size_t{4095};
static_assert(max_key_size <= (std::size_t{1} << 30),
              "LEASELOCK_MAX_KEY_SIZE must fit a record file's 32-bit key size and offsets");
static_assert(align64(kKeyOffset + max_key_size) + 2 * kInitialSlot <= kMapSize,
              "a record file's mapping holds its header, the longest key and two slots");

struct SlotHeader {
  std::uint64_t generation;
  std::uint64_t size;
  std::uint64_t check;
};

inline std::uint64_t header_check(const RecordHeader& header, const char* key) noexcept {
  const std::uint64_t head = hash_bytes(std::string_view(reinterpret_cast<const char*>(&header),
                                                         offsetof(RecordHeader, header_check)),
                                        0x5be0cd19137e2179ull);
  return hash_bytes(std::string_view(key, header.key_size), head);
}

/// A clock name as stored in a fixed field (NUL-padded).
inline std::string_view stored_name(const char (&field)[kClockNameSize]) noexcept {
  std::size_t n = 0;
  while (n < kClockNameSize && field[n]) ++n;
  return std::string_view(field, n);
}

inline void store_name(char (&field)[kClockNameSize], std::string_view name) noexcept {
  std::memset(field, 0, kClockNameSize);
  std::memcpy(field, name.data(), std::min(name.size(), kClockNameSize - 1));
}

}  // namespace leaselock::detail::file
