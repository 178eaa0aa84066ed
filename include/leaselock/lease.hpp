// leaselock/lease.hpp — Lease, the RAII guard for one grant, and LeaseSet for several.
//
// A Lease is what LockManager::try_acquire / acquire return: move-only, empty (false)
// when the request timed out, and it releases its lease when destroyed — never throwing.
// Read Lease first; LeaseSet is the all-or-nothing result of try_acquire_all.
//
// @code
//   auto lease = locks.try_acquire("reports/q3.md", leaselock::Mode::exclusive,
//                                  std::chrono::seconds(30), std::chrono::seconds(5));
//   if (!lease) return busy();                     // someone else kept it for 5 s
//   storage.write(data, lease.fence());            // storage rejects older fences
//   lease.keep_alive([] { stop_writing(); });      // long job: renew in the background
// @endcode
//
// To hand a lease across a call boundary (acquire in one request, release in another,
// as an agent tool server does), detach() it: the guard lets go without releasing, and
// the key and token — Token::to_string() — are all that is needed later for
// LockManager::release, renew or adopt. detach(HolderProcess::none()) also unbinds it
// from this process, so that it outlives it (holder_process.hpp).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <leaselock/backends/backend.hpp>
#include <leaselock/detail/keep_alive.hpp>
#include <leaselock/detail/key_buffer.hpp>
#include <leaselock/detail/time.hpp>
#include <leaselock/holder_process.hpp>
#include <leaselock/limits.hpp>
#include <leaselock/mode.hpp>
#include <leaselock/token.hpp>

namespace leaselock {

namespace detail {

/// What a Lease needs from the manager that issued it.
template <class Clock>
class LeaseIssuer {
 public:
  /// `exact`: the caller wants to know whether the lease expired before this release.
  /// `handle`: the backend's pinned record for the lease (unpinned by the release), or
  /// null to look the key up.
  virtual bool release_lease(std::string_view key, const Token& token, bool exact,
                             BackendHandle handle) = 0;
  virtual std::optional<Nanos> renew_lease(std::string_view key, const Token& token, Nanos ttl,
                                           BackendHandle handle) = 0;
  virtual bool bind_lease(std::string_view key, const Token& token,
                          const HolderProcess& process) = 0;
  virtual void unpin(BackendHandle handle) noexcept = 0;
  virtual void start_keep_alive(std::shared_ptr<KeepAliveState> state) = 0;
  virtual void stop_keep_alive(const KeepAliveState* state) noexcept = 0;

 protected:
  ~LeaseIssuer() = default;
};

}  // namespace detail

template <class Clock = std::chrono::steady_clock>
class Lease {
 public:
  using clock = Clock;
  using duration = typename Clock::duration;
  using time_point = typename Clock::time_point;

  /// An empty lease (holds nothing, converts to false).
  Lease() noexcept = default;

  Lease(Lease&& other) noexcept { take(other); }
  Lease& operator=(Lease&& other) noexcept {
    if (this != &other) {
      end(/*release=*/true, /*exact=*/false);
      take(other);
    }
    return *this;
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  /// Releases the lease if it is still held. Never throws.
  ~Lease() { end(/*release=*/true, /*exact=*/false); }

  /// True while this guard holds a grant (it may have expired meanwhile: see lost()).
  explicit operator bool() const noexcept { return issuer_ != nullptr; }

  /// The key this guard holds (empty for an empty guard).
  std::string_view key() const noexcept { return key_.view(); }
  Mode mode() const noexcept { return mode_; }
  const Token& token() const noexcept { return token_; }
  /// Strictly greater than every fence given out for this key before this grant.
  std::uint64_t fence() const noexcept { return fence_; }
  time_point acquired_at() const noexcept { return detail::from_nanos<Clock>(acquired_at_); }
  /// When the lease expires unless renewed (kept current by keep_alive()).
  time_point expires_at() const noexcept {
    return detail::from_nanos<Clock>(keep_alive_ ? keep_alive_->expires_at.load() : expires_at_);
  }

  /// Extends the lease to now + ttl (any std::chrono duration; saturating, as
  /// LockManager's TTLs). Returns false if it is no longer held (expired and taken, or
  /// released) or the guard is empty. Throws std::invalid_argument if ttl <= 0.
  [[nodiscard]] bool renew(detail::AnyDuration ttl) {
    detail::validate_ttl(ttl.count());
    if (!issuer_) return false;
    auto expires_at = issuer_->renew_lease(key_.view(), token_, ttl.count(), handle_);
    if (!expires_at) return false;
    expires_at_ = *expires_at;
    if (keep_alive_) keep_alive_->expires_at.store(expires_at_);
    return true;
  }

  /// Releases the lease now and empties the guard. Returns true if it was still held
  /// (not expired) until this call; false if it had expired or the guard was empty.
  /// Never throws. (Not [[nodiscard]]: releasing early is a statement of its own.)
  bool release() noexcept { return end(/*release=*/true, /*exact=*/true); }

  /// Empties the guard without releasing: the lease stays held until someone releases it
  /// with its key and token, or it expires. Returns the token (the zero token if empty).
  [[nodiscard]] Token detach() noexcept {
    const Token token = token_;
    end(/*release=*/false, /*exact=*/false);
    return token;
  }

  /// Binds the lease to `process` (LockManager::bind), then detach()es it: for a lease
  /// that must outlive this process (none()) or live and die with another one. Returns
  /// the token; the zero token if the guard was empty or its lease no longer held (the
  /// guard is emptied all the same). Throws std::invalid_argument, leaving the guard as
  /// it was, if `process` has ended.
  [[nodiscard]] Token detach(HolderProcess process) {
    if (!issuer_) return Token{};
    const bool bound = issuer_->bind_lease(key_.view(), token_, process);
    const Token token = detach();
    return bound ? token : Token{};
  }

  /// Renews the lease in the background every `interval` (zero: a third of its TTL),
  /// each time for its TTL as granted, until it is released. If a renewal fails — the
  /// lease ran out before it could be renewed, or was released by token elsewhere —
  /// lost() turns true and `on_lost` runs once, on the renewal thread. Calling it again
  /// replaces the previous keep-alive. Throws std::logic_error on an empty guard.
  void keep_alive(std::function<void()> on_lost = {}, duration interval = duration::zero()) {
    if (!issuer_) throw std::logic_error("leaselock: keep_alive on an empty lease");
    stop_keep_alive();
    auto state = std::make_shared<detail::KeepAliveState>();
    state->key = std::string(key_.view());
    state->token = token_;
    state->mode = mode_;
    state->fence = fence_;
    state->ttl = ttl_;
    state->interval = interval > duration::zero() ? detail::to_nanos(interval)
                                                  : std::max<detail::Nanos>(ttl_ / 3, 1);
    state->on_lost = std::move(on_lost);
    state->expires_at.store(expires_at_);
    issuer_->start_keep_alive(state);
    keep_alive_ = std::move(state);
  }

  /// True once keep_alive() found the lease gone: stop writing under it.
  bool lost() const noexcept { return keep_alive_ && keep_alive_->lost.load(); }

 private:
  template <class, class>
  friend class LockManager;

  Lease(detail::LeaseIssuer<Clock>* issuer, detail::BackendHandle handle, std::string_view key,
        Mode mode, const Token& token, std::uint64_t fence, detail::Nanos acquired_at,
        detail::Nanos expires_at, detail::Nanos ttl)
      : issuer_(issuer),
        handle_(handle),
        key_(key),
        token_(token),
        mode_(mode),
        fence_(fence),
        acquired_at_(acquired_at),
        expires_at_(expires_at),
        ttl_(ttl) {}

  void take(Lease& other) noexcept {
    issuer_ = std::exchange(other.issuer_, nullptr);
    handle_ = std::exchange(other.handle_, nullptr);
    key_ = std::move(other.key_);
    token_ = std::exchange(other.token_, Token{});
    mode_ = other.mode_;
    fence_ = std::exchange(other.fence_, 0);
    acquired_at_ = other.acquired_at_;
    expires_at_ = other.expires_at_;
    ttl_ = other.ttl_;
    keep_alive_ = std::move(other.keep_alive_);
  }

  void stop_keep_alive() noexcept {
    if (!keep_alive_) return;
    keep_alive_->stopped.store(true);
    issuer_->stop_keep_alive(keep_alive_.get());
  }

  // Ends the guard; with `release`, releases the lease (see LeaseIssuer for `exact`).
  bool end(bool release, bool exact) noexcept {
    if (!issuer_) return false;
    stop_keep_alive();
    bool released = false;
    if (release) {
      try {
        released = issuer_->release_lease(key_.view(), token_, exact, handle_);
      } catch (...) {
        // Out of memory while handing the key on: the lease still expires at its TTL.
      }
    } else if (handle_) {
      issuer_->unpin(handle_);
    }
    issuer_ = nullptr;
    handle_ = nullptr;
    key_.clear();
    token_ = Token{};
    fence_ = 0;
    keep_alive_.reset();
    return released;
  }

  detail::LeaseIssuer<Clock>* issuer_ = nullptr;
  detail::BackendHandle handle_ = nullptr;
  detail::KeyBuffer key_;
  Token token_;
  Mode mode_ = Mode::exclusive;
  std::uint64_t fence_ = 0;
  detail::Nanos acquired_at_ = 0;
  detail::Nanos expires_at_ = 0;
  detail::Nanos ttl_ = 0;
  std::shared_ptr<detail::KeepAliveState> keep_alive_;
};

/// The result of an all-or-nothing multi-key acquisition: either a lease on every
/// requested key (sorted by key, duplicates merged) or none. Releases them all when
/// destroyed.
template <class Clock = std::chrono::steady_clock>
class LeaseSet {
 public:
  using duration = typename Clock::duration;

  LeaseSet() noexcept = default;
  explicit LeaseSet(std::vector<Lease<Clock>> leases) noexcept : leases_(std::move(leases)) {}

  /// True when every requested key is held.
  explicit operator bool() const noexcept { return !leases_.empty(); }
  std::size_t size() const noexcept { return leases_.size(); }
  const Lease<Clock>& operator[](std::size_t i) const { return leases_.at(i); }
  Lease<Clock>& operator[](std::size_t i) { return leases_.at(i); }
  auto begin() noexcept { return leases_.begin(); }
  auto end() noexcept { return leases_.end(); }
  auto begin() const noexcept { return leases_.begin(); }
  auto end() const noexcept { return leases_.end(); }

  /// The lease on `key`, or nullptr.
  const Lease<Clock>* find(std::string_view key) const noexcept {
    for (const auto& lease : leases_)
      if (lease.key() == key) return &lease;
    return nullptr;
  }

  /// Renews every lease; true only if all were still held.
  [[nodiscard]] bool renew(detail::AnyDuration ttl) {
    bool all = !leases_.empty();
    for (auto& lease : leases_) all = lease.renew(ttl) && all;
    return all;
  }

  /// Releases every lease; true only if all were still held. Never throws.
  bool release() noexcept {
    bool all = !leases_.empty();
    for (auto& lease : leases_) all = lease.release() && all;
    leases_.clear();
    return all;
  }

 private:
  std::vector<Lease<Clock>> leases_;
};

}  // namespace leaselock
