// leaselock/detail/postgres/row_cache.hpp — what a PostgresBackend last knew of the rows
// of the keys it used, and of each shard's fence floor.
//
// A decision is made on the client's copy of a key's row and stored only if the row is
// still at that version (decision.hpp), so a copy that is behind costs one refused
// statement and a read, never a wrong result: the cache needs no invalidation, only a
// bound on its size (it is emptied when full). A copy known to be behind (a notification
// announced a grant made since) is marked stale, and read before the next decision on it.
// For a key with no row the client assumes its shard's floor, as last read; cleanup
// raises floors and removes rows, so it forgets everything.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include <leaselock/detail/postgres/schema.hpp>
#include <leaselock/detail/semantics.hpp>

namespace leaselock::detail::postgres {

/// What the client last knew of a key's row.
struct KnownRow {
  std::int64_t version = 0;  // 0: no row
  std::int64_t writer = 0;
  Record record;
  std::string bytes;   // encode(record) when version != 0
  bool stale = false;  // known to be behind the row: read it before deciding
};

/// The rows of keys by key (at most kLimit of them), and the fence floor of each shard.
/// Thread-safe.
class RowCache {
 public:
  RowCache() {
    for (auto& floor : floors_) floor.store(-1);
  }
  RowCache(const RowCache&) = delete;
  RowCache& operator=(const RowCache&) = delete;

  /// The row last remembered for `key`, if any.
  std::optional<KnownRow> find(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = rows_.find(key);
    if (it == rows_.end()) return std::nullopt;
    return it->second;
  }
  void remember(const std::string& key, KnownRow row) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (rows_.size() >= kLimit) rows_.clear();
    rows_[key] = std::move(row);
  }
  /// Marks the row of `key` (if remembered) as behind: read it before deciding on it.
  void mark_stale(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = rows_.find(key);
    if (it != rows_.end()) it->second.stale = true;
  }
  /// Forgets every row and every floor (after cleanup removed rows and raised floors).
  void forget_all() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      rows_.clear();
    }
    for (auto& floor : floors_) floor.store(-1);
  }

  /// No row, in shard `shard`: a blank record above the shard's floor as last read.
  KnownRow blank(int shard) const {
    KnownRow row;
    const std::int64_t floor = floors_[shard].load(std::memory_order_relaxed);
    row.record.last_fence = floor < 0 ? 0 : static_cast<std::uint64_t>(floor);
    return row;
  }
  /// The floor of shard `shard` as the server just returned it.
  void learn_floor(int shard, std::int64_t floor) { floors_[shard].store(floor); }

 private:
  static constexpr std::size_t kLimit = 16384;

  std::mutex mutex_;
  std::unordered_map<std::string, KnownRow> rows_;
  std::atomic<std::int64_t> floors_[kShards];
};

}  // namespace leaselock::detail::postgres
