// leaselock/lock_manager.hpp — LockManager, the front door. Read this class first.
//
// LockManager<Clock, Backend> hands out leases on keys: it validates requests, asks the
// lock semantics (detail/semantics.hpp) to decide, has the Backend store the outcome
// atomically, waits when asked to, and reports to an Observer. It is thread-safe: one
// manager may be used from any number of threads. Leases, LeaseSets and NamedMutexes
// it hands out must not outlive it.
//
// @code
//   leaselock::local_lock_manager locks;                 // threads of this process
//   {
//     auto lease = locks.acquire("repo/src/main.cpp", leaselock::Mode::exclusive,
//                                std::chrono::seconds(30));
//     edit_file(lease.fence());
//   }                                                   // released here
//   auto reader = locks.try_acquire("repo/README.md", leaselock::Mode::shared,
//                                   std::chrono::seconds(10), std::chrono::milliseconds(200));
//   if (!reader) { /* still busy after 200 ms */ }
// @endcode
//
// Durations: every `ttl` and `wait` is a std::chrono duration of any unit (seconds,
// hours, duration<double>, ...), converted once to nanoseconds that saturate instead of
// overflowing (detail::AnyDuration): a wait of hours::max() waits as long as it takes,
// and a TTL too long for 64-bit nanoseconds (over ~292 years) is clamped to the longest
// the clock can show — the lease expires at time_point::max(), practically never.
//
// Timeouts: `wait` is how long to wait; zero or negative means one immediate try. A
// deadline (the *_until forms, on the manager's clock, in any duration) that has already
// passed also means one immediate try; time_point::max() waits as long as it takes.
// A timed-out request returns an empty Lease, never throws. Invalid input (empty key,
// key with NUL, key over max_key_size, ttl <= 0 or under 1 ns, owner over
// max_owner_size) throws std::invalid_argument before anything is changed.
//
// Re-acquiring a key the calling thread already holds is not detected: the request
// waits like any other, so an exclusive one waits out the thread's own lease (its TTL,
// or the wait). A Lease may move to another thread and an owner names a whole manager,
// so "this thread holds it" cannot be known here without false alarms; NamedMutex,
// whose locks belong to threads as a std mutex's do, refuses it (see named_mutex.hpp).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <leaselock/backends/backend.hpp>
#include <leaselock/backends/in_process.hpp>
#include <leaselock/detail/keep_alive.hpp>
#include <leaselock/detail/platform.hpp>
#include <leaselock/detail/semantics.hpp>
#include <leaselock/detail/time.hpp>
#include <leaselock/holder_process.hpp>
#include <leaselock/info.hpp>
#include <leaselock/lease.hpp>
#include <leaselock/limits.hpp>
#include <leaselock/mode.hpp>
#include <leaselock/observer.hpp>
#include <leaselock/token.hpp>

namespace leaselock {

template <class Manager>
class NamedMutex;

template <class Clock, class Backend>
class LockManager final : private detail::LeaseIssuer<Clock>, private detail::RenewTarget {
 public:
  using clock_type = Clock;
  using backend_type = Backend;
  using duration = typename Clock::duration;
  using time_point = typename Clock::time_point;
  using Lease = leaselock::Lease<Clock>;
  using LeaseSet = leaselock::LeaseSet<Clock>;
  using LockInfo = leaselock::LockInfo<Clock>;
  using HolderInfo = leaselock::HolderInfo<Clock>;
  using NamedMutex = leaselock::NamedMutex<LockManager>;

  /// `owner` names this manager's requests in status(), list() and events unless a call
  /// names another; by default "pid@hostname".
  /// (A backend that needs arguments, as FileBackend does, has no default manager.)
  template <class B = Backend, std::enable_if_t<std::is_default_constructible_v<B>, int> = 0>
  explicit LockManager() : LockManager(Backend{}) {}
  explicit LockManager(Backend backend, Clock clock = Clock{},
                       std::string owner = detail::platform::process_owner())
      : backend_(std::move(backend)), clock_(std::move(clock)), owner_(std::move(owner)) {
    detail::validate_owner(owner_);
    detail::attach_clock(backend_, clock_);
  }
  LockManager(const LockManager&) = delete;
  LockManager& operator=(const LockManager&) = delete;
  ~LockManager() {
    if (renewer_) renewer_->stop();
  }

  /// Tries to take `key` in `mode` for `ttl`, waiting up to `wait` (zero or negative:
  /// one try). Returns an empty Lease if it is still not available by then.
  [[nodiscard]] Lease try_acquire(std::string_view key, Mode mode, detail::AnyDuration ttl,
                                  detail::AnyDuration wait = {}, std::string_view owner = {}) {
    if (wait.count() <= 0) return take(key, mode, ttl, kOneTry, owner, kOneTry);
    const detail::Nanos now = storage_time();
    return take(key, mode, ttl, detail::add_saturated(now, wait.count()), owner, now);
  }

  /// Like try_acquire, with a deadline on the manager's clock instead of a wait.
  template <class Duration>
  [[nodiscard]] Lease try_acquire_until(std::string_view key, Mode mode, detail::AnyDuration ttl,
                                        const std::chrono::time_point<Clock, Duration>& deadline,
                                        std::string_view owner = {}) {
    const detail::Nanos now = storage_time();
    return take(key, mode, ttl,
                std::max(now, from_clock(detail::to_nanos(deadline.time_since_epoch()))), owner,
                now);
  }

  /// Takes `key`, waiting as long as it takes. Never returns an empty Lease.
  [[nodiscard]] Lease acquire(std::string_view key, Mode mode, detail::AnyDuration ttl,
                              std::string_view owner = {}) {
    return take(key, mode, ttl, detail::kForever, owner, storage_time());
  }

  /// All-or-nothing over several keys, deadlock-free whatever their order: keys are taken
  /// in sorted order (a key listed twice is taken once, exclusive if either asks for it),
  /// and on timeout every key already taken is released. Returns an empty LeaseSet on
  /// timeout. An empty request list throws std::invalid_argument.
  /// Every lease of a returned set is live, with at least half of `ttl` left: a lease
  /// that lost more while later keys were awaited is renewed for `ttl`, and if one
  /// expired meanwhile, everything is released and taken again within the wait.
  [[nodiscard]] LeaseSet try_acquire_all(std::vector<LockRequest> requests, detail::AnyDuration ttl,
                                         detail::AnyDuration wait = {},
                                         std::string_view owner = {}) {
    const detail::Nanos now = storage_time();
    const detail::Nanos deadline =
        wait.count() > 0 ? detail::add_saturated(now, wait.count()) : now;
    return take_all(std::move(requests), ttl, deadline, owner);
  }

  template <class Duration>
  [[nodiscard]] LeaseSet try_acquire_all_until(
      std::vector<LockRequest> requests, detail::AnyDuration ttl,
      const std::chrono::time_point<Clock, Duration>& deadline, std::string_view owner = {}) {
    return take_all(std::move(requests), ttl,
                    from_clock(detail::to_nanos(deadline.time_since_epoch())), owner);
  }

  [[nodiscard]] LeaseSet acquire_all(std::vector<LockRequest> requests, detail::AnyDuration ttl,
                                     std::string_view owner = {}) {
    return take_all(std::move(requests), ttl, detail::kForever, owner);
  }

  /// Releases the lease `token` holds on `key`. Idempotent: returns false if that token
  /// does not hold the key now (never did, released already, or expired).
  bool release(std::string_view key, const Token& token) {
    detail::validate_key(key);
    return release_lease(key, token, /*exact=*/true, nullptr);
  }

  /// Extends the live lease `token` holds on `key` to now + ttl. Returns false if the
  /// lease has already expired or is not held by that token.
  bool renew(std::string_view key, const Token& token, detail::AnyDuration ttl) {
    detail::validate_key(key);
    detail::validate_ttl(ttl.count());
    return renew_lease(key, token, ttl.count(), nullptr).has_value();
  }

  /// Makes `process` the process that the lease `token` holds on `key` lives and dies
  /// with (see holder_process.hpp for what each backend does with it). Returns false if
  /// that token does not hold the key now. Throws std::invalid_argument, changing
  /// nothing, if the key is invalid or `process` has ended.
  [[nodiscard]] bool bind(std::string_view key, const Token& token, HolderProcess process) {
    detail::validate_key(key);
    return detail::bind_process(backend_, key, token, process, [&](detail::Record& record) {
      return detail::find_live_holder(record, token, storage_time()) != nullptr;
    });
  }

  /// A guard for a lease that `token` holds on `key` now (for example one detached in
  /// another request); an empty Lease if it does not.
  [[nodiscard]] Lease adopt(std::string_view key, const Token& token) {
    detail::validate_key(key);
    detail::BackendHandle handle = nullptr;
    const std::optional<detail::Holder> found = backend_.update(
        key,
        [&](detail::Record& record) -> std::optional<detail::Holder> {
          const detail::Holder* holder = detail::find_live_holder(record, token, storage_time());
          if (!holder) return std::nullopt;
          return *holder;
        },
        &handle);
    if (!found) return Lease{};
    return Lease(this, handle, key, found->mode, token, found->fence, to_clock(found->acquired_at),
                 to_clock(found->expires_at), found->expires_at - found->acquired_at);
  }

  /// The key's live holders and queue, or nullopt if nobody holds it now.
  std::optional<LockInfo> status(std::string_view key) const {
    detail::validate_key(key);
    const detail::Nanos now = storage_time();
    std::optional<LockInfo> info;
    backend_.read(key, [&](const detail::Record* record) {
      if (record) info = describe(key, *record, now);
    });
    return info;
  }

  /// Every key held now, in no particular order.
  std::vector<LockInfo> list() const {
    const detail::Nanos now = storage_time();
    std::vector<LockInfo> infos;
    backend_.read_all([&](std::string_view key, const detail::Record& record) {
      if (auto info = describe(key, record, now)) infos.push_back(std::move(*info));
    });
    return infos;
  }

  /// A std-compatible mutex view of `key` whose every lock is a lease for `ttl`.
  [[nodiscard]] NamedMutex mutex(std::string_view key, detail::AnyDuration ttl) {
    return NamedMutex(*this, key, ttl);
  }

  /// Sends every event to `observer` from now on (nullptr: none). The observer must
  /// outlive its use by this manager. Thread-safe.
  void set_observer(Observer* observer) noexcept {
    observer_.store(observer, std::memory_order_release);
  }

  const Clock& clock() const noexcept { return clock_; }
  Backend& backend() noexcept { return backend_; }
  const Backend& backend() const noexcept { return backend_; }
  const std::string& owner() const noexcept { return owner_; }

 private:
  using Grant = std::optional<detail::Grant>;

  // take()'s deadline and start for "one try, no clock read needed before it".
  static constexpr detail::Nanos kOneTry = std::numeric_limits<detail::Nanos>::min();

  // Acquisition, shared by every public form. `deadline` <= `now` means one try.
  Lease take(std::string_view key, Mode mode, detail::AnyDuration ttl, detail::Nanos deadline,
             std::string_view owner, detail::Nanos now) {
    detail::validate_key(key);
    detail::validate_ttl(ttl.count());
    if (owner.empty()) {
      owner = owner_;
    } else {
      detail::validate_owner(owner);
    }
    const detail::Request request{mode, ttl.count(), Token::generate(), owner};
    Observer* const observer = observer_.load(std::memory_order_acquire);
    detail::ExpiredList expired;
    detail::ExpiredList* const sink = observer ? &expired : nullptr;

    Grant grant;
    detail::BackendHandle handle = nullptr;
    if (deadline <= now) {
      // The clock is read under the backend's lock so that acquired_at is the moment of
      // the grant, after any release it follows.
      grant = backend_.update(
          key,
          [&](detail::Record& record) {
            if (sink) sink->clear();  // a retried run reports only what it saw
            return detail::try_grant(record, request, storage_time(), sink);
          },
          &handle);
    } else {
      grant = wait_for_grant(key, request, deadline, sink, &handle);
    }

    if (observer) {
      report_expired(observer, key, expired);
      const detail::Nanos waited = deadline <= now ? 0 : storage_time() - now;
      notify(observer, grant ? LockEventKind::acquired : LockEventKind::timed_out, key, mode,
             request.token, grant ? grant->fence : 0, owner, waited);
    }
    if (!grant) return Lease{};
    try {
      return Lease(this, handle, key, mode, request.token, grant->fence,
                   to_clock(grant->acquired_at), to_clock(grant->expires_at), request.ttl);
    } catch (...) {  // no memory for a long key's copy: give the grant back
      release_lease(key, request.token, /*exact=*/false, handle);
      throw;
    }
  }

  Grant wait_for_grant(std::string_view key, const detail::Request& request, detail::Nanos deadline,
                       detail::ExpiredList* sink, detail::BackendHandle* handle) {
    std::uint64_t ticket = 0;
    bool queued = false;
    try {
      return backend_.wait_update(
          key, request.token, clock_, deadline,
          [&](detail::Record& record) {
            using Step = detail::Step<Grant>;
            const detail::Nanos now = storage_time();
            if (!queued) {
              if (auto grant = detail::try_grant(record, request, now, sink))
                return Step::done(grant);
              if (now >= deadline) return Step::done(std::nullopt);
              ticket = detail::enqueue(record, request, deadline);
              queued = true;
            } else {
              ticket = detail::queued_ticket(record, request.token);  // a run may be retried
            }
            const detail::Poll poll = detail::poll(record, ticket, request, deadline, now, sink);
            switch (poll.kind) {
              case detail::Poll::granted: return Step::done(poll.grant);
              case detail::Poll::timed_out: return Step::done(std::nullopt);
              case detail::Poll::waiting: break;
            }
            return Step::sleep_until(poll.wake_at);
          },
          handle);
    } catch (...) {
      // Leave nothing behind: not our place in the queue, nor a grant made meanwhile.
      if (queued) {
        backend_.update(key, [&](detail::Record& record) {
          detail::withdraw(record, request.token, storage_time());
        });
      }
      throw;
    }
  }

  LeaseSet take_all(std::vector<LockRequest> requests, detail::AnyDuration ttl,
                    detail::Nanos deadline, std::string_view owner) {
    if (requests.empty()) detail::throw_invalid("try_acquire_all needs at least one key");
    for (const LockRequest& request : requests) detail::validate_key(request.key);
    detail::validate_ttl(ttl.count());
    if (!owner.empty()) detail::validate_owner(owner);
    std::sort(requests.begin(), requests.end(),
              [](const LockRequest& a, const LockRequest& b) { return a.key < b.key; });
    // Merge duplicates: one lease per key, exclusive if any request wants it.
    std::vector<LockRequest> keys;
    for (const LockRequest& request : requests) {
      if (!keys.empty() && keys.back().key == request.key) {
        if (request.mode == Mode::exclusive) keys.back().mode = Mode::exclusive;
      } else {
        keys.push_back(request);
      }
    }
    for (;;) {
      std::vector<Lease> leases;
      leases.reserve(keys.size());
      for (const LockRequest& request : keys) {
        const detail::Nanos now = storage_time();
        Lease lease = take(request.key, request.mode, ttl, std::max(deadline, now), owner, now);
        if (!lease) return LeaseSet{};  // `leases` releases what was taken
        leases.push_back(std::move(lease));
      }
      if (still_held(leases, ttl)) return LeaseSet(std::move(leases));
      // A key taken early expired while a later one was awaited (someone else may hold
      // it now): give everything back and start again with what is left of the wait.
      if (storage_time() >= deadline) return LeaseSet{};
    }
  }

  // True when every lease of a just-completed set is live. Those with less than half
  // their TTL left (they waited for later keys) are renewed for `ttl`; a renewal fails
  // only for a lease that expired meanwhile.
  bool still_held(std::vector<Lease>& leases, detail::AnyDuration ttl) {
    const detail::Nanos now = detail::now_nanos(clock_);
    for (Lease& lease : leases) {
      const detail::Nanos left =
          detail::subtract_saturated(detail::to_nanos(lease.expires_at().time_since_epoch()), now);
      if (left >= ttl.count() / 2) continue;
      if (!lease.renew(ttl)) return false;
    }
    return true;
  }

  std::optional<LockInfo> describe(std::string_view key, const detail::Record& record,
                                   detail::Nanos now) const {
    if (!detail::held(record, now)) return std::nullopt;
    LockInfo info;
    info.key.assign(key.data(), key.size());
    info.mode = detail::held_mode(record, now);
    info.waiters = record.waiters.size();
    for (const detail::Holder& holder : record.holders) {
      if (holder.expires_at <= now) continue;
      info.holders.push_back(HolderInfo{holder.token, holder.mode, holder.owner, holder.fence,
                                        detail::from_nanos<Clock>(to_clock(holder.acquired_at)),
                                        detail::from_nanos<Clock>(to_clock(holder.expires_at))});
    }
    return info;
  }

  // Time as the storage judges it (the manager's clock unless the backend supplies it).
  detail::Nanos storage_time() const { return detail::storage_now(backend_, clock_); }
  detail::Nanos to_clock(detail::Nanos t) const { return detail::to_clock(backend_, clock_, t); }
  detail::Nanos from_clock(detail::Nanos t) const {
    return detail::from_clock(backend_, clock_, t);
  }

  // --- detail::LeaseIssuer ------------------------------------------------------------

  // `exact`: tell a lease that expired from one released in time (reads the clock).
  bool release_lease(std::string_view key, const Token& token, bool exact,
                     detail::BackendHandle handle) override {
    Observer* const observer = observer_.load(std::memory_order_acquire);
    detail::ExpiredList expired;
    detail::ExpiredList* const sink = observer ? &expired : nullptr;
    std::optional<detail::Holder> released;
    const auto release = [&](detail::Record& record) {
      released.reset();  // a run may be retried
      if (sink) sink->clear();
      if (observer) {
        if (const detail::Holder* holder = detail::find_holder(record, token)) released = *holder;
      }
      return detail::release(
          record, token, [this] { return storage_time(); }, exact || observer, sink);
    };
    const detail::Released outcome =
        handle ? backend_.update(handle, release, /*unpin=*/true) : backend_.update(key, release);
    if (observer) {
      report_expired(observer, key, expired);
      if (outcome == detail::Released::released && released)
        notify(observer, LockEventKind::released, key, released->mode, token, released->fence,
               released->owner, 0);
    }
    return outcome == detail::Released::released;
  }

  std::optional<detail::Nanos> renew_lease(std::string_view key, const Token& token,
                                           detail::Nanos ttl,
                                           detail::BackendHandle handle) override {
    return renew_and_report(key, token, ttl, handle, nullptr);
  }

  bool bind_lease(std::string_view key, const Token& token, const HolderProcess& process) override {
    return bind(key, token, process);
  }

  void unpin(detail::BackendHandle handle) noexcept override { backend_.unpin(handle); }

  // Renews (through `handle` if not null); stores the new expiry in `*expiry` (if given)
  // before the observer hears of it.
  std::optional<detail::Nanos> renew_and_report(std::string_view key, const Token& token,
                                                detail::Nanos ttl, detail::BackendHandle handle,
                                                std::atomic<detail::Nanos>* expiry) {
    Observer* const observer = observer_.load(std::memory_order_acquire);
    detail::ExpiredList expired;
    detail::ExpiredList* const sink = observer ? &expired : nullptr;
    std::optional<detail::Holder> renewed;
    const auto renew = [&](detail::Record& record) {
      renewed.reset();  // a run may be retried
      if (sink) sink->clear();
      auto result = detail::renew(record, token, ttl, storage_time(), sink);
      if (result && observer) renewed = *detail::find_holder(record, token);
      return result;
    };
    auto expires_at =
        handle ? backend_.update(handle, renew, /*unpin=*/false) : backend_.update(key, renew);
    if (expires_at) expires_at = to_clock(*expires_at);
    if (expires_at && expiry) expiry->store(*expires_at, std::memory_order_release);
    if (observer) {
      report_expired(observer, key, expired);
      if (renewed)
        notify(observer, LockEventKind::renewed, key, renewed->mode, token, renewed->fence,
               renewed->owner, 0);
    }
    return expires_at;
  }

  void start_keep_alive(std::shared_ptr<detail::KeepAliveState> state) override {
    {
      std::lock_guard<std::mutex> lock(renewer_mutex_);
      if (!renewer_)
        renewer_ = std::make_unique<detail::Renewer<Clock>>(
            static_cast<detail::RenewTarget&>(*this), clock_);
    }
    renewer_->add(std::move(state));
  }

  void stop_keep_alive(const detail::KeepAliveState* state) noexcept override {
    if (renewer_) renewer_->remove(state);
  }

  // --- detail::RenewTarget ------------------------------------------------------------

  std::optional<detail::Nanos> renew_for_keep_alive(detail::KeepAliveState& state) override {
    return renew_and_report(state.key, state.token, state.ttl, nullptr, &state.expires_at);
  }

  void report_lost(const detail::KeepAliveState& state) noexcept override {
    if (Observer* observer = observer_.load(std::memory_order_acquire))
      notify(observer, LockEventKind::lost, state.key, state.mode, state.token, state.fence, owner_,
             0);
  }

  // --- events -------------------------------------------------------------------------

  static void notify(Observer* observer, LockEventKind kind, std::string_view key, Mode mode,
                     const Token& token, std::uint64_t fence, std::string_view owner,
                     detail::Nanos waited) noexcept {
    LockEvent event;
    event.kind = kind;
    event.key = key;
    event.mode = mode;
    event.token = token;
    event.fence = fence;
    event.owner = owner;
    event.waited = std::chrono::nanoseconds(waited);
    try {
      observer->on_event(event);
    } catch (...) {
    }
  }

  static void report_expired(Observer* observer, std::string_view key,
                             const detail::ExpiredList& expired) noexcept {
    for (auto it = expired.begin(); it != expired.end(); ++it) {
      const detail::Holder& holder = *it;
      // A waiting transition run again after a lost race may have seen one expiry twice.
      if (std::any_of(expired.begin(), it,
                      [&](const detail::Holder& seen) { return seen.fence == holder.fence; }))
        continue;
      notify(observer, LockEventKind::expired, key, holder.mode, holder.token, holder.fence,
             holder.owner, 0);
    }
  }

  Backend backend_;
  Clock clock_;
  std::string owner_;
  std::atomic<Observer*> observer_{nullptr};
  std::mutex renewer_mutex_;
  std::unique_ptr<detail::Renewer<Clock>> renewer_;
};

/// Threads of one process, real time.
using local_lock_manager = LockManager<std::chrono::steady_clock, InProcessBackend>;

}  // namespace leaselock

#include <leaselock/named_mutex.hpp>
