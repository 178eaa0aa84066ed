// leaselock/detail/file/key_mappings.hpp — finding a key's mapped record file.
//
// KeyMappings is a FileBackend's cache of mapped record files (mapping_cache.hpp) over its
// RecordStore: an operation takes a reference to its key's mapping (Ref), mapping the
// file — or creating it — when the cache has none; a mapping found marked removed is
// finished off and opened afresh. Mappings that leave the cache are retired: their file
// removed if idle, then unmapped. Each key in use is one memory mapping, under the
// process's limit (make_room()).
#pragma once

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <leaselock/backends/backend.hpp>
#include <leaselock/detail/file/codec.hpp>
#include <leaselock/detail/file/mapping_cache.hpp>
#include <leaselock/detail/file/record_file.hpp>
#include <leaselock/detail/file/record_store.hpp>
#include <leaselock/detail/file/waiting.hpp>
#include <leaselock/detail/hash.hpp>

namespace leaselock::detail::file {

class KeyMappings {
 public:
  KeyMappings(RecordStore& store, std::size_t cached_records)
      : store_(store), cache(cached_records) {}
  KeyMappings(const KeyMappings&) = delete;
  KeyMappings& operator=(const KeyMappings&) = delete;

  ~KeyMappings() {
    cache.drain([&](Mapped* m) {
      try {
        store_.remove_if_idle(*m, kOneTryPatience);
      } catch (...) {
      }
      delete m;
    });
  }

  // Finds or maps key's record; creates it if missing and `create`. Takes a reference.
  Mapped* acquire_ref(std::string_view key, bool create, std::chrono::nanoseconds patience) {
    if (store_.clock.empty())
      throw std::logic_error("leaselock: FileBackend used before a LockManager attached its clock");
    const std::uint64_t hash = detail::hash_bytes(key, detail::process_hash_seed());
    if (Mapped* m = cache.find_ref(key, hash)) return m;
    const std::string name = detail::file::record_name(key);
    make_room();
    std::unique_ptr<Mapped> fresh;
    for (;;) {
      fresh = std::make_unique<Mapped>();
      if (detail::file::map_record(store_.directory, name, &key, store_.clock, *fresh)) {
        if (!take_if_live(*fresh, patience)) continue;
        break;
      }
      if (!create) return nullptr;
      fresh = std::make_unique<Mapped>();
      if (detail::file::create_record(store_.directory, key, name, store_.clock,
                                      store_.meta.fence_floor(), *fresh))
        break;  // else another process was first: map theirs
    }
    fresh->hash = hash;
    Mapped* victim = nullptr;
    Mapped* m = cache.insert_ref(fresh, victim);
    retire(victim);
    return m;
  }

  // A freshly mapped record: true if it is in use; if it was marked removed, finishes
  // the removal (a remover that died half-way) and returns false.
  bool take_if_live(Mapped& m, std::chrono::nanoseconds patience) {
    bool live = true;
    bool owner_died = false;
    {
      RecordStore::RecordLock lock(store_, m, patience);
      owner_died = lock.owner_died;
      if (owner_died) detail::file::announce_change(*m.header);
      if (store_.marked_removed(m)) {
        store_.directory.unlink_if_same(m.name, m.device, m.inode);
        live = false;
      }
    }
    // A process died holding the mutex, perhaps before waking the waiters of its change.
    if (owner_died) detail::file::wake_sleepers(*m.header);
    return live;
  }

  std::chrono::nanoseconds stall_timeout() const noexcept { return store_.stall_timeout(); }

  void release_ref(Mapped& m) noexcept { retire(cache.release_ref(m)); }

  // Before mapping one more record file: under the process's limit of mappings, drops
  // unused cached ones to stay there; StorageError if every mapping is in use.
  void make_room() {
    const auto over = [] {
      return detail::file::mapped_records().load(std::memory_order_relaxed) >=
             detail::file::record_mapping_limit().load(std::memory_order_relaxed);
    };
    while (over()) {
      Mapped* unused = cache.pop_unused();
      if (!unused) {
        const std::size_t limit = detail::file::record_mapping_limit().load();
        detail::file::fail("too many keys in use: this process maps " +
                               std::to_string(detail::file::mapped_records().load()) +
                               " record files, its limit of " + std::to_string(limit) +
                               " (one memory mapping per key held or waited for; the limit is "
                               "vm.max_map_count less room for the rest of the process)",
                           store_.directory.path(), ENOMEM);
      }
      retire(unused);
    }
  }

  // Drops the mapping of a record whose file was removed: later users open it afresh.
  void forget(Mapped& m) noexcept { cache.forget(m); }

  // A mapping out of the cache: remove its file if idle, then unmap it.
  void retire(Mapped* m) noexcept {
    if (!m) return;
    try {
      store_.remove_if_idle(*m, kOneTryPatience);
    } catch (...) {
    }
    delete m;
  }

 private:
  RecordStore& store_;
  MappingCache<Mapped> cache;
};

// A reference to a key's mapping for the length of one operation (or a pin).
class Ref {
 public:
  Ref(KeyMappings& keys, std::string_view key, bool create = true,
      std::optional<std::chrono::nanoseconds> patience = std::nullopt)
      : keys_(keys),
        mapped_(keys.acquire_ref(key, create, patience ? *patience : keys.stall_timeout())) {}
  Ref(const Ref&) = delete;
  Ref& operator=(const Ref&) = delete;
  ~Ref() {
    if (mapped_) keys_.release_ref(*mapped_);
  }
  explicit operator bool() const noexcept { return mapped_ != nullptr; }
  Mapped& operator*() const noexcept { return *mapped_; }
  // Keeps the reference for a lease: the handle stays valid until unpin().
  detail::BackendHandle pin() noexcept { return std::exchange(mapped_, nullptr); }
  // The record was removed: drop the mapping, so the next attempt opens the key afresh.
  void forget() noexcept {
    keys_.forget(*mapped_);
    keys_.release_ref(*std::exchange(mapped_, nullptr));
  }

 private:
  KeyMappings& keys_;
  Mapped* mapped_;
};

}  // namespace leaselock::detail::file
