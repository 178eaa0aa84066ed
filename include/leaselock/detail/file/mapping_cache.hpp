// leaselock/detail/file/mapping_cache.hpp — one process's cache of mapped record files.
//
// Mapping a record file costs system calls; using a mapped one costs none. So a backend
// keeps its mappings in 64 shards, each a chained hash table by key (a mutex each) and
// two LRU lists of the mappings nobody uses now: records that were idle when last let go
// (a few per shard: kIdle), and records others hold (up to cached_records in all: kBusy).
// A mapping in use (an operation, or a lease pinning it) is on no list and never leaves.
// What leaves — pushed out of a list, or forgotten while in use — is handed back to the
// caller to retire (remove its file if idle, unmap it): the cache does no I/O.
//
// Node is the caller's mapping type; it derives from CacheLinks<Node> and has
// `std::string key`.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>

#include <leaselock/detail/intrusive_table.hpp>

namespace leaselock::detail::file {

enum LruList { kNoList = 0, kIdle = 1, kBusy = 2 };

/// The cache's part of a node, guarded by its shard's mutex (idle_hint: by the record's).
template <class Node>
struct CacheLinks {
  // Looked up by (hash, key) in its shard's chained table.
  std::uint64_t hash = 0;
  Node* next = nullptr;
  bool in_table = false;
  std::uint32_t refs = 0;  // users now, and leases pinning it
  Node* lru_prev = nullptr;
  Node* lru_next = nullptr;
  LruList lru = kNoList;
  bool idle_hint = true;  // the record was idle at the end of its last operation
};

template <class Node>
class MappingCache {
 public:
  static constexpr std::size_t kShards = 64;
  static constexpr std::size_t kIdlePerShard = 4;

  explicit MappingCache(std::size_t cached_records)
      : busy_per_shard_(std::max<std::size_t>(1, cached_records / kShards)) {}
  MappingCache(const MappingCache&) = delete;
  MappingCache& operator=(const MappingCache&) = delete;

  /// The node of `key` (whose hash is `hash`) with one more reference, or nullptr.
  Node* find_ref(std::string_view key, std::uint64_t hash) {
    Shard& shard = shard_for(hash);
    std::lock_guard<std::mutex> lock(shard.mutex);
    Node* m = shard.find(key, hash);
    if (m) take(shard, *m);
    return m;
  }

  /// Adds `fresh` (its hash set) with one reference and releases it from `fresh` — unless
  /// another thread added a node of the key meanwhile: then references that one and leaves
  /// `fresh` alone. Sets `victim` to a node pushed out of the cache, or nullptr.
  Node* insert_ref(std::unique_ptr<Node>& fresh, Node*& victim) {
    Shard& shard = shard_for(fresh->hash);
    victim = nullptr;
    std::lock_guard<std::mutex> lock(shard.mutex);
    if (Node* m = shard.find(fresh->key, fresh->hash)) {
      take(shard, *m);
      return m;
    }
    fresh->refs = 1;
    shard.insert(fresh.get());
    if (shard.lists[kBusy].size > busy_per_shard_) victim = shard.pop_back(kBusy);
    return fresh.release();
  }

  /// Drops one reference to `m`. Returns a node that left the cache — `m`, if it was
  /// forgotten while in use, or the least recently used one of the list `m` joined, if
  /// that is over its limit — or nullptr.
  Node* release_ref(Node& m) noexcept {
    Shard& shard = shard_for(m.hash);
    std::lock_guard<std::mutex> lock(shard.mutex);
    if (--m.refs != 0) return nullptr;
    if (!m.in_table) return &m;  // forgotten while in use: let it go now
    return m.idle_hint ? shard.push_front(m, kIdle, kIdlePerShard)
                       : shard.push_front(m, kBusy, busy_per_shard_);
  }

  /// Takes `m` out of the table (its record file was removed): later lookups miss, and
  /// the last release_ref() hands it back.
  void forget(Node& m) noexcept {
    Shard& shard = shard_for(m.hash);
    std::lock_guard<std::mutex> lock(shard.mutex);
    if (m.in_table) shard.erase(&m);
  }

  /// Takes out of the cache the least recently used node nobody uses (idle ones first),
  /// from any shard; nullptr if every node is in use.
  Node* pop_unused() noexcept {
    for (const LruList which : {kIdle, kBusy}) {
      for (Shard& shard : shards_) {
        std::lock_guard<std::mutex> lock(shard.mutex);
        if (Node* m = shard.pop_back(which)) return m;
      }
    }
    return nullptr;
  }

  /// Hands every node to fn (which disposes of it) and empties the cache.
  template <class Fn>
  void drain(Fn&& fn) {
    for (Shard& shard : shards_) {
      shard.table.for_each(fn);
      shard.table.clear();
    }
  }

 private:
  struct alignas(64) Shard {
    std::mutex mutex;
    IntrusiveTable<Node> table;
    struct List {
      Node* head = nullptr;
      Node* tail = nullptr;
      std::size_t size = 0;
    } lists[3];

    Node* find(std::string_view key, std::uint64_t hash) const noexcept {
      return table.find(hash, [&](const Node& m) { return m.key == key; });
    }
    void insert(Node* m) noexcept {
      table.insert(m);
      m->in_table = true;
    }
    void erase(Node* m) noexcept {
      table.erase(m);
      m->in_table = false;
    }
    void unlink(Node& m) noexcept {
      List& list = lists[m.lru];
      (m.lru_prev ? m.lru_prev->lru_next : list.head) = m.lru_next;
      (m.lru_next ? m.lru_next->lru_prev : list.tail) = m.lru_prev;
      m.lru_prev = m.lru_next = nullptr;
      m.lru = kNoList;
      --list.size;
    }
    // Puts m first in `which`; returns the least recently used node of that list, out of
    // the shard, if the list is over `limit`.
    Node* push_front(Node& m, LruList which, std::size_t limit) noexcept {
      List& list = lists[which];
      m.lru = which;
      m.lru_prev = nullptr;
      m.lru_next = list.head;
      (list.head ? list.head->lru_prev : list.tail) = &m;
      list.head = &m;
      return ++list.size > limit ? pop_back(which) : nullptr;
    }
    Node* pop_back(LruList which) noexcept {
      Node* m = lists[which].tail;
      if (!m) return nullptr;
      unlink(*m);
      erase(m);
      return m;
    }
  };

  // A new user of m: it leaves its LRU list while in use.
  static void take(Shard& shard, Node& m) noexcept {
    if (m.refs++ == 0 && m.lru != kNoList) shard.unlink(m);
  }

  Shard& shard_for(std::uint64_t hash) noexcept {
    return shards_[static_cast<std::size_t>(hash >> 58) & (kShards - 1)];
  }

  std::size_t busy_per_shard_;
  Shard shards_[kShards];
};

}  // namespace leaselock::detail::file
