// leaselock/backends/in_process.hpp — leases shared by the threads of one process.
//
// InProcessBackend keeps every key's record in a hash table split into shards, each with
// its own mutex, so threads working on different keys rarely meet. Waiting threads sleep
// on their own condition variable (detail::Parker) and are woken by the change they wait
// for — a release, a grant made for them, a waiter ahead of them leaving — or at their
// deadline or a blocker's expiry; nobody polls; only the threads a change concerns are
// woken. A key that nobody holds or waits for is removed from the table — each shard
// keeps its last kIdleRecords idle keys a while, and kSpareRecords emptied records, for
// reuse — and the tables shrink as keys go, so memory follows the keys in use. Records
// of abandoned leases (detached or forgotten, never released, expired) are swept as the
// backend is used: every operation pays for a few table slots of a sweep that goes
// round every shard (see kSweepEvery), so they go without anyone touching their keys.
//
// Scope: one process. Leases do not survive it, and other processes do not see them
// (use FileBackend for that). Read backends/backend.hpp for the interface it implements.
//
// @code
//   leaselock::LockManager<std::chrono::steady_clock, leaselock::InProcessBackend> locks;
//   auto lease = locks.acquire("/srv/shared/state.json", leaselock::Mode::exclusive,
//                              std::chrono::seconds(30));
// @endcode
#pragma once

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <leaselock/backends/backend.hpp>
#include <leaselock/detail/hash.hpp>
#include <leaselock/detail/intrusive_table.hpp>
#include <leaselock/detail/parker.hpp>
#include <leaselock/detail/semantics.hpp>
#include <leaselock/detail/time.hpp>
#include <leaselock/token.hpp>

namespace leaselock {

class InProcessBackend {
 public:
  /// Idle records each shard keeps in its table, and emptied ones it keeps for reuse,
  /// so that a hot key costs no allocation; memory for keys nobody holds is bounded by
  /// shards x (kIdleRecords + kSpareRecords) records, however many keys come and go.
  static constexpr std::size_t kIdleRecords = 4;
  static constexpr std::size_t kSpareRecords = 4;
  static constexpr std::size_t kDefaultShards = 64;
  /// The sweep of abandoned records: one step every kSweepEvery operations (creating a
  /// record counts as kSweepCreateCost), each step looking at kSweepBuckets table slots
  /// of the next shard in turn and dropping the records there whose every lease has run
  /// out, with no waiter and no Lease guard left. Their expiry is not reported to an
  /// observer (nobody asked for the key again). Needs the manager's clock (attach_clock).
  static constexpr int kSweepEvery = 64;
  static constexpr int kSweepCreateCost = 16;
  static constexpr std::size_t kSweepBuckets = 16;

  InProcessBackend() : InProcessBackend(kDefaultShards) {}
  /// `shards` must be a power of two >= 1 (std::invalid_argument otherwise).
  explicit InProcessBackend(std::size_t shards) : state_(std::make_unique<State>(shards)) {}

  InProcessBackend(InProcessBackend&&) noexcept = default;
  InProcessBackend& operator=(InProcessBackend&&) noexcept = default;

  /// Gives the backend the manager's clock (LockManager calls it), by which the sweep
  /// and remove_idle() tell which leases have run out.
  template <class Clock>
  void attach_clock(const Clock& clock) {
    state_->now = [clock] { return detail::now_nanos(clock); };
  }

  /// Drops at once every record that nobody waits for and whose leases have all run out
  /// (with no Lease guard left), idle records kept for reuse included; the sweep does
  /// the same a little at a time. Returns how many records it dropped.
  std::size_t remove_idle() {
    std::size_t removed = 0;
    std::vector<Node*> victims;
    for (Shard& shard : state_->shards) {
      const detail::Nanos now =
          state_->now ? state_->now() : std::numeric_limits<detail::Nanos>::min();
      std::lock_guard<std::mutex> lock(shard.mutex);
      victims.clear();
      shard.table.for_each([&](Node* node) {
        if (Shard::removable(*node, now)) victims.push_back(node);
      });
      for (Node* node : victims) shard.drop(node);
      removed += victims.size();
    }
    return removed;
  }

  template <class Fn>
  auto update(std::string_view key, Fn&& fn) {
    return on_node(key, [&](Node& node) { return fn(node.record); });
  }

  template <class Fn>
  auto update(std::string_view key, Fn&& fn, detail::BackendHandle* pin) {
    return on_node(key, [&](Node& node) {
      auto result = fn(node.record);
      if (result) *pin = node.pin();
      return result;
    });
  }

  template <class Fn>
  auto update(detail::BackendHandle handle, Fn&& fn, bool unpin) {
    Node* node = static_cast<Node*>(handle);
    Shard& shard = state_->shard_for(node->hash);
    std::lock_guard<std::mutex> lock(shard.mutex);
    if (unpin) --node->pins;
    Finisher finish{shard, node, node->record.version};
    return fn(node->record);
  }

  void unpin(detail::BackendHandle handle) noexcept {
    Node* node = static_cast<Node*>(handle);
    Shard& shard = state_->shard_for(node->hash);
    std::lock_guard<std::mutex> lock(shard.mutex);
    --node->pins;
    if (node->record.idle()) shard.retire(node);
  }

  template <class Clock, class Fn>
  auto wait_update(std::string_view key, const Token& waiter, const Clock& clock,
                   detail::Nanos /*deadline*/, Fn&& fn, detail::BackendHandle* pin) {
    const std::uint64_t hash = detail::hash_bytes(key, state_->seed);
    Shard& shard = state_->shard_for(hash);
    detail::Parker& parker = detail::this_thread_parker();
    Parked parked{&parker, waiter};
    std::unique_lock<std::mutex> lock(shard.mutex);
    for (;;) {
      Node* node = shard.find_or_create(key, hash);
      auto step = [&] {
        Finisher finish{shard, node, node->record.version};
        return fn(node->record);
      }();
      if (step.result) {
        if (*step.result) *pin = node->pin();
        return std::move(*step.result);
      }
      if (node->record.idle()) continue;  // fn left nothing to wait in: run it again
      parker.reset();
      node->link(parked);
      lock.unlock();
      struct Relink {
        std::unique_lock<std::mutex>& lock;
        Parked& parked;
        ~Relink() {
          if (!lock.owns_lock()) lock.lock();
          if (parked.node) parked.node->unlink(parked);
        }
      } relink{lock, parked};
      detail::park_until(clock, parker, step.wake_at);
    }
  }

  template <class Fn>
  void read(std::string_view key, Fn&& fn) const {
    const std::uint64_t hash = detail::hash_bytes(key, state_->seed);
    Shard& shard = state_->shard_for(hash);
    std::lock_guard<std::mutex> lock(shard.mutex);
    const Node* node = shard.find(key, hash);
    fn(node ? &node->record : nullptr);
  }

  template <class Fn>
  void read_all(Fn&& fn) const {
    for (Shard& shard : state_->shards) {
      std::lock_guard<std::mutex> lock(shard.mutex);
      shard.table.for_each([&](const Node* node) { fn(node->key(), node->record); });
    }
  }

  /// How many keys have a record now (held, expired but not yet cleaned, or waited for).
  /// Idle records kept for reuse are not counted.
  std::size_t record_count() const {
    std::size_t count = 0;
    for (Shard& shard : state_->shards) {
      std::lock_guard<std::mutex> lock(shard.mutex);
      count += shard.table.size();
      for (const Node* cached : shard.idle_cache) count -= cached && cached->record.idle();
    }
    return count;
  }

 private:
  struct Node;
  struct State;

  // Runs body(node) on key's node under its shard's lock, then finishes the node
  // (wakes concerned waiters, retires it if idle).
  template <class Body>
  auto on_node(std::string_view key, Body&& body) {
    const std::uint64_t hash = detail::hash_bytes(key, state_->seed);
    Shard& shard = state_->shard_for(hash);
    std::lock_guard<std::mutex> lock(shard.mutex);
    Node* node = shard.find_or_create(key, hash);
    Finisher finish{shard, node, node->record.version};
    return body(*node);
  }

  // A thread parked on a node, in the node's intrusive list.
  struct Parked {
    detail::Parker* parker;
    Token token;
    Node* node = nullptr;
    Parked* prev = nullptr;
    Parked* next = nullptr;
  };

  struct Node {
    Node* next = nullptr;
    bool in_idle_cache = false;
    // Leases that hold this node as their handle; a pinned node is never dropped.
    std::uint32_t pins = 0;
    std::uint64_t hash = 0;
    std::uint32_t key_size = 0;
    std::uint32_t key_capacity = 0;  // the key's bytes follow the node in one allocation
    detail::Record record;
    Parked* parked = nullptr;

    // A node with room for a key of up to `capacity` bytes right after it.
    static Node* create(std::size_t capacity) {
      void* memory = ::operator new(sizeof(Node) + capacity);
      Node* node = ::new (memory) Node;
      node->key_capacity = static_cast<std::uint32_t>(capacity);
      return node;
    }
    static void destroy(Node* node) noexcept {
      node->~Node();
      ::operator delete(node);
    }
    char* key_bytes() noexcept { return reinterpret_cast<char*>(this + 1); }
    const char* key_bytes() const noexcept { return reinterpret_cast<const char*>(this + 1); }
    std::string_view key() const noexcept { return {key_bytes(), key_size}; }

    detail::BackendHandle pin() noexcept {
      ++pins;
      return this;
    }
    void link(Parked& p) noexcept {
      p.node = this;
      p.prev = nullptr;
      p.next = parked;
      if (parked) parked->prev = &p;
      parked = &p;
    }
    void unlink(Parked& p) noexcept {
      if (p.prev)
        p.prev->next = p.next;
      else
        parked = p.next;
      if (p.next) p.next->prev = p.prev;
      p.node = nullptr;
    }
    // Wakes the parked threads the change concerns (detail::should_wake).
    void wake_concerned() noexcept {
      for (Parked* p = parked; p; p = p->next)
        if (detail::should_wake(record, p->token)) p->parker->unpark();
    }
    // Wakes and forgets every parked thread: the node is going.
    void detach_parked() noexcept {
      for (Parked* p = parked; p;) {
        Parked* next = p->next;
        p->node = nullptr;
        p->parker->unpark();
        p = next;
      }
      parked = nullptr;
    }
  };

  struct alignas(64) Shard {
    mutable std::mutex mutex;
    detail::IntrusiveTable<Node> table;
    Node* spare = nullptr;
    std::size_t spare_count = 0;
    // Records that went idle lately stay in the table (a hot key is not removed and
    // re-made on every release); the oldest is removed when a newer one comes.
    Node* idle_cache[kIdleRecords] = {};
    std::size_t idle_next = 0;
    // Every fence this shard ever gave a key it has since dropped is <= fence_floor; a
    // key's records always live in the same shard, so its fences keep increasing.
    std::uint64_t fence_floor = 0;
    // Operations until this shard's next sweep step (see kSweepEvery), and the bucket
    // where the sweep goes on in this shard.
    int until_sweep = kSweepEvery;
    std::size_t sweep_bucket = 0;
    State* state = nullptr;

    Shard() = default;
    Shard(const Shard&) = delete;
    Shard& operator=(const Shard&) = delete;
    ~Shard() {
      table.for_each([](Node* node) { Node::destroy(node); });
      delete_chain(spare);
    }

    static void delete_chain(Node* node) noexcept {
      while (node) {
        Node* next = node->next;
        Node::destroy(node);
        node = next;
      }
    }

    Node* find(std::string_view key, std::uint64_t hash) const noexcept {
      return table.find(hash, [&](const Node& node) {
        return node.key_size == key.size() &&
               detail::same_bytes(node.key_bytes(), key.data(), key.size());
      });
    }

    Node* find_or_create(std::string_view key, std::uint64_t hash) {
      if (Node* node = find(key, hash)) return node;
      Node* node = spare;
      if (node && node->key_capacity >= key.size()) {
        spare = node->next;
        --spare_count;
      } else {
        node = Node::create((key.size() + 15) & ~std::size_t{15});
      }
      count_for_sweep(kSweepCreateCost);
      std::memcpy(node->key_bytes(), key.data(), key.size());
      node->key_size = static_cast<std::uint32_t>(key.size());
      node->hash = hash;
      node->record.last_fence = fence_floor;
      node->record.last_ticket = 0;
      node->record.version = 0;
      table.insert(node);
      return node;
    }

    // Counts an operation (a record going idle, or `cost` for a new record) towards the
    // next sweep step, and runs the step when it is due.
    void count_for_sweep(int cost = 1) noexcept {
      until_sweep -= cost;
      if (until_sweep > 0) return;
      until_sweep = kSweepEvery;
      state->sweep_step(*this);
    }

    // Nobody waits, no Lease guard holds it, and every lease on it has run out by `now`.
    static bool removable(const Node& node, detail::Nanos now) noexcept {
      if (node.pins != 0 || !node.record.waiters.empty()) return false;
      for (const detail::Holder& holder : node.record.holders)
        if (holder.expires_at > now) return false;
      return true;
    }

    // One sweep step: drops the records of abandoned leases in the next `buckets` slots.
    void sweep(detail::Nanos now, std::size_t buckets) noexcept {
      constexpr std::size_t kMaxVictims = 2 * kSweepBuckets;
      Node* victims[kMaxVictims];
      std::size_t count = 0;
      sweep_bucket = table.visit_buckets(sweep_bucket, buckets, [&](Node* node) {
        if (count < kMaxVictims && !node->record.holders.empty() && removable(*node, now))
          victims[count++] = node;
      });
      for (std::size_t i = 0; i < count; ++i) drop(victims[i]);
    }

    void drop(Node* node) noexcept {
      assert(node->pins == 0 && "a record a lease still holds is never dropped");
      if (node->in_idle_cache) {
        for (Node*& cached : idle_cache)
          if (cached == node) cached = nullptr;
        node->in_idle_cache = false;
      }
      table.erase(node);
      fence_floor = std::max(fence_floor, node->record.last_fence);
      node->detach_parked();
      if (spare_count < kSpareRecords && node->key_capacity <= 256) {
        node->record.holders.clear();
        node->record.waiters.clear();
        node->next = spare;
        spare = node;
        ++spare_count;
      } else {
        Node::destroy(node);
      }
    }

    // A record went idle: keep it in the table for now, and drop the oldest idle one.
    void retire(Node* node) noexcept {
      count_for_sweep();
      if (node->in_idle_cache) return;
      Node*& slot_ref = idle_cache[idle_next];
      idle_next = (idle_next + 1) % kIdleRecords;
      Node* oldest = std::exchange(slot_ref, node);
      node->in_idle_cache = true;
      if (!oldest) return;
      oldest->in_idle_cache = false;
      if (oldest->record.idle() && oldest->pins == 0) drop(oldest);
    }
  };

  // After a transition: wake the key's sleepers if it changed, drop it if idle.
  struct Finisher {
    Shard& shard;
    Node* node;
    std::uint64_t version;
    ~Finisher() {
      if (node->record.version != version) node->wake_concerned();
      if (node->record.idle()) shard.retire(node);
    }
  };

  struct State {
    explicit State(std::size_t count) : shards(validated(count)), mask(count - 1) {
      for (Shard& shard : shards) shard.state = this;
    }

    // One step of the sweep, run by `caller` under its lock: on the next shard in turn,
    // unless another thread has that shard's lock now (then this step is skipped).
    void sweep_step(Shard& caller) noexcept {
      if (!now) return;
      Shard& shard = shards[sweep_shard.fetch_add(1, std::memory_order_relaxed) & mask];
      if (&shard != &caller && !shard.mutex.try_lock()) return;
      try {
        shard.sweep(now(), kSweepBuckets);
      } catch (...) {  // a clock that throws: the records stay until the next step
      }
      if (&shard != &caller) shard.mutex.unlock();
    }

    static std::size_t validated(std::size_t count) {
      if (count == 0 || (count & (count - 1)) != 0)
        throw std::invalid_argument(
            "leaselock: InProcessBackend shard count must be a power of two");
      return count;
    }
    Shard& shard_for(std::uint64_t hash) noexcept {
      return shards[static_cast<std::size_t>(hash) & mask];
    }
    std::vector<Shard> shards;
    std::size_t mask;
    std::uint64_t seed = detail::process_hash_seed();
    std::function<detail::Nanos()> now;  // the manager's clock, once attached
    std::atomic<std::size_t> sweep_shard{0};
  };

  std::unique_ptr<State> state_;
};

}  // namespace leaselock
