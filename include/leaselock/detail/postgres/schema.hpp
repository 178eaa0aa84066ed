// leaselock/detail/postgres/schema.hpp — the tables, the one function and the statements
// PostgresBackend uses, in the schema it is given (schema version 2).
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
//   meta(name PRIMARY KEY, value)   schema_version = 2 (1: queued requests kept their
//                          rows without a live_until of their own).
//   apply(...)             the conditional write: stores a record the client computed if
//                          the row is still at the version it was computed from and the
//                          server's clock is inside the decision's validity window; else
//                          returns the row as it is now. One round trip, one commit.
//
// Nothing here is built from user input: the schema name is an identifier, quoted with
// quote_identifier(); every value is a bound parameter.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace leaselock::detail::postgres {

inline constexpr std::int64_t kSchemaVersion = 2;
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

/// Server time in nanoseconds since the Unix epoch (microsecond resolution).
#define LEASELOCK_PG_NOW "((extract(epoch from clock_timestamp()) * 1000000)::bigint * 1000)"

/// The statements, with the schema's quoted name in them.
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
            "CREATE OR REPLACE FUNCTION " +
            s +
            ".apply(p_key bytea, p_shard int, p_version bigint, p_record bytea,"
            " p_last_fence bigint, p_live_until bigint, p_waiters int, p_lo bigint, p_hi bigint,"
            " p_floor bigint, p_writer bigint, p_channel text, p_notify text)"
            " RETURNS TABLE(ok boolean, server_now bigint, cur_version bigint, cur_record bytea,"
            " cur_floor bigint, cur_writer bigint) LANGUAGE plpgsql AS $fn$\n"
            "DECLARE v bigint; r bytea; w bigint; fl bigint;\n"
            "BEGIN\n"
            "  IF p_record IS NULL THEN\n"  // a decision that changes nothing
            "    IF p_version = 0 THEN\n"
            "      PERFORM 1 WHERE NOT EXISTS (SELECT 1 FROM " +
            s +
            ".leases l WHERE l.key = p_key)\n"
            "        AND (p_lo IS NULL OR " LEASELOCK_PG_NOW
            " BETWEEN p_lo AND p_hi - 1);\n"
            "    ELSE\n"
            "      PERFORM 1 FROM " +
            s +
            ".leases l WHERE l.key = p_key AND l.version = p_version\n"
            "        AND (p_lo IS NULL OR " LEASELOCK_PG_NOW
            " BETWEEN p_lo AND p_hi - 1);\n"
            "    END IF;\n"
            "    v := p_version;\n"
            "  ELSIF p_version = 0 THEN\n"  // a key with no row: make it above the floors
            "    PERFORM 1 FROM " +
            s +
            ".floors f WHERE f.shard = p_shard AND f.floor = p_floor FOR SHARE;\n"
            "    IF FOUND AND (p_lo IS NULL OR " LEASELOCK_PG_NOW
            " BETWEEN p_lo AND p_hi - 1) THEN\n"
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
            "  ELSE\n"
            "    UPDATE " +
            s +
            ".leases l SET version = l.version + 1, last_fence = p_last_fence,"
            " live_until = p_live_until, waiters = p_waiters, writer = p_writer, record = "
            "p_record\n"
            "      WHERE l.key = p_key AND l.version = p_version\n"
            "        AND (p_lo IS NULL OR " LEASELOCK_PG_NOW
            " BETWEEN p_lo AND p_hi - 1)\n"
            "      RETURNING l.version INTO v;\n"
            "  END IF;\n"
            "  IF FOUND THEN\n"
            "    IF p_notify IS NOT NULL THEN PERFORM pg_notify(p_channel, p_notify); END IF;\n"
            "    RETURN QUERY SELECT true, " LEASELOCK_PG_NOW
            ", v, NULL::bytea, NULL::bigint, NULL::bigint;\n"
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
            "  RETURN QUERY SELECT false, " LEASELOCK_PG_NOW
            ", v, r, fl, w;\n"
            "END\n"
            "$fn$;"
            "INSERT INTO " +
            s + ".meta VALUES ('schema_version', " + std::to_string(kSchemaVersion) + ");"),
        schema_version("SELECT value FROM " + s + ".meta WHERE name = 'schema_version'"),
        meta_exists("SELECT to_regclass($1) IS NOT NULL"),
        server_now("SELECT " LEASELOCK_PG_NOW),
        apply("SELECT * FROM " + s +
              ".apply($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"),
        // apply()'s parameters (each named once, so every one has its type), for a row the
        // client knows and nobody to notify: one plain statement.
        update("UPDATE " + s +
               ".leases l SET version = l.version + 1, last_fence = $5, live_until = $6,"
               " waiters = $7, writer = $11, record = $4"
               " WHERE l.key = $1 AND l.version = $3 AND ($8::bigint IS NULL OR " LEASELOCK_PG_NOW
               " BETWEEN $8 AND $9 - 1) AND $2::int IS NOT NULL AND $10::bigint IS NOT NULL"
               " AND $12::text IS NOT NULL AND $13::text IS NULL"
               " RETURNING true, " LEASELOCK_PG_NOW
               ", l.version, NULL::bytea, NULL::bigint,"
               " NULL::bigint"),
        check("SELECT true, " LEASELOCK_PG_NOW
              ", l.version, NULL::bytea, NULL::bigint, NULL::bigint"
              " FROM " +
              s +
              ".leases l WHERE l.key = $1 AND l.version = $3 AND ($8::bigint IS NULL "
              "OR " LEASELOCK_PG_NOW
              " BETWEEN $8 AND $9 - 1) AND $2::int IS NOT NULL"
              " AND $4::bytea IS NULL AND $5::bigint IS NULL AND $6::bigint IS NULL"
              " AND $7::int IS NULL AND $10::bigint IS NOT NULL AND $11::bigint IS NOT NULL"
              " AND $12::text IS NOT NULL AND $13::text IS NULL"),
        read_row("SELECT " LEASELOCK_PG_NOW ", l.version, l.record, l.writer, f.floor FROM " + s +
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

  std::string create_tables;
  std::string schema_version;
  std::string meta_exists;
  std::string server_now;
  std::string apply;
  std::string update;
  std::string check;
  std::string read_row;
  std::string read_all;
  std::string lock_floors;
  std::string remove_idle;
};

#undef LEASELOCK_PG_NOW

}  // namespace leaselock::detail::postgres
