// leaselock/backends/postgres.hpp — leases shared by processes on many machines through
// one PostgreSQL database. Needs libpq (CMake: leaselock::postgres; pkg-config:
// leaselock-postgres); the umbrella header does not include it.
//
// @code
//   leaselock::postgres_lock_manager locks{
//       leaselock::PostgresBackend{"postgresql://app@db/agents"}};
//   auto lease = locks.acquire("deploy/prod", leaselock::Mode::exclusive, 30s);
// @endcode
//
// How it works, and why:
// - Same semantics by the same code. Each key is one row holding its whole
//   detail::Record (detail/postgres/codec.hpp). The transitions of detail/semantics.hpp run
//   here, in the client, on a cached copy of that row; the result goes back in ONE
//   statement that stores it only if the row is still at the version the decision was
//   made on: for a row the client knows, a plain conditional UPDATE (with pg_notify in
//   the same statement when the change concerns waiters; no function call, no
//   trigger); for a key it knows no row of, a call of the schema's apply() function
//   (detail/postgres/schema.hpp), which makes the row above the fence floor, or returns
//   the row as it is now when one exists. A plain statement that finds the row moved on
//   returns nothing, and the client reads the row. Then the transition runs again on the
//   fresh row (the Backend concept allows a transition to be retried: backends/backend.hpp);
//   a decision on a row just read that changes nothing needs no further statement. A key
//   used by one client at a time costs one round trip and one commit per operation, like
//   a hand-written lease row; a decision that changes nothing (busy, not held) is checked
//   the same way, without a commit.
// - Server time. Expiry is judged by the database server's clock for every host. The
//   backend supplies the time to the LockManager (backends/backend.hpp): transitions run
//   at an estimate of the server's clock, and every statement refuses the write unless
//   the server's clock_timestamp() lies inside the decision's validity window — after every
//   expiry and deadline the decision treated as passed, before every one it treated as
//   pending. So a client whose clock is an hour off decides exactly as the server would.
//   What a holder sees (Lease::expires_at, keep_alive, lost) is the server's expiry
//   moved to the manager's clock by an upper bound of the offset measured on the latest
//   round trip (server time minus the clock's reading when the statement went out): it
//   is never later than the server's. Any Clock works; with server_time = false the
//   manager's clock is used instead (one host, and tests on a ManualClock).
// - Fences never repeat: a key's row keeps its last fence; cleanup (remove_idle(), and
//   automatically every cleanup_interval) deletes rows that nobody holds or waits for
//   and raises its shard's fence floor in the same transaction; a key made anew starts
//   above the floor (apply() checks the floor the client assumed, under a share lock).
//   Fences live in committed rows: durable across client and server restarts and crash
//   recovery with synchronous_commit = on (with it off, a crash may lose the last
//   commits, and with them grants that were answered).
// - Waiting: a change that concerns waiters is announced with pg_notify in its own
//   statement; the notice (detail/postgres/notice.hpp) names, by token hash, whom it
//   concerns (detail::should_wake: the requests it granted, the new head of the queue)
//   and carries each grant it made. One listening connection per backend wakes exactly
//   those waiters (detail/postgres/listener.hpp); a waiter handed a grant holds its
//   lease from the notice, without reading the row (on_grant(): the grant is a committed
//   fact only this waiter can end before its expiry; it is checked as a record of its
//   own by the same transition, and used only while the holder's own view of its expiry
//   is still to come). A notification is a hint: waiters also wake at their holders'
//   expiry, every max_sleep, and after the listener reconnects, and re-read.
// - Connections: a pool of at most pool_size, each lent to one thread at a time, plus
//   the listening one. A statement whose connection breaks after it went out may or may
//   not have been applied: each write carries a random writer id, and the retry reads
//   the row first — if our write is there it is not applied again; if the row moved on
//   since, the call fails with StorageError (the outcome cannot be known).
// - A client that dies: its leases end at their TTL (judged by the server). Its queued
//   requests leave the queue within a waiter lease (waiter_lease(): 3 x max_sleep, server
//   time): a waiting thread stores its place with that near deadline and moves it on
//   while it waits (detail::hold_place), in the writes of the re-reads it makes anyway;
//   a dead one stops, and the ordinary deadline rule drops it. A request the key was
//   handed to before its place lapsed holds a lease like any other, until its TTL.
//
// Parts (detail/postgres/, read in this order): connection.hpp (one libpq connection,
// statements with deadlines), schema.hpp (the tables, apply() and the statements;
// creating the schema and removing idle rows), codec.hpp (a record as the bytes of its
// row), pool.hpp (the connections lent to operations), server_clock.hpp (the estimate of
// the server's clock from round trips), row_cache.hpp (the rows and fence floors last
// known), decision.hpp (a decision as the one conditional statement that stores it),
// store.hpp (what the copies of a backend share, and the operations on rows: the story
// of one operation), notice.hpp and listener.hpp (notifications, and the connection that
// wakes waiters). The options are in backends/postgres_options.hpp. This file is the
// Backend concept over them: time conversions, waiting, grants from notifications.
#pragma once

#include <algorithm>
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
#include <leaselock/backends/postgres_options.hpp>
#include <leaselock/detail/parker.hpp>
#include <leaselock/detail/postgres/codec.hpp>
#include <leaselock/detail/postgres/listener.hpp>
#include <leaselock/detail/postgres/notice.hpp>
#include <leaselock/detail/postgres/store.hpp>
#include <leaselock/detail/semantics.hpp>
#include <leaselock/detail/time.hpp>
#include <leaselock/lock_manager.hpp>
#include <leaselock/token.hpp>

namespace leaselock {

class PostgresBackend {
 public:
  /// Connects (within options.connect_timeout) and creates the schema if needed.
  /// Throws StorageError naming the server with libpq's message if it cannot, and
  /// std::invalid_argument for unusable options.
  explicit PostgresBackend(std::string conninfo, PostgresBackendOptions options = {})
      : state_(std::make_shared<detail::postgres::Store>(std::move(conninfo), std::move(options))) {
  }

  PostgresBackend(PostgresBackend&&) noexcept = default;
  PostgresBackend& operator=(PostgresBackend&&) noexcept = default;

  /// Removes every row that nobody holds (live) or waits for; returns how many.
  std::size_t remove_idle() { return state_->remove_idle(); }

  /// How many statements (round trips) operations on keys have sent so far: a
  /// diagnostic of what they cost. Thread-safe.
  std::uint64_t statements() const noexcept {
    return state_->statements.load(std::memory_order_relaxed);
  }

  /// "host:port/database" of the server, for messages.
  const std::string& server() const noexcept { return state_->server; }

  // --- Backend (see backends/backend.hpp) ---------------------------------------------

  template <class Clock>
  void attach_clock(const Clock& clock) {
    state_->clock_now = [clock] { return detail::now_nanos(clock); };
  }

  template <class Clock>
  detail::Nanos storage_now(const Clock& clock) const {
    if (!state_->options.server_time) return detail::now_nanos(clock);
    return state_->server_clock.now();
  }
  template <class Clock>
  detail::Nanos to_clock(const Clock&, detail::Nanos t) const {
    if (!state_->options.server_time || t == detail::kForever) return t;
    return detail::add_saturated(t, -state_->server_clock.clock_offset());
  }
  template <class Clock>
  detail::Nanos from_clock(const Clock&, detail::Nanos t) const {
    if (!state_->options.server_time || t == detail::kForever) return t;
    return detail::add_saturated(t, state_->server_clock.clock_offset());
  }

  template <class Fn>
  auto update(std::string_view key, Fn&& fn) {
    return state_->transact(key, fn);
  }
  template <class Fn>
  auto update(std::string_view key, Fn&& fn, detail::BackendHandle*) {
    return state_->transact(key, fn);  // no pins: a lease finds its row by key
  }
  template <class Fn>
  auto update(detail::BackendHandle, Fn&& fn, bool)
      -> decltype(fn(std::declval<detail::Record&>())) {
    throw std::logic_error("leaselock: PostgresBackend hands out no record handles");
  }
  void unpin(detail::BackendHandle) noexcept {}

  /// How long a waiter's place in a queue stands unless its waiting thread moves it on
  /// (three times max_sleep; the thread moves it at least every 2 x max_sleep).
  detail::Nanos waiter_lease() const noexcept {
    return 3 * detail::to_nanos(state_->options.max_sleep);
  }

  template <class Clock, class Fn>
  auto wait_update(std::string_view key, const Token& token, const Clock& clock,
                   detail::Nanos deadline, Fn&& fn, detail::BackendHandle*) {
    detail::postgres::Store& state = *state_;
    state.listener.ensure_listening();
    detail::Parker& parker = detail::this_thread_parker();
    detail::postgres::Listener::Sleeper sleeper(state.listener, detail::postgres::stable_hash(key),
                                                detail::postgres::token_hash(token), parker);
    const detail::Nanos max_sleep = detail::to_nanos(state.options.max_sleep);
    const detail::Nanos lease = waiter_lease();
    // Nobody can see whether a client on another host still waits: the place it stores
    // lasts a waiter lease (server time) and is moved on while it waits, in the write of
    // a re-read it makes anyway (detail::hold_place). A client that dies leaves the queue
    // within the lease, by the ordinary deadline rule.
    auto keep_place = [&](detail::Record& record) {
      auto step = fn(record);
      if (step.result) return step;
      const std::optional<detail::Nanos> held = detail::queued_deadline(record, token);
      if (!held) return step;
      const detail::Nanos now = state.storage_time();
      const detail::Nanos until = std::min(deadline, detail::add_saturated(now, lease));
      if (*held > until || *held - now < lease / 2) detail::hold_place(record, token, until);
      return step;
    };
    for (;;) {
      parker.reset();  // before the read: a notification from now on is not missed
      if (const std::optional<detail::postgres::GrantHint> grant = sleeper.take_grant()) {
        using Step = decltype(fn(std::declval<detail::Record&>()));
        std::optional<Step> step = on_grant(key, token, clock, *grant, fn);
        if (step) return std::move(*step->result);
      }
      auto step = state.transact(key, keep_place);
      if (step.result) return std::move(*step.result);
      detail::Nanos wake_at = to_clock(clock, step.wake_at);
      wake_at = std::min(wake_at, detail::add_saturated(detail::now_nanos(clock), max_sleep));
      detail::park_until(clock, parker, wake_at);
    }
  }

  // A notification announced that `token` was granted the key: runs fn on a record that
  // holds only that grant (a fact of the row since that commit: only this waiter can end
  // it before its expiry). When fn decides on it without changing it — the grant is
  // what it reports — that decision stands, with no round trip; otherwise (the grant is
  // about to expire, or fn wants more) nullopt, and the waiter reads the row.
  template <class Clock, class Fn>
  auto on_grant(std::string_view key, const Token& token, const Clock& clock,
                const detail::postgres::GrantHint& grant, Fn& fn)
      -> std::optional<decltype(fn(std::declval<detail::Record&>()))> {
    // Still live on the server: its expiry as the holder will see it is still to come.
    if (to_clock(clock, grant.expires_at) <= detail::now_nanos(clock)) return std::nullopt;
    detail::Record view;
    view.last_fence = grant.fence;
    view.holders.push_back(
        detail::Holder{token, grant.mode, grant.fence, grant.acquired_at, grant.expires_at, {}});
    const std::string before = detail::postgres::encode(view);
    auto step = fn(view);
    if (!step.result || detail::postgres::encode(view) != before) return std::nullopt;
    state_->cache.mark_stale(std::string(key));  // the cached row is from before the grant
    return step;
  }

  template <class Fn>
  void read(std::string_view key, Fn&& fn) const {
    std::optional<detail::Record> record = state_->read(key);
    fn(record ? &*record : nullptr);
  }

  template <class Fn>
  void read_all(Fn&& fn) const {
    state_->read_all([&](std::string_view key, const detail::Record& record) { fn(key, record); });
  }

 private:
  std::shared_ptr<detail::postgres::Store> state_;
};

/// Processes on many hosts sharing one PostgreSQL database, on the system clock.
using postgres_lock_manager = LockManager<std::chrono::system_clock, PostgresBackend>;

}  // namespace leaselock
