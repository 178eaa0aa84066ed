// leaselock/detail/postgres/store.hpp — what the copies of one PostgresBackend share: its
// connections, its copy of the rows, its estimate of the server's clock, and the
// operations on the rows of keys.
//
// transact() is the story of one operation: lend a connection (pool.hpp), take the row
// as last known (row_cache.hpp), run the transition at the server's time as estimated
// (server_clock.hpp), and store the decision in one statement that holds only if the row
// is still at that version and the server's clock inside the decision's window
// (decision.hpp). A statement that finds the row moved on returns nothing: the row is
// read and the transition runs again on it. A statement whose connection broke after it
// went out may or may not have been applied: the retry reads the row first, and finds our
// write by its writer id or fails with StorageError when the row moved on since. read(),
// read_all() and remove_idle() (also run every cleanup_interval) are the other operations.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <leaselock/backends/postgres_options.hpp>
#include <leaselock/detail/postgres/codec.hpp>
#include <leaselock/detail/postgres/connection.hpp>
#include <leaselock/detail/postgres/decision.hpp>
#include <leaselock/detail/postgres/listener.hpp>
#include <leaselock/detail/postgres/pool.hpp>
#include <leaselock/detail/postgres/row_cache.hpp>
#include <leaselock/detail/postgres/schema.hpp>
#include <leaselock/detail/postgres/server_clock.hpp>
#include <leaselock/detail/semantics.hpp>
#include <leaselock/detail/time.hpp>
#include <leaselock/storage_error.hpp>

namespace leaselock::detail::postgres {

// What transact() hands on for a transition that returns nothing.
struct Unit {};

/// The shared part of a PostgresBackend (see the top of this file). Thread-safe: each
/// operation lends a connection of its own; the pool, the cache and the clock estimate
/// guard themselves.
struct Store {
  Store(std::string conninfo, PostgresBackendOptions options_in)
      : options(std::move(options_in)),
        schema(quote_identifier(options.schema)),
        sql(schema),
        pool(conninfo, options.pool_size, options.connect_timeout, options.prepared_statements),
        listener(std::move(conninfo), schema, options.connect_timeout) {
    if (options.pool_size == 0)
      throw std::invalid_argument("leaselock: PostgresBackend pool_size must be >= 1");
    if (options.connect_timeout <= std::chrono::milliseconds::zero() ||
        options.statement_timeout <= std::chrono::milliseconds::zero() ||
        options.max_sleep <= std::chrono::milliseconds::zero())
      throw std::invalid_argument("leaselock: PostgresBackend timeouts must be > 0");
    auto conn = pool.borrow();  // the pool's first connection: one try, no backoff
    server = conn->server();
    create_schema(*conn, options.schema, sql,
                  std::chrono::steady_clock::now() + options.connect_timeout);
    // The first estimate of the server's clock, before any transition runs on it.
    const Nanos sent = steady_nanos();
    const Result clock =
        conn->run(sql.server_now, std::chrono::steady_clock::now() + options.connect_timeout);
    server_clock.observe(nanos_of_timestamp(clock.i64(0, 0)), sent, steady_nanos(), std::nullopt);
    pool.give_back(std::move(conn));
    next_cleanup.store(steady_nanos() + to_nanos(options.cleanup_interval));
  }

  SteadyTime statement_deadline() const {
    return std::chrono::steady_clock::now() + options.statement_timeout;
  }

  // The manager's clock now, if one is attached (server time bounds its offset).
  std::optional<Nanos> clock_reading() const {
    if (!clock_now) return std::nullopt;
    return clock_now();
  }

  // A row whose record does not decode.
  [[noreturn]] void damaged() const {
    throw StorageError("leaselock: PostgreSQL at " + server + ": a damaged record in " +
                           options.schema + ".leases",
                       server);
  }

  // The row as a refused apply() or read_row returned it: columns `version`, `record`,
  // `writer`, `floor` at the given positions.
  KnownRow entry_from(const Result& row, int version_col, int record_col, int writer_col,
                      int floor_col, int shard) {
    const std::int64_t version = row.null(0, version_col) ? 0 : row.i64(0, version_col);
    if (version == 0) {
      if (!row.null(0, floor_col)) cache.learn_floor(shard, row.i64(0, floor_col));
      return cache.blank(shard);
    }
    KnownRow entry;
    entry.version = version;
    entry.writer = row.null(0, writer_col) ? 0 : row.i64(0, writer_col);
    entry.bytes = std::string(row.bytes(0, record_col));
    std::optional<Record> record = decode(entry.bytes);
    if (!record) damaged();
    entry.record = std::move(*record);
    return entry;
  }

  // --- operations ---

  template <class Fn>
  auto transact(std::string_view key_view, Fn& fn) {
    using Outcome = decltype(fn(std::declval<Record&>()));
    if constexpr (std::is_void_v<Outcome>) {
      auto wrapped = [&](Record& record) {
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
    using Outcome = decltype(fn(std::declval<Record&>()));
    const std::string key(key_view);
    const std::uint64_t hash = stable_hash(key);
    const int shard = static_cast<int>(hash % kShards);
    ConnectionPool::Lent conn(pool);
    std::optional<KnownRow> known = cache.find(key);
    // A row read in this call, at this server time: a decision on it that changes
    // nothing needs no second look.
    std::optional<Nanos> read_at;
    KnownRow entry = known ? std::move(*known) : cache.blank(shard);
    // A write whose outcome is unknown (its connection broke): its id and result.
    std::int64_t pending_writer = 0;
    std::optional<Outcome> pending;
    std::int64_t pending_base = 0;  // the row version it was decided on
    std::size_t broken = 0;
    // A fresh connection in place of a broken one; rethrows when retrying is pointless.
    const auto recover = [&](const StatementError& error) {
      if (error.failure() == Failure::refused || ++broken > 3) throw error;
      conn.replace();
      conn.reconnect();
    };
    const auto reread = [&] {
      try {
        entry = read_entry(*conn, key, shard, &read_at);
        cache.remember(key, entry);
      } catch (const StatementError& error) {
        recover(error);
        read_at.reset();
        entry.stale = true;
      }
    };
    for (;;) {
      if (pending_writer) {
        entry = read_entry(*conn, key, shard, &read_at);
        if (entry.writer == pending_writer) {
          cache.remember(key, entry);
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
      Record record = entry.record;
      const Nanos before = storage_time();
      Outcome result = fn(record);
      const Nanos after = storage_time();
      std::pair<Nanos, Nanos> window{std::numeric_limits<Nanos>::min() / 2, kForever};
      if (options.server_time) {
        const auto valid = validity(entry.record, before, after);
        if (!valid) continue;  // an expiry fell inside the transition: run it again
        window = *valid;
      }
      // A key with no row stores nothing while its record stays blank.
      bool write = entry.version != 0 || !record.idle();
      std::string bytes;
      if (write) {
        bytes = encode(record);
        if (entry.version != 0) write = bytes != entry.bytes;
      }
      if (!write && read_at &&
          (!options.server_time || (window.first <= *read_at && *read_at < window.second))) {
        maybe_clean(*conn);
        return result;  // decided on the row as read, at a server time it holds for
      }
      const std::int64_t writer = random_writer_id();
      const StatementCall call = write_statement(sql, options.schema, key, hash, shard, entry,
                                                 record, write ? &bytes : nullptr, writer, window);
      const std::optional<Nanos> sent_clock = clock_reading();
      const Nanos sent = steady_nanos();
      Result row;
      try {
        statements.fetch_add(1, std::memory_order_relaxed);
        row = conn->run_prepared(call.name, *call.text, call.params, statement_deadline());
      } catch (const StatementError& error) {
        if (error.failure() == Failure::retry) continue;
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
      server_clock.observe(nanos_of_timestamp(row.i64(0, entry.version == 0 ? 1 : 0)), sent,
                           steady_nanos(), sent_clock);
      if (entry.version != 0 || row.boolean(0, 0)) {
        if (write) {
          entry.version = entry.version != 0 ? entry.version + 1 : row.i64(0, 2);
          entry.writer = writer;
          entry.bytes = std::move(bytes);
          entry.record = std::move(record);
          cache.remember(key, std::move(entry));
        } else if (entry.version != 0) {
          cache.remember(key, std::move(entry));
        }
        maybe_clean(*conn);
        return result;
      }
      entry = entry_from(row, 2, 3, 5, 4, shard);
      cache.remember(key, entry);
    }
  }

  Nanos storage_time() const {
    if (!options.server_time) return clock_now ? clock_now() : 0;
    return server_clock.now();
  }

  // The row of `key` as it is now; *read_at (if given) receives the server's time then.
  KnownRow read_entry(Connection& conn, const std::string& key, int shard,
                      std::optional<Nanos>* read_at = nullptr) {
    Params params;
    params.bytes(key).i32(shard);
    const std::optional<Nanos> sent_clock = clock_reading();
    const Nanos sent = steady_nanos();
    statements.fetch_add(1, std::memory_order_relaxed);
    const Result row =
        conn.run_prepared("leaselock_read_row", sql.read_row, params, statement_deadline());
    const Nanos server_now = nanos_of_timestamp(row.i64(0, 0));
    server_clock.observe(server_now, sent, steady_nanos(), sent_clock);
    if (read_at) *read_at = server_now;
    return entry_from(row, 1, 2, 3, 4, shard);
  }

  // Runs `body(conn)`, once more on a fresh connection if the first one broke
  // (reading is always safe to repeat).
  template <class Body>
  auto with_retry(Body&& body) {
    ConnectionPool::Lent conn(pool);
    try {
      return body(*conn);
    } catch (const StatementError& error) {
      if (error.failure() == Failure::refused) throw;
      conn.replace();
      conn.reconnect();
      return body(*conn);
    }
  }

  std::optional<Record> read(std::string_view key_view) {
    const std::string key(key_view);
    const int shard = static_cast<int>(stable_hash(key) % kShards);
    KnownRow entry = with_retry([&](Connection& conn) { return read_entry(conn, key, shard); });
    if (entry.version == 0) return std::nullopt;
    cache.remember(key, entry);
    return std::move(entry.record);
  }

  template <class Fn>
  void read_all(Fn&& fn) {
    const Result rows = with_retry([&](Connection& conn) {
      return conn.run_prepared("leaselock_read_all", sql.read_all, Params(), statement_deadline());
    });
    for (int i = 0; i < rows.rows(); ++i) {
      std::optional<Record> record = decode(rows.bytes(i, 1));
      if (!record) damaged();
      fn(rows.bytes(i, 0), *record);
    }
  }

  std::size_t remove_idle() {
    return with_retry([&](Connection& conn) { return clean(conn); });
  }

  std::size_t clean(Connection& conn) {
    const std::size_t removed = remove_idle_rows(conn, sql, statement_deadline());
    cache.forget_all();
    return removed;
  }

  // Runs the periodic cleanup on this connection when it is due (one caller at a time).
  void maybe_clean(Connection& conn) {
    if (options.cleanup_interval <= std::chrono::milliseconds::zero()) return;
    Nanos due = next_cleanup.load(std::memory_order_relaxed);
    const Nanos now = steady_nanos();
    if (now < due) return;
    if (!next_cleanup.compare_exchange_strong(due, now + to_nanos(options.cleanup_interval)))
      return;
    try {
      clean(conn);
    } catch (const StorageError&) {
      // The next interval tries again; the operation itself succeeded.
    }
  }

  const PostgresBackendOptions options;
  const std::string schema;  // quoted
  const Statements sql;
  std::string server;                // "host:port/database", for messages
  std::function<Nanos()> clock_now;  // the manager's clock (attach_clock), if attached

  ConnectionPool pool;
  RowCache cache;
  ServerClock server_clock;
  std::atomic<Nanos> next_cleanup{0};
  std::atomic<std::uint64_t> statements{0};

  Listener listener;  // wakes the waiters (PostgresBackend::wait_update)
};

}  // namespace leaselock::detail::postgres
