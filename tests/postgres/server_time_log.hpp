// What holders saw of their leases in the database server's time, and the checker over
// every holder's log (the server-time stress test and the multi-host chaos test).
//
// A holder cannot read the instant its grant was committed, but it can bound it: it reads
// the server's clock_timestamp() on a connection of its own before it asks (`asked`) and
// after the grant returned (`got`, in the same statement that reads its holder entry, and
// with it the expiry the server judges by). The lease was then certainly held from `got`
// (+1 us: the clock is truncated to microseconds) until the earlier of its expiry and a
// server reading taken before the release was sent (a lease never released is held until
// its expiry: nobody else has its token). Two leases that certainly held the same key at
// the same server instant, one of them exclusive, are a violation whatever the timing;
// so is a fence given twice, or a lease certainly granted before another was asked for
// holding the lower fence.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <leaselock/backends/postgres.hpp>

namespace test::server_time {

using Nanos = std::int64_t;

/// One lease as its holder saw it. Times are the server's, in ns since the Unix epoch;
/// 0 is "not known".
struct Held {
  std::string host;  // who held it (a test host, or a thread)
  std::string key;
  leaselock::Mode mode = leaselock::Mode::exclusive;
  std::uint64_t fence = 0;
  Nanos asked = 0;  // read before the acquisition was asked for
  Nanos got = 0;    // read after the grant returned
  Nanos start = 0;  // certainly held from here ...
  Nanos end = 0;    // ... until here (end <= start: no interval known)

  bool has_interval() const noexcept { return start != 0 && end > start; }
};

/// "lease HOST KEY MODE FENCE ASKED GOT START END" (keys and hosts without blanks).
inline std::string format(const Held& h) {
  std::ostringstream out;
  out << "lease " << h.host << ' ' << h.key << ' '
      << (h.mode == leaselock::Mode::exclusive ? 'x' : 's') << ' ' << h.fence << ' ' << h.asked
      << ' ' << h.got << ' ' << h.start << ' ' << h.end;
  return out.str();
}

inline std::optional<Held> parse(const std::string& line) {
  std::istringstream in(line);
  std::string tag;
  std::string mode;
  Held h;
  if (!(in >> tag >> h.host >> h.key >> mode >> h.fence >> h.asked >> h.got >> h.start >> h.end))
    return std::nullopt;
  if (tag != "lease" || (mode != "x" && mode != "s")) return std::nullopt;
  h.mode = mode == "x" ? leaselock::Mode::exclusive : leaselock::Mode::shared;
  return h;
}

struct Report {
  std::size_t leases = 0;
  std::size_t intervals = 0;        // leases with a known interval of holding
  std::size_t overlaps = 0;         // an exclusive lease overlapping another lease
  std::size_t repeated_fences = 0;  // a fence given twice on a key
  std::size_t order_errors = 0;     // a later grant with a lower fence
  std::vector<std::string> examples;

  std::size_t violations() const noexcept { return overlaps + repeated_fences + order_errors; }
};

namespace detail {
inline void note(Report& report, const std::string& what, const Held& a, const Held& b) {
  if (report.examples.size() < 8)
    report.examples.push_back(what + ": " + format(a) + "  /  " + format(b));
}
}  // namespace detail

/// Checks every lease of every holder against the others of its key.
inline Report check(const std::vector<Held>& all) {
  Report report;
  report.leases = all.size();
  std::map<std::string, std::vector<const Held*>> by_key;
  for (const Held& h : all) {
    by_key[h.key].push_back(&h);
    if (h.has_interval()) ++report.intervals;
  }
  for (auto& [key, leases] : by_key) {
    // Fences: each given once; in descending fence order, no lease certainly granted
    // (got) before a lower-fenced one was asked for.
    std::sort(leases.begin(), leases.end(),
              [](const Held* a, const Held* b) { return a->fence > b->fence; });
    const Held* earliest_higher = nullptr;  // the higher-fenced lease with the least `got`
    for (std::size_t i = 0; i < leases.size(); ++i) {
      const Held& h = *leases[i];
      if (i > 0 && leases[i - 1]->fence == h.fence) {
        ++report.repeated_fences;
        detail::note(report, "fence given twice", *leases[i - 1], h);
      }
      if (earliest_higher && h.asked != 0 && earliest_higher->got < h.asked &&
          earliest_higher->fence > h.fence) {
        ++report.order_errors;
        detail::note(report, "granted later with a lower fence", *earliest_higher, h);
      }
      if (h.got != 0 && (!earliest_higher || h.got < earliest_higher->got)) earliest_higher = &h;
    }
    // Overlap: sweep the intervals by start, remembering the latest end of any earlier
    // one and of any earlier exclusive one.
    std::vector<const Held*> spans;
    for (const Held* h : leases)
      if (h->has_interval()) spans.push_back(h);
    std::sort(spans.begin(), spans.end(),
              [](const Held* a, const Held* b) { return a->start < b->start; });
    const Held* latest = nullptr;
    const Held* latest_exclusive = nullptr;
    for (const Held* h : spans) {
      const Held* other = nullptr;
      if (h->mode == leaselock::Mode::exclusive && latest && h->start < latest->end) other = latest;
      if (!other && latest_exclusive && h->start < latest_exclusive->end) other = latest_exclusive;
      if (other) {
        ++report.overlaps;
        detail::note(report, "held together", *other, *h);
      }
      if (!latest || h->end > latest->end) latest = h;
      if (h->mode == leaselock::Mode::exclusive &&
          (!latest_exclusive || h->end > latest_exclusive->end))
        latest_exclusive = h;
    }
  }
  return report;
}

/// A connection of the holder's own to the server: its clock, and a lease's expiry as
/// the server judges it. Reconnects on the next call after its connection broke; throws
/// leaselock::StorageError when the server cannot be reached in time.
class ServerView {
 public:
  ServerView(std::string conninfo, std::string schema,
             std::chrono::milliseconds timeout = std::chrono::milliseconds(2000))
      : conninfo_(std::move(conninfo)),
        leases_(leaselock::detail::postgres::quote_identifier(schema) + ".leases"),
        timeout_(timeout) {}

  /// The server's clock now.
  Nanos now() { return run("SELECT " + std::string(kNow), {}).i64(0, 0); }

  /// The server's clock now, and the expiry of the holder `token` of `key` as stored
  /// (nullopt when it holds the key no more).
  std::pair<Nanos, std::optional<Nanos>> holder(const std::string& key,
                                                const leaselock::Token& token) {
    leaselock::detail::postgres::Params params;
    params.bytes(key);
    const auto row =
        run("SELECT " + std::string(kNow) + ", (SELECT record FROM " + leases_ + " WHERE key = $1)",
            params);
    std::optional<Nanos> expires;
    if (!row.null(0, 1)) {
      const auto record = leaselock::detail::postgres::decode(row.bytes(0, 1));
      if (!record) throw leaselock::StorageError("a damaged record of " + key, "test");
      for (const auto& h : record->holders)
        if (h.token == token) expires = h.expires_at;
    }
    return {row.i64(0, 0), expires};
  }

  /// The client address the server sees for this connection (which test host it is on).
  std::string client_address() {
    const auto row = run("SELECT coalesce(host(inet_client_addr()), 'local')", {});
    return std::string(row.bytes(0, 0));
  }

 private:
  static constexpr const char* kNow =
      "((extract(epoch from clock_timestamp()) * 1000000)::bigint * 1000)";

  leaselock::detail::postgres::Result run(const std::string& sql,
                                          const leaselock::detail::postgres::Params& params) {
    try {
      if (conn_ && conn_->broken()) conn_.reset();
      if (!conn_)
        conn_ = std::make_unique<leaselock::detail::postgres::Connection>(conninfo_, timeout_);
      return conn_->run(sql, std::chrono::steady_clock::now() + timeout_, params);
    } catch (const leaselock::StorageError& error) {  // told apart from the backend's own
      throw leaselock::StorageError(std::string("server view: ") + error.what(), error.path());
    }
  }

  std::string conninfo_;
  std::string leases_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<leaselock::detail::postgres::Connection> conn_;
};

/// Holds one lease from `manager` the way both tests do, and says what was certainly
/// seen: `hold` is called while it is held; `release` false forgets the lease instead
/// (it then runs out at its expiry). nullopt when the acquisition timed out. Throws
/// leaselock::StorageError when the manager or the view cannot reach the server before
/// the grant; after the grant, a view that fails turns the lease into a forgotten one.
template <class Manager, class Hold>
std::optional<Held> hold_one(Manager& manager, ServerView& view, const std::string& host,
                             const std::string& key, leaselock::Mode mode,
                             std::chrono::milliseconds ttl, std::chrono::milliseconds wait,
                             bool release, Hold&& hold) {
  Held h;
  h.host = host;
  h.key = key;
  h.mode = mode;
  h.asked = view.now();
  auto lease = manager.try_acquire(key, mode, ttl, wait);
  if (!lease) return std::nullopt;
  h.fence = lease.fence();
  std::optional<Nanos> expires;
  try {
    auto [got, expiry] = view.holder(key, lease.token());
    h.got = got;
    expires = expiry;
  } catch (const leaselock::StorageError&) {
    release = false;  // nothing known of its interval; let it run out
  }
  hold();
  Nanos end = expires.value_or(0);
  if (release) {
    try {
      end = std::min(end, view.now());
    } catch (const leaselock::StorageError&) {
      release = false;  // not released: held until its expiry
    }
  }
  if (release) {
    try {
      (void)lease.release();
    } catch (const leaselock::StorageError&) {
      // Its outcome does not matter: the interval ends before the release was sent.
    }
  } else {
    (void)lease.detach();
  }
  if (expires && h.got != 0) {
    h.start = h.got + 1000;
    h.end = end;
  }
  return h;
}

}  // namespace test::server_time
