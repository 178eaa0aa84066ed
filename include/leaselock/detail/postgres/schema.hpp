// leaselock/detail/postgres/schema.hpp — the tables, the one function and the statements
// PostgresBackend uses, in the schema it is given (schema version 3), and the two
// transactions on the schema as a whole: create_schema() and remove_idle_rows().
//
//   leases(key bytea PRIMARY KEY, shard, version, last_fence, live_until, waiters, writer,
//          record bytea)   one row per key in use: the encoded detail::Record (codec.hpp)
//                          plus what cleanup and recovery need in columns of their own
//                          (live_until: until when a holder is live or a queued request
//                          stands; after it cleanup may remove the row).
//   floors(shard PRIMARY KEY, floor, vfloor)   per shard of keys (a stable hash of the
//                          key, 64 shards): every fence and row version ever given to a
//                          key whose row was cleaned up is <= floor / vfloor, so a key
//                          made anew continues above them.
//   meta(name PRIMARY KEY, value)   schema_version = 3 (1: queued requests kept their
//                          rows without a live_until of their own; 2: apply() took
//                          nanoseconds and wrote rows the client knew).
//   apply(...)             makes the row of a key the client knows no row of, above the
//                          floors, if the server's clock is inside the decision's validity
//                          window; else returns the row as it is now. A row the client knows
//                          is written by a plain conditional UPDATE (Statements::update):
//                          one round trip, one commit, no function call.
//
// Nothing here is built from user input: the schema name is an identifier, quoted with
// quote_identifier(); every value is a bound parameter.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <leaselock/detail/postgres/connection.hpp>
#include <leaselock/detail/time.hpp>
#include <leaselock/storage_error.hpp>

namespace leaselock::detail::postgres {

inline constexpr std::int64_t kSchemaVersion = 3;
inline constexpr int kShards = 64;

/// FNV-1a, 64 bits: stable across builds and hosts (it picks a key's shard in the
/// database and names it in notifications).
inline std::uint64_t stable_hash(std::string_view bytes) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

/// `name` as a quoted SQL identifier; std::invalid_argument if it cannot be one.
inline std::string quote_identifier(std::string_view name) {
  if (name.empty() || name.size() > 63 || name.find('\0') != std::string_view::npos)
    throw std::invalid_argument(
        "leaselock: PostgresBackend schema name must be 1 to 63 bytes without NUL");
  std::string quoted = "\"";
  for (const char c : name) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

/// Instants travel as timestamptz (binary: microseconds since 2000-01-01 UTC), which the
/// server compares with clock_timestamp() without arithmetic; records keep nanoseconds
/// since the Unix epoch.
inline constexpr std::int64_t kPostgresEpochMicros = 946684800000000;

/// `t` (ns since the Unix epoch) rounded up to a timestamptz microsecond.
inline std::int64_t timestamp_at_or_after(Nanos t) noexcept {
  const std::int64_t micros = t / 1000 + (t % 1000 > 0 ? 1 : 0);
  return micros - kPostgresEpochMicros;
}

/// A timestamptz (the server's clock) in ns since the Unix epoch.
inline Nanos nanos_of_timestamp(std::int64_t micros) noexcept {
  return (micros + kPostgresEpochMicros) * 1000;
}

/// The server times, as timestamptz bounds for `clock_timestamp() BETWEEN lo AND hi`, in
/// which a decision valid for t in [lo_ns, hi_ns) holds.
inline std::pair<std::int64_t, std::int64_t> timestamp_window(Nanos lo_ns, Nanos hi_ns) noexcept {
  return {timestamp_at_or_after(lo_ns), timestamp_at_or_after(hi_ns) - 1};
}

/// Server time in nanoseconds since the Unix epoch (for the bigint columns; cleanup only).
#define LEASELOCK_PG_NOW "((extract(epoch from clock_timestamp()) * 1000000)::bigint * 1000)"

/// The statements, with the schema's quoted name in them. Where one takes the same
/// values as another, they come in the same order:
///   update($1 key, $2 version, $3 record, $4 last_fence, $5 live_until, $6 waiters,
///          $7 writer, $8 lo, $9 hi)        -> clock_timestamp() if stored, else no row
///   update_notify(update's, $10 channel, $11 payload)   the same, and pg_notify
///   check($1 key, $2 version, $3 lo, $4 hi) -> clock_timestamp() if still so, else no row
///   apply($1 key, $2 shard, $3 record or NULL, $4 last_fence, $5 live_until, $6 waiters,
///         $7 writer, $8 lo, $9 hi, $10 floor)  for a key the client knows no row of
///   read_row($1 key, $2 shard)              -> clock_timestamp(), version, record, writer, floor
struct Statements {
  explicit Statements(const std::string& s)
      : create_tables(
            "CREATE TABLE IF NOT EXISTS " + s +
            ".meta (name text PRIMARY KEY, value bigint NOT NULL);"
            "CREATE TABLE IF NOT EXISTS " +
            s +
            ".floors (shard int PRIMARY KEY, floor bigint NOT NULL, vfloor bigint NOT NULL);"
            "INSERT INTO " +
            s + ".floors SELECT g, 0, 0 FROM generate_series(0, " + std::to_string(kShards - 1) +
            ") g ON CONFLICT DO NOTHING;"
            "CREATE TABLE IF NOT EXISTS " +
            s +
            ".leases (key bytea PRIMARY KEY, shard int NOT NULL, version bigint NOT NULL,"
            " last_fence bigint NOT NULL, live_until bigint NOT NULL, waiters int NOT NULL,"
            " writer bigint NOT NULL, record bytea NOT NULL) WITH (fillfactor = 50);"
            // A key with no row: make it above the floors (p_record NULL: check that there
            // is still no row). Returns the row as it is when it refuses.
            "CREATE OR REPLACE FUNCTION " +
            s +
            ".apply(p_key bytea, p_shard int, p_record bytea, p_last_fence bigint,"
            " p_live_until bigint, p_waiters int, p_writer bigint, p_lo timestamptz,"
            " p_hi timestamptz, p_floor bigint)"
            " RETURNS TABLE(ok boolean, server_now timestamptz, cur_version bigint,"
            " cur_record bytea, cur_floor bigint, cur_writer bigint) LANGUAGE plpgsql AS $fn$\n"
            "DECLARE v bigint; r bytea; w bigint; fl bigint;\n"
            "BEGIN\n"
            "  IF p_record IS NULL THEN\n"
            "    PERFORM 1 WHERE NOT EXISTS (SELECT 1 FROM " +
            s +
            ".leases l WHERE l.key = p_key)\n"
            "      AND clock_timestamp() BETWEEN p_lo AND p_hi;\n"
            "    v := 0;\n"
            "  ELSE\n"
            "    PERFORM 1 FROM " +
            s +
            ".floors f WHERE f.shard = p_shard AND f.floor = p_floor FOR SHARE;\n"
            "    IF FOUND AND clock_timestamp() BETWEEN p_lo AND p_hi THEN\n"
            "      INSERT INTO " +
            s +
            ".leases (key, shard, version, last_fence, live_until, waiters, writer, record)\n"
            "        SELECT p_key, p_shard, f.vfloor + 1, p_last_fence, p_live_until, p_waiters,"
            " p_writer, p_record FROM " +
            s +
            ".floors f WHERE f.shard = p_shard\n"
            "        ON CONFLICT (key) DO NOTHING RETURNING version INTO v;\n"
            "    ELSE\n"
            "      PERFORM 1 WHERE false;\n"
            "    END IF;\n"
            "  END IF;\n"
            "  IF FOUND THEN\n"
            "    RETURN QUERY SELECT true, clock_timestamp(), v, NULL::bytea, NULL::bigint,"
            " NULL::bigint;\n"
            "    RETURN;\n"
            "  END IF;\n"
            "  SELECT l.version, l.record, l.writer INTO v, r, w FROM " +
            s +
            ".leases l WHERE l.key = p_key;\n"
            "  IF NOT FOUND THEN\n"
            "    v := 0;\n"
            "    SELECT f.floor INTO fl FROM " +
            s +
            ".floors f WHERE f.shard = p_shard;\n"
            "  END IF;\n"
            "  RETURN QUERY SELECT false, clock_timestamp(), v, r, fl, w;\n"
            "END\n"
            "$fn$;"
            "INSERT INTO " +
            s + ".meta VALUES ('schema_version', " + std::to_string(kSchemaVersion) + ");"),
        schema_version("SELECT value FROM " + s + ".meta WHERE name = 'schema_version'"),
        meta_exists("SELECT to_regclass($1) IS NOT NULL"),
        server_now("SELECT clock_timestamp()"),
        apply("SELECT * FROM " + s + ".apply($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"),
        update(update_text(s) + " RETURNING clock_timestamp()"),
        update_notify("WITH u AS (" + update_text(s) +
                      " RETURNING 1) SELECT clock_timestamp(), pg_notify($10, $11) FROM u"),
        check("SELECT clock_timestamp() FROM " + s +
              ".leases l WHERE l.key = $1 AND l.version = $2"
              " AND clock_timestamp() BETWEEN $3 AND $4"),
        read_row("SELECT clock_timestamp(), l.version, l.record, l.writer, f.floor FROM " + s +
                 ".floors f LEFT JOIN " + s + ".leases l ON l.key = $1 WHERE f.shard = $2"),
        read_all("SELECT key, record FROM " + s + ".leases WHERE live_until > 0 OR waiters > 0"),
        lock_floors("SELECT shard FROM " + s + ".floors ORDER BY shard FOR UPDATE"),
        remove_idle(
            "WITH d AS (DELETE FROM " + s +
            ".leases WHERE live_until <= " LEASELOCK_PG_NOW
            " RETURNING shard, last_fence, version),"
            " m AS (SELECT shard, max(last_fence) AS f, max(version) AS v, count(*) AS n"
            " FROM d GROUP BY shard),"
            " u AS (UPDATE " +
            s +
            ".floors fl SET floor = GREATEST(fl.floor, m.f), vfloor = GREATEST(fl.vfloor, m.v)"
            " FROM m WHERE fl.shard = m.shard RETURNING m.n)"
            " SELECT coalesce(sum(n), 0)::bigint FROM u") {}

  // The conditional write of a row the client knows: a plain UPDATE, no function call.
  static std::string update_text(const std::string& s) {
    return "UPDATE " + s +
           ".leases l SET version = $2 + 1, record = $3, last_fence = $4, live_until = $5,"
           " waiters = $6, writer = $7"
           " WHERE l.key = $1 AND l.version = $2 AND clock_timestamp() BETWEEN $8 AND $9";
  }

  std::string create_tables;
  std::string schema_version;
  std::string meta_exists;
  std::string server_now;
  std::string apply;
  std::string update;
  std::string update_notify;
  std::string check;
  std::string read_row;
  std::string read_all;
  std::string lock_floors;
  std::string remove_idle;
};

#undef LEASELOCK_PG_NOW

/// Creates schema `name` (its tables, apply() and its version) unless it exists, in one
/// transaction that waits for any other client doing the same; StorageError if the schema
/// exists with another schema version, saying what to do.
inline void create_schema(Connection& conn, const std::string& name, const Statements& sql,
                          SteadyTime deadline) {
  const std::string schema = quote_identifier(name);
  conn.run("BEGIN", deadline);
  try {
    conn.run("SELECT pg_advisory_xact_lock(hashtext('leaselock schema ' || $1))", deadline,
             Params().text(name));
    const Result exists = conn.run("SELECT count(*) FROM pg_namespace WHERE nspname = $1", deadline,
                                   Params().text(name));
    if (exists.i64(0, 0) == 0) conn.run("CREATE SCHEMA " + schema, deadline);
    const Result meta = conn.run(sql.meta_exists, deadline, Params().text(schema + ".meta"));
    if (!meta.boolean(0, 0)) {
      conn.run_script(sql.create_tables, deadline);
    } else {
      const Result version = conn.run(sql.schema_version, deadline);
      const std::int64_t found = version.rows() ? version.i64(0, 0) : 0;
      if (found != kSchemaVersion)
        throw StorageError(
            "leaselock: PostgreSQL at " + conn.server() + ": schema " + name +
                " has schema version " + std::to_string(found) + "; this leaselock uses version " +
                std::to_string(kSchemaVersion) +
                (found < kSchemaVersion
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

/// Removes every row that nobody holds (live) or waits for, and raises the fence floors
/// of their shards above them, in one transaction; returns how many rows. A connection
/// that cannot roll back a failed attempt is poisoned (closed when given back).
inline std::size_t remove_idle_rows(Connection& conn, const Statements& sql, SteadyTime deadline) {
  conn.run("BEGIN", deadline);
  try {
    conn.run_prepared("leaselock_lock_floors", sql.lock_floors, Params(), deadline);
    const Result removed =
        conn.run_prepared("leaselock_remove_idle", sql.remove_idle, Params(), deadline);
    conn.run("COMMIT", deadline);
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

}  // namespace leaselock::detail::postgres
