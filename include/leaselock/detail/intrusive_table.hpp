// leaselock/detail/intrusive_table.hpp — a chained hash table of nodes that link themselves.
//
// Both backends keep one per shard: InProcessBackend of its records, FileBackend of its
// mapped record files. A Node has `Node* next` (the chain link, owned by the table while
// the node is in it) and `std::uint64_t hash`; lookups compare the stored hash before
// calling the caller's key match, so a miss rarely touches a key. The table grows when it
// holds as many nodes as buckets and shrinks below one node per 8 buckets; it never
// allocates a node and never throws from erase().
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace leaselock::detail {

template <class Node>
class IntrusiveTable {
 public:
  static constexpr std::size_t kMinBuckets = 16;

  /// The node with `hash` for which match(node) is true, or nullptr.
  template <class Match>
  Node* find(std::uint64_t hash, Match&& match) const noexcept {
    for (Node* node = buckets_[slot(hash)]; node; node = node->next)
      if (node->hash == hash && match(*node)) return node;
    return nullptr;
  }

  /// Adds `node` (not in the table), by its `hash`.
  void insert(Node* node) noexcept {
    if (count_ >= buckets_.size()) rehash(buckets_.size() * 2);
    Node*& head = buckets_[slot(node->hash)];
    node->next = head;
    head = node;
    ++count_;
  }

  /// Takes `node` (in the table) out.
  void erase(Node* node) noexcept {
    Node** link = &buckets_[slot(node->hash)];
    while (*link != node) link = &(*link)->next;
    *link = node->next;
    node->next = nullptr;
    --count_;
    if (buckets_.size() > kMinBuckets && count_ < buckets_.size() / 8) rehash(buckets_.size() / 2);
  }

  std::size_t size() const noexcept { return count_; }

  /// Calls fn(node) for every node; fn may destroy the node it is given (the table must
  /// then be clear()ed or dropped without further use).
  template <class Fn>
  void for_each(Fn&& fn) const {
    for (Node* head : buckets_) {
      while (head) {
        Node* next = head->next;
        fn(head);
        head = next;
      }
    }
  }

  /// Calls fn(node) for the nodes of up to `count` buckets, from bucket `start` (taken
  /// modulo the bucket count) on, stopping at the last bucket. Returns the bucket to
  /// start from next time: 0 once the table has been gone through. fn must not change
  /// the table.
  template <class Fn>
  std::size_t visit_buckets(std::size_t start, std::size_t count, Fn&& fn) const {
    std::size_t bucket = start & (buckets_.size() - 1);
    const std::size_t end = std::min(buckets_.size(), bucket + count);
    for (; bucket < end; ++bucket)
      for (Node* node = buckets_[bucket]; node; node = node->next) fn(node);
    return bucket == buckets_.size() ? 0 : bucket;
  }

  /// Forgets every node (does not destroy them).
  void clear() noexcept {
    for (Node*& head : buckets_) head = nullptr;
    count_ = 0;
  }

 private:
  // The low bits pick the shard in InProcessBackend: buckets use bits above them.
  std::size_t slot(std::uint64_t hash) const noexcept {
    return static_cast<std::size_t>(hash >> 7) & (buckets_.size() - 1);
  }

  // A failed allocation just keeps the current size.
  void rehash(std::size_t size) noexcept {
    std::vector<Node*> fresh;
    try {
      fresh.assign(size, nullptr);
    } catch (...) {
      return;
    }
    for (Node* head : buckets_) {
      while (head) {
        Node* next = head->next;
        Node*& bucket = fresh[static_cast<std::size_t>(head->hash >> 7) & (size - 1)];
        head->next = bucket;
        bucket = head;
        head = next;
      }
    }
    buckets_.swap(fresh);
  }

  std::vector<Node*> buckets_ = std::vector<Node*>(kMinBuckets, nullptr);
  std::size_t count_ = 0;
};

}  // namespace leaselock::detail
