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
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <leaselock/backends/backend.hpp>
#include <leaselock/detail/parker.hpp>
#include <leaselock/detail/postgres/codec.hpp>
#include <leaselock/detail/postgres/connection.hpp>
#include <leaselock/detail/postgres/listener.hpp>
#include <leaselock/detail/postgres/notice.hpp>
#include <leaselock/detail/postgres/schema.hpp>
#include <leaselock/detail/semantics.hpp>
#include <leaselock/detail/time.hpp>
#include <leaselock/lock_manager.hpp>
#include <leaselock/storage_error.hpp>

namespace leaselock {

struct PostgresBackendOptions {
  /// Where the tables live; created on first use (the role needs CREATE on the database,
  /// or must own this schema already).
  std::string schema = "leaselock";
  /// Connections for operations (one more listens for notifications).
  std::size_t pool_size = 4;
  /// How long connecting may take before StorageError; also how long a lost connection
  /// is retried (with backoff) before an operation gives up.
  std::chrono::milliseconds connect_timeout{5000};
  /// How long one statement may take before its connection counts as lost.
  std::chrono::milliseconds statement_timeout{30000};
  /// Rows nobody holds or waits for are removed this often (zero: only remove_idle()).
  std::chrono::milliseconds cleanup_interval{60000};
  /// A waiter re-reads its record at least this often, notification or not.
  std::chrono::milliseconds max_sleep{2000};
  /// true: expiry is judged by the database server's clock for every host. false: by
  /// the LockManager's clock — for one host only, and tests on a ManualClock.
  bool server_time = true;
  /// true: each pooled connection prepares its statements once, by name. false: every
  /// statement is sent with its text (unnamed), for a pooler in transaction mode that
  /// does not keep named statements (PgBouncer before 1.21, or without
  /// max_prepared_statements).
  bool prepared_statements = true;
};

class PostgresBackend {
 public:
  /// Connects (within options.connect_timeout) and creates the schema if needed.
  /// Throws StorageError naming the server with libpq's message if it cannot, and
  /// std::invalid_argument for unusable options.
  explicit PostgresBackend(std::string conninfo, PostgresBackendOptions options = {})
      : state_(std::make_shared<State>(std::move(conninfo), std::move(options))) {}

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
    return steady_nanos() + state_->offset_mid.load(std::memory_order_relaxed);
  }
  template <class Clock>
  detail::Nanos to_clock(const Clock&, detail::Nanos t) const {
    if (!state_->options.server_time || t == detail::kForever) return t;
    return detail::add_saturated(t, -state_->offset_clock.load(std::memory_order_relaxed));
  }
  template <class Clock>
  detail::Nanos from_clock(const Clock&, detail::Nanos t) const {
    if (!state_->options.server_time || t == detail::kForever) return t;
    return detail::add_saturated(t, state_->offset_clock.load(std::memory_order_relaxed));
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
    State& state = *state_;
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
    state_->mark_stale(std::string(key));  // the cached row is from before the grant
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
  static detail::Nanos steady_nanos() noexcept {
    return detail::now_nanos(std::chrono::steady_clock{});
  }

  // What the client last knew of a key's row.
  struct Entry {
    std::int64_t version = 0;  // 0: no row
    std::int64_t writer = 0;
    detail::Record record;
    std::string bytes;   // encode(record) when version != 0
    bool stale = false;  // known to be behind the row: read it before deciding
  };

  struct Unit {};

  struct State {
    State(std::string conninfo_in, PostgresBackendOptions options_in)
        : conninfo(std::move(conninfo_in)),
          options(std::move(options_in)),
          schema(detail::postgres::quote_identifier(options.schema)),
          sql(schema),
          listener(conninfo, schema, options.connect_timeout) {
      if (options.pool_size == 0)
        throw std::invalid_argument("leaselock: PostgresBackend pool_size must be >= 1");
      if (options.connect_timeout <= std::chrono::milliseconds::zero() ||
          options.statement_timeout <= std::chrono::milliseconds::zero() ||
          options.max_sleep <= std::chrono::milliseconds::zero())
        throw std::invalid_argument("leaselock: PostgresBackend timeouts must be > 0");
      for (auto& floor : floors) floor.store(-1);
      auto conn = std::make_unique<detail::postgres::Connection>(conninfo, options.connect_timeout,
                                                                 options.prepared_statements);
      open = 1;  // the pool's first connection
      server = conn->server();
      create_schema(*conn);
      // The first estimate of the server's clock, before any transition runs on it.
      const detail::Nanos sent = steady_nanos();
      const detail::postgres::Result clock =
          conn->run(sql.server_now, std::chrono::steady_clock::now() + options.connect_timeout);
      observe(detail::postgres::nanos_of_timestamp(clock.i64(0, 0)), sent, steady_nanos(),
              std::nullopt);
      give_back(std::move(conn));
      next_cleanup.store(steady_nanos() + detail::to_nanos(options.cleanup_interval));
    }

    // --- connections ---

    class Lent {
     public:
      // An idle connection, or a new one: retried with backoff for up to the connect
      // timeout, so that an operation begun while the server restarts waits for it.
      explicit Lent(State& state) : state_(state) { reconnect(); }
      Lent(const Lent&) = delete;
      Lent& operator=(const Lent&) = delete;
      ~Lent() { state_.give_back(std::move(conn_)); }
      detail::postgres::Connection& operator*() { return *conn_; }
      detail::postgres::Connection* operator->() { return conn_.get(); }
      // A fresh connection in place of a broken one, retried with backoff for up to the
      // connect timeout.
      void replace() {
        conn_.reset();
        std::lock_guard<std::mutex> lock(state_.pool_mutex);
        --state_.open;
        state_.pool_changed.notify_one();
      }
      void reconnect() {
        const auto give_up = std::chrono::steady_clock::now() + state_.options.connect_timeout;
        std::chrono::milliseconds backoff(10);
        for (;;) {
          try {
            conn_ = state_.borrow();
            return;
          } catch (const StorageError&) {
            if (std::chrono::steady_clock::now() + backoff >= give_up) throw;
          }
          std::this_thread::sleep_for(backoff);
          backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
        }
      }

     private:
      State& state_;
      std::unique_ptr<detail::postgres::Connection> conn_;
    };

    std::unique_ptr<detail::postgres::Connection> borrow() {
      std::unique_lock<std::mutex> lock(pool_mutex);
      pool_changed.wait(lock, [&] { return !idle.empty() || open < options.pool_size; });
      // One the server closed while it lay idle (a restart, a terminated session) is
      // dropped before a statement goes out on it: that statement's outcome would be
      // taken for unknown.
      while (!idle.empty()) {
        auto conn = std::move(idle.back());
        idle.pop_back();
        if (!conn->closed_while_idle()) return conn;
        --open;
      }
      ++open;
      lock.unlock();
      try {
        return std::make_unique<detail::postgres::Connection>(conninfo, options.connect_timeout,
                                                              options.prepared_statements);
      } catch (...) {
        lock.lock();
        --open;
        pool_changed.notify_one();
        throw;
      }
    }

    void give_back(std::unique_ptr<detail::postgres::Connection> conn) noexcept {
      if (!conn) return;
      std::lock_guard<std::mutex> lock(pool_mutex);
      if (conn->broken()) {
        conn.reset();
        --open;
      } else {
        idle.push_back(std::move(conn));
      }
      pool_changed.notify_one();
    }

    detail::postgres::SteadyTime statement_deadline() const {
      return std::chrono::steady_clock::now() + options.statement_timeout;
    }

    // --- schema ---

    void create_schema(detail::postgres::Connection& conn) {
      using detail::postgres::Params;
      const auto deadline = std::chrono::steady_clock::now() + options.connect_timeout;
      conn.run("BEGIN", deadline);
      try {
        conn.run("SELECT pg_advisory_xact_lock(hashtext('leaselock schema ' || $1))", deadline,
                 Params().text(options.schema));
        const detail::postgres::Result exists =
            conn.run("SELECT count(*) FROM pg_namespace WHERE nspname = $1", deadline,
                     Params().text(options.schema));
        if (exists.i64(0, 0) == 0) conn.run("CREATE SCHEMA " + schema, deadline);
        const detail::postgres::Result meta =
            conn.run(sql.meta_exists, deadline, Params().text(schema + ".meta"));
        if (!meta.boolean(0, 0)) {
          conn.run_script(sql.create_tables, deadline);
        } else {
          const detail::postgres::Result version = conn.run(sql.schema_version, deadline);
          const std::int64_t found = version.rows() ? version.i64(0, 0) : 0;
          if (found != detail::postgres::kSchemaVersion)
            throw StorageError(
                "leaselock: PostgreSQL at " + conn.server() + ": schema " + options.schema +
                    " has schema version " + std::to_string(found) +
                    "; this leaselock uses version " +
                    std::to_string(detail::postgres::kSchemaVersion) +
                    (found < detail::postgres::kSchemaVersion
                         ? " (made by an older leaselock: once no client of that version runs, "
                           "drop it with DROP SCHEMA " +
                               schema + " CASCADE, or choose another schema)"
                         : " (made by a newer leaselock: upgrade this client)"),
                conn.server());
        }
        conn.run("COMMIT", deadline);
      } catch (...) {
        if (!conn.broken()) {
          try {
            conn.run("ROLLBACK", deadline);
          } catch (...) {
          }
        }
        throw;
      }
    }

    // --- time ---

    // After a round trip that went out at steady `sent` and clock `sent_clock` and came
    // back at steady `back`, with the server's clock at `server_now` (microseconds).
    void observe(detail::Nanos server_now, detail::Nanos sent, detail::Nanos back,
                 std::optional<detail::Nanos> sent_clock) {
      offset_mid.store(server_now - sent / 2 - back / 2, std::memory_order_relaxed);
      // The server read its clock after the statement went out, truncated to 1 us: every
      // such reading bounds the offset from above. The least bound of the last second
      // is used, so that conversions of nearby instants agree (and drift cannot age it).
      if (!sent_clock) return;
      const detail::Nanos bound = server_now + 1000 - *sent_clock;
      const detail::Nanos since = offset_clock_since.load(std::memory_order_relaxed);
      if (back - since > 1000000000 || bound < offset_clock.load(std::memory_order_relaxed)) {
        offset_clock.store(bound, std::memory_order_relaxed);
        if (back - since > 1000000000) offset_clock_since.store(back, std::memory_order_relaxed);
      }
    }

    std::optional<detail::Nanos> clock_reading() const {
      if (!clock_now) return std::nullopt;
      return clock_now();
    }

    // --- the cache of rows ---

    std::optional<Entry> cached(const std::string& key) {
      std::lock_guard<std::mutex> lock(cache_mutex);
      const auto it = cache.find(key);
      if (it == cache.end()) return std::nullopt;
      return it->second;
    }
    void remember(const std::string& key, Entry entry) {
      std::lock_guard<std::mutex> lock(cache_mutex);
      if (cache.size() >= kCacheLimit) cache.clear();
      cache[key] = std::move(entry);
    }
    void mark_stale(const std::string& key) {
      std::lock_guard<std::mutex> lock(cache_mutex);
      const auto it = cache.find(key);
      if (it != cache.end()) it->second.stale = true;
    }
    void forget_all() {
      std::lock_guard<std::mutex> lock(cache_mutex);
      cache.clear();
    }

    Entry blank(int shard) const {
      Entry entry;
      const std::int64_t floor = floors[shard].load(std::memory_order_relaxed);
      entry.record.last_fence = floor < 0 ? 0 : static_cast<std::uint64_t>(floor);
      return entry;
    }

    // The row as a refused apply() or read_row returned it: columns `version`, `record`,
    // `writer`, `floor` at the given positions.
    Entry entry_from(const detail::postgres::Result& row, int version_col, int record_col,
                     int writer_col, int floor_col, int shard) {
      const std::int64_t version = row.null(0, version_col) ? 0 : row.i64(0, version_col);
      if (version == 0) {
        if (!row.null(0, floor_col)) floors[shard].store(row.i64(0, floor_col));
        return blank(shard);
      }
      Entry entry;
      entry.version = version;
      entry.writer = row.null(0, writer_col) ? 0 : row.i64(0, writer_col);
      entry.bytes = std::string(row.bytes(0, record_col));
      std::optional<detail::Record> record = detail::postgres::decode(entry.bytes);
      if (!record)
        throw StorageError("leaselock: PostgreSQL at " + server + ": a damaged record in " +
                               options.schema + ".leases",
                           server);
      entry.record = std::move(*record);
      return entry;
    }

    // --- operations ---

    template <class Fn>
    auto transact(std::string_view key_view, Fn& fn) {
      using Result = decltype(fn(std::declval<detail::Record&>()));
      if constexpr (std::is_void_v<Result>) {
        auto wrapped = [&](detail::Record& record) {
          fn(record);
          return Unit{};
        };
        transact_impl(key_view, wrapped);
      } else {
        return transact_impl(key_view, fn);
      }
    }

    template <class Fn>
    auto transact_impl(std::string_view key_view, Fn& fn) {
      using Result = decltype(fn(std::declval<detail::Record&>()));
      const std::string key(key_view);
      const std::uint64_t hash = detail::postgres::stable_hash(key);
      const int shard = static_cast<int>(hash % detail::postgres::kShards);
      Lent conn(*this);
      std::optional<Entry> known = cached(key);
      // A row read in this call, at this server time: a decision on it that changes
      // nothing needs no second look.
      std::optional<detail::Nanos> read_at;
      Entry entry = known ? std::move(*known) : blank(shard);
      // A write whose outcome is unknown (its connection broke): its id and result.
      std::int64_t pending_writer = 0;
      std::optional<Result> pending;
      std::int64_t pending_base = 0;  // the row version it was decided on
      std::size_t broken = 0;
      // A fresh connection in place of a broken one; rethrows when retrying is pointless.
      const auto recover = [&](const detail::postgres::StatementError& error) {
        if (error.failure() == detail::postgres::Failure::refused || ++broken > 3) throw error;
        conn.replace();
        conn.reconnect();
      };
      const auto reread = [&] {
        try {
          entry = read_entry(*conn, key, shard, &read_at);
          remember(key, entry);
        } catch (const detail::postgres::StatementError& error) {
          recover(error);
          read_at.reset();
          entry.stale = true;
        }
      };
      for (;;) {
        if (pending_writer) {
          entry = read_entry(*conn, key, shard, &read_at);
          if (entry.writer == pending_writer) {
            remember(key, entry);
            return std::move(*pending);
          }
          if (entry.version != pending_base) {
            throw StorageError("leaselock: PostgreSQL at " + server +
                                   ": connection lost during an update that others have "
                                   "since changed; its outcome is unknown",
                               server);
          }
          pending_writer = 0;  // not applied: decide again
        }
        if (entry.stale) {
          reread();
          continue;
        }
        detail::Record record = entry.record;
        const detail::Nanos before = storage_time();
        Result result = fn(record);
        const detail::Nanos after = storage_time();
        std::pair<detail::Nanos, detail::Nanos> window{
            std::numeric_limits<detail::Nanos>::min() / 2, detail::kForever};
        if (options.server_time) {
          const auto valid = validity(entry.record, before, after);
          if (!valid) continue;  // an expiry fell inside the transition: run it again
          window = *valid;
        }
        // A key with no row stores nothing while its record stays blank.
        bool write = entry.version != 0 || !record.idle();
        std::string bytes;
        if (write) {
          bytes = detail::postgres::encode(record);
          if (entry.version != 0) write = bytes != entry.bytes;
        }
        if (!write && read_at &&
            (!options.server_time || (window.first <= *read_at && *read_at < window.second))) {
          maybe_clean(*conn);
          return result;  // decided on the row as read, at a server time it holds for
        }
        const auto [lo, hi] = detail::postgres::timestamp_window(window.first, window.second);
        const std::int64_t writer = random_id();
        detail::postgres::Params params;
        const char* name = nullptr;
        const std::string* text = nullptr;
        if (entry.version == 0) {
          // No row known: apply() makes it, or returns the row someone else made.
          params.bytes(key).i32(shard);
          if (write) {
            params.bytes(bytes)
                .i64(static_cast<std::int64_t>(record.last_fence))
                .i64(detail::postgres::live_until(record))
                .i32(static_cast<std::int32_t>(record.waiters.size()));
          } else {
            params.null(17).null(20).null(20).null(23);
          }
          params.i64(writer).timestamptz(lo).timestamptz(hi).i64(
              static_cast<std::int64_t>(entry.record.last_fence));
          name = "leaselock_apply";
          text = &sql.apply;
        } else if (write) {
          params.bytes(key)
              .i64(entry.version)
              .bytes(bytes)
              .i64(static_cast<std::int64_t>(record.last_fence))
              .i64(detail::postgres::live_until(record))
              .i32(static_cast<std::int32_t>(record.waiters.size()))
              .i64(writer)
              .timestamptz(lo)
              .timestamptz(hi);
          // Waiters are told, in the same transaction, whom the change concerns.
          if (record.version != entry.record.version && !entry.record.waiters.empty()) {
            params.text(options.schema)
                .text(detail::postgres::make_notice(hash, entry.record, record));
            name = "leaselock_update_notify";
            text = &sql.update_notify;
          } else {
            name = "leaselock_update";
            text = &sql.update;
          }
        } else {
          params.bytes(key).i64(entry.version).timestamptz(lo).timestamptz(hi);
          name = "leaselock_check";
          text = &sql.check;
        }
        const std::optional<detail::Nanos> sent_clock = clock_reading();
        const detail::Nanos sent = steady_nanos();
        detail::postgres::Result row;
        try {
          statements.fetch_add(1, std::memory_order_relaxed);
          row = conn->run_prepared(name, *text, params, statement_deadline());
        } catch (const detail::postgres::StatementError& error) {
          if (error.failure() == detail::postgres::Failure::retry) continue;
          recover(error);
          if (write) {
            pending_writer = writer;
            pending.emplace(std::move(result));
            pending_base = entry.version;
          }
          read_at.reset();
          continue;
        }
        read_at.reset();
        if (row.rows() == 0) {  // the plain statement found the row moved on: read it
          reread();
          continue;
        }
        observe(detail::postgres::nanos_of_timestamp(row.i64(0, entry.version == 0 ? 1 : 0)), sent,
                steady_nanos(), sent_clock);
        if (entry.version != 0 || row.boolean(0, 0)) {
          if (write) {
            entry.version = entry.version != 0 ? entry.version + 1 : row.i64(0, 2);
            entry.writer = writer;
            entry.bytes = std::move(bytes);
            entry.record = std::move(record);
            remember(key, std::move(entry));
          } else if (entry.version != 0) {
            remember(key, std::move(entry));
          }
          maybe_clean(*conn);
          return result;
        }
        entry = entry_from(row, 2, 3, 5, 4, shard);
        remember(key, entry);
      }
    }

    // The window of server times in which a decision made at some time in [before,
    // after] on `record` is the same: after every instant it treated as passed, before
    // every one it treated as pending. nullopt when an instant lies inside [before,
    // after] (the decision is ambiguous: run it again).
    static std::optional<std::pair<detail::Nanos, detail::Nanos>> validity(
        const detail::Record& record, detail::Nanos before, detail::Nanos after) {
      detail::Nanos lo = std::numeric_limits<detail::Nanos>::min() / 2;
      detail::Nanos hi = detail::kForever;
      bool ambiguous = false;
      const auto consider = [&](detail::Nanos t) {
        if (t <= before) {
          lo = std::max(lo, t);
        } else if (t > after) {
          hi = std::min(hi, t);
        } else {
          ambiguous = true;
        }
      };
      for (const detail::Holder& h : record.holders) consider(h.expires_at);
      for (const detail::Waiter& w : record.waiters) consider(w.deadline);
      if (ambiguous) return std::nullopt;
      return std::make_pair(lo, hi);
    }

    detail::Nanos storage_time() const {
      if (!options.server_time) return clock_now ? clock_now() : 0;
      return steady_nanos() + offset_mid.load(std::memory_order_relaxed);
    }

    // The row of `key` as it is now; *read_at (if given) receives the server's time then.
    Entry read_entry(detail::postgres::Connection& conn, const std::string& key, int shard,
                     std::optional<detail::Nanos>* read_at = nullptr) {
      detail::postgres::Params params;
      params.bytes(key).i32(shard);
      const std::optional<detail::Nanos> sent_clock = clock_reading();
      const detail::Nanos sent = steady_nanos();
      statements.fetch_add(1, std::memory_order_relaxed);
      const detail::postgres::Result row =
          conn.run_prepared("leaselock_read_row", sql.read_row, params, statement_deadline());
      const detail::Nanos server_now = detail::postgres::nanos_of_timestamp(row.i64(0, 0));
      observe(server_now, sent, steady_nanos(), sent_clock);
      if (read_at) *read_at = server_now;
      return entry_from(row, 1, 2, 3, 4, shard);
    }

    // Runs `body(conn)`, once more on a fresh connection if the first one broke
    // (reading is always safe to repeat).
    template <class Body>
    auto with_retry(Body&& body) {
      Lent conn(*this);
      try {
        return body(*conn);
      } catch (const detail::postgres::StatementError& error) {
        if (error.failure() == detail::postgres::Failure::refused) throw;
        conn.replace();
        conn.reconnect();
        return body(*conn);
      }
    }

    std::optional<detail::Record> read(std::string_view key_view) {
      const std::string key(key_view);
      const int shard =
          static_cast<int>(detail::postgres::stable_hash(key) % detail::postgres::kShards);
      Entry entry = with_retry(
          [&](detail::postgres::Connection& conn) { return read_entry(conn, key, shard); });
      if (entry.version == 0) return std::nullopt;
      remember(key, entry);
      return std::move(entry.record);
    }

    template <class Fn>
    void read_all(Fn&& fn) {
      const detail::postgres::Result rows = with_retry([&](detail::postgres::Connection& conn) {
        return conn.run_prepared("leaselock_read_all", sql.read_all, detail::postgres::Params(),
                                 statement_deadline());
      });
      for (int i = 0; i < rows.rows(); ++i) {
        std::optional<detail::Record> record = detail::postgres::decode(rows.bytes(i, 1));
        if (!record)
          throw StorageError("leaselock: PostgreSQL at " + server + ": a damaged record in " +
                                 options.schema + ".leases",
                             server);
        fn(rows.bytes(i, 0), *record);
      }
    }

    std::size_t remove_idle() {
      return with_retry([&](detail::postgres::Connection& conn) { return clean(conn); });
    }

    std::size_t clean(detail::postgres::Connection& conn) {
      const auto deadline = statement_deadline();
      conn.run("BEGIN", deadline);
      try {
        conn.run_prepared("leaselock_lock_floors", sql.lock_floors, detail::postgres::Params(),
                          deadline);
        const detail::postgres::Result removed = conn.run_prepared(
            "leaselock_remove_idle", sql.remove_idle, detail::postgres::Params(), deadline);
        conn.run("COMMIT", deadline);
        forget_all();
        for (auto& floor : floors) floor.store(-1);
        return static_cast<std::size_t>(removed.i64(0, 0));
      } catch (...) {
        if (!conn.broken()) {
          try {
            conn.run("ROLLBACK", deadline);
          } catch (...) {
            conn.poison();
          }
        }
        throw;
      }
    }

    // Runs the periodic cleanup on this connection when it is due (one caller at a time).
    void maybe_clean(detail::postgres::Connection& conn) {
      if (options.cleanup_interval <= std::chrono::milliseconds::zero()) return;
      detail::Nanos due = next_cleanup.load(std::memory_order_relaxed);
      const detail::Nanos now = steady_nanos();
      if (now < due) return;
      if (!next_cleanup.compare_exchange_strong(due,
                                                now + detail::to_nanos(options.cleanup_interval)))
        return;
      try {
        clean(conn);
      } catch (const StorageError&) {
        // The next interval tries again; the operation itself succeeded.
      }
    }

    std::int64_t random_id() {
      thread_local std::mt19937_64 generator{std::random_device{}()};
      std::int64_t id = 0;
      while (id == 0) id = static_cast<std::int64_t>(generator());
      return id;
    }

    static constexpr std::size_t kCacheLimit = 16384;

    const std::string conninfo;
    const PostgresBackendOptions options;
    const std::string schema;  // quoted
    const detail::postgres::Statements sql;
    std::string server;
    std::function<detail::Nanos()> clock_now;

    std::mutex pool_mutex;
    std::condition_variable pool_changed;
    std::vector<std::unique_ptr<detail::postgres::Connection>> idle;
    std::size_t open = 0;

    std::mutex cache_mutex;
    std::unordered_map<std::string, Entry> cache;
    std::atomic<std::int64_t> floors[detail::postgres::kShards];

    std::atomic<detail::Nanos> offset_mid{0};
    std::atomic<detail::Nanos> offset_clock{0};
    std::atomic<detail::Nanos> offset_clock_since{0};
    std::atomic<detail::Nanos> next_cleanup{0};
    std::atomic<std::uint64_t> statements{0};

    detail::postgres::Listener listener;
  };

  std::shared_ptr<State> state_;
};

/// Processes on many hosts sharing one PostgreSQL database, on the system clock.
using postgres_lock_manager = LockManager<std::chrono::system_clock, PostgresBackend>;

}  // namespace leaselock
