// leaselock/detail/postgres/decision.hpp — a decision the client made on its copy of a
// key's row, as the one statement that stores it on the server.
//
// The transition ran at an estimate of the server's clock (server_clock.hpp). What it
// decided holds for every server time after each instant it treated as passed and before
// each one it treated as pending: validity() is that window. The statement stores the
// decision only if the row is still at the version it was decided on and the server's
// clock_timestamp() lies inside the window (write_statement()), with a writer id of its
// own (random_writer_id()): for a key with no row known, a call of apply(); for a known
// row the decision changes, a plain conditional UPDATE, with pg_notify in the same
// statement when the change concerns waiters (notice.hpp); for one it leaves as it is, a
// check that the row is still so. The parameters come in the order schema.hpp's
// Statements lists.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <utility>

#include <leaselock/detail/postgres/codec.hpp>
#include <leaselock/detail/postgres/connection.hpp>
#include <leaselock/detail/postgres/notice.hpp>
#include <leaselock/detail/postgres/row_cache.hpp>
#include <leaselock/detail/postgres/schema.hpp>
#include <leaselock/detail/semantics.hpp>
#include <leaselock/detail/time.hpp>

namespace leaselock::detail::postgres {

/// The window of server times in which a decision made at some time in [before,
/// after] on `record` is the same: after every instant it treated as passed, before
/// every one it treated as pending. nullopt when an instant lies inside [before,
/// after] (the decision is ambiguous: run it again).
inline std::optional<std::pair<Nanos, Nanos>> validity(const Record& record, Nanos before,
                                                       Nanos after) {
  Nanos lo = std::numeric_limits<Nanos>::min() / 2;
  Nanos hi = kForever;
  bool ambiguous = false;
  const auto consider = [&](Nanos t) {
    if (t <= before) {
      lo = std::max(lo, t);
    } else if (t > after) {
      hi = std::min(hi, t);
    } else {
      ambiguous = true;
    }
  };
  for (const Holder& h : record.holders) consider(h.expires_at);
  for (const Waiter& w : record.waiters) consider(w.deadline);
  if (ambiguous) return std::nullopt;
  return std::make_pair(lo, hi);
}

/// A random nonzero id for one write: stored with the row, so that a retry after a lost
/// connection can tell whether the write was applied.
inline std::int64_t random_writer_id() {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  std::int64_t id = 0;
  while (id == 0) id = static_cast<std::int64_t>(generator());
  return id;
}

/// A statement ready to go out: its prepared name, its text (one of Statements') and
/// its parameters.
struct StatementCall {
  const char* name = nullptr;
  const std::string* text = nullptr;
  Params params;
};

/// The statement that stores `decided`, the decision on `base` (the row of `key`, in
/// shard `shard`, as the client knew it), valid for the server times `window`, as writer
/// `writer`. `bytes` is encode(decided), or nullptr when the decision stores nothing.
/// `channel` is the schema's name, which waiters listen on; `key_hash` is
/// stable_hash(key).
inline StatementCall write_statement(const Statements& sql, const std::string& channel,
                                     const std::string& key, std::uint64_t key_hash, int shard,
                                     const KnownRow& base, const Record& decided,
                                     const std::string* bytes, std::int64_t writer,
                                     std::pair<Nanos, Nanos> window) {
  const auto [lo, hi] = timestamp_window(window.first, window.second);
  StatementCall call;
  Params& params = call.params;
  if (base.version == 0) {
    // No row known: apply() makes it, or returns the row someone else made.
    params.bytes(key).i32(shard);
    if (bytes) {
      params.bytes(*bytes)
          .i64(static_cast<std::int64_t>(decided.last_fence))
          .i64(live_until(decided))
          .i32(static_cast<std::int32_t>(decided.waiters.size()));
    } else {
      params.null(17).null(20).null(20).null(23);
    }
    params.i64(writer).timestamptz(lo).timestamptz(hi).i64(
        static_cast<std::int64_t>(base.record.last_fence));
    call.name = "leaselock_apply";
    call.text = &sql.apply;
  } else if (bytes) {
    params.bytes(key)
        .i64(base.version)
        .bytes(*bytes)
        .i64(static_cast<std::int64_t>(decided.last_fence))
        .i64(live_until(decided))
        .i32(static_cast<std::int32_t>(decided.waiters.size()))
        .i64(writer)
        .timestamptz(lo)
        .timestamptz(hi);
    // Waiters are told, in the same transaction, whom the change concerns.
    if (decided.version != base.record.version && !base.record.waiters.empty()) {
      params.text(channel).text(make_notice(key_hash, base.record, decided));
      call.name = "leaselock_update_notify";
      call.text = &sql.update_notify;
    } else {
      call.name = "leaselock_update";
      call.text = &sql.update;
    }
  } else {
    params.bytes(key).i64(base.version).timestamptz(lo).timestamptz(hi);
    call.name = "leaselock_check";
    call.text = &sql.check;
  }
  return call;
}

}  // namespace leaselock::detail::postgres
