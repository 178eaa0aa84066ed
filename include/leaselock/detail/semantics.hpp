// leaselock/detail/semantics.hpp — the lock semantics, once, as pure transitions.
//
// Everything that decides who holds a key lives here: mode compatibility, expiry,
// fences, FIFO fairness, hand-off to waiters. Each function takes one key's Record, a
// request and the time `now`, and changes the record in place; none touches storage,
// threads, clocks or the OS. A backend only runs these under its own mutual exclusion
// and persists the record, so every backend behaves identically by construction.
//
// Fairness is FIFO: a request that cannot be granted at once joins the queue; queued
// requests are granted strictly in order (consecutive shared requests together), and a
// new request is granted at once only when nobody is queued. So a waiting writer is
// never overtaken by a stream of readers. Grants to queued requests are made by whoever
// changes the record (hand-off): the waiter wakes up already holding the lease.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <leaselock/detail/small_vector.hpp>
#include <leaselock/detail/time.hpp>
#include <leaselock/mode.hpp>
#include <leaselock/token.hpp>

namespace leaselock::detail {

/// One current grant on a key.
struct Holder {
  Token token;
  Mode mode = Mode::exclusive;
  std::uint64_t fence = 0;
  Nanos acquired_at = 0;
  Nanos expires_at = 0;
  std::string owner;
};

/// One queued request: all that is needed to grant it on the waiter's behalf.
struct Waiter {
  std::uint64_t ticket = 0;
  Token token;
  Mode mode = Mode::exclusive;
  Nanos ttl = 0;
  Nanos deadline = 0;
  std::string owner;
};

/// Everything stored for one key.
struct Record {
  /// The fence of the latest grant; the next grant gets last_fence + 1.
  std::uint64_t last_fence = 0;
  /// The latest queue ticket handed out.
  std::uint64_t last_ticket = 0;
  /// Bumped by every change a waiter may be waiting for (a holder leaving, a grant to a
  /// queued request, a waiter leaving the queue, an expiry brought forward). Backends
  /// wake the key's waiters when it moves.
  std::uint64_t version = 0;
  /// The holders (most keys have one: it is kept inside the record).
  SmallVector<Holder, 1> holders;
  std::vector<Waiter> waiters;

  /// Nobody holds (even expired) and nobody waits: the backend may drop the record.
  bool idle() const noexcept { return holders.empty() && waiters.empty(); }
};

/// What a caller asks for.
struct Request {
  Mode mode = Mode::exclusive;
  Nanos ttl = 0;
  Token token;
  std::string_view owner;
};

/// What a grant gives the caller.
struct Grant {
  std::uint64_t fence = 0;
  Nanos acquired_at = 0;
  Nanos expires_at = 0;
};

/// Where transitions report holders they removed because their TTL ran out (for the
/// observer). Null when nobody listens.
using ExpiredList = std::vector<Holder>;

inline const Holder* find_holder(const Record& record, const Token& token) noexcept {
  for (const Holder& holder : record.holders)
    if (holder.token == token) return &holder;
  return nullptr;
}

/// The holder with `token` if its lease is live at `now`, else nullptr.
inline const Holder* find_live_holder(const Record& record, const Token& token,
                                      Nanos now) noexcept {
  const Holder* holder = find_holder(record, token);
  return holder && holder->expires_at > now ? holder : nullptr;
}

/// Removes every holder whose TTL has run out by `now`. Returns how many.
inline std::size_t purge_expired(Record& record, Nanos now, ExpiredList* expired) {
  auto& holders = record.holders;
  std::size_t removed = 0;
  for (std::size_t i = 0; i < holders.size();) {
    if (holders[i].expires_at <= now) {
      if (expired) expired->push_back(std::move(holders[i]));
      if (i + 1 != holders.size()) holders[i] = std::move(holders.back());
      holders.pop_back();
      ++removed;
    } else {
      ++i;
    }
  }
  if (removed) ++record.version;
  return removed;
}

/// True when a live holder set (already purged) admits one more holder in `mode`.
inline bool admits(const Record& record, Mode mode) noexcept {
  for (const Holder& holder : record.holders)
    if (!compatible(holder.mode, mode)) return false;
  return true;
}

inline Grant add_holder(Record& record, const Token& token, Mode mode, Nanos ttl,
                        std::string_view owner, Nanos now) {
  // Build it apart first: if copying the owner or growing the vector throws, the record
  // is as it was (no fence taken).
  const Grant grant{record.last_fence + 1, now, add_saturated(now, ttl)};
  record.holders.push_back(
      Holder{token, mode, grant.fence, grant.acquired_at, grant.expires_at, std::string(owner)});
  record.last_fence = grant.fence;
  return grant;
}

/// Grants queued requests from the head of the queue for as long as they fit.
inline void promote_waiters(Record& record, Nanos now) {
  // The granted ones leave the queue even if a later grant throws (out of memory):
  // nobody may be both a holder and a waiter.
  struct LeaveQueue {
    Record& record;
    std::size_t granted = 0;
    ~LeaveQueue() {
      if (!granted) return;
      auto& waiters = record.waiters;
      waiters.erase(waiters.begin(), waiters.begin() + static_cast<std::ptrdiff_t>(granted));
      ++record.version;
    }
  } done{record};
  auto& waiters = record.waiters;
  while (done.granted < waiters.size() && admits(record, waiters[done.granted].mode)) {
    const Waiter& waiter = waiters[done.granted];
    add_holder(record, waiter.token, waiter.mode, waiter.ttl, waiter.owner, now);
    ++done.granted;
  }
}

/// Removes the queued requests whose deadline has passed (deadline < now): nobody is
/// granted a lease after its deadline, also when its waiter could not come back to
/// cancel it (FileBackend: it gave up on a record another process kept locked).
inline void drop_overdue_waiters(Record& record, Nanos now) {
  auto& waiters = record.waiters;
  const auto kept = std::remove_if(waiters.begin(), waiters.end(),
                                   [&](const Waiter& w) { return w.deadline < now; });
  if (kept == waiters.end()) return;
  waiters.erase(kept, waiters.end());
  ++record.version;
}

/// Sets the deadline stored with the queued request of `token` to `until`; returns false
/// if it is not queued. For storage that cannot see whether a waiter still lives
/// (PostgresBackend: clients on other hosts): the stored deadline is a lease on the
/// waiter's place, kept near and moved on by the waiting thread while it waits. A waiter
/// that stops moving it (its process died) is dropped by drop_overdue_waiters like one
/// whose wait ran out, and those behind it move up. The version does not change: nobody
/// waits for another waiter's deadline.
inline bool hold_place(Record& record, const Token& token, Nanos until) noexcept {
  for (Waiter& waiter : record.waiters) {
    if (waiter.token != token) continue;
    waiter.deadline = until;
    return true;
  }
  return false;
}

/// The deadline stored with the queued request of `token`, or nullopt if it is not queued.
inline std::optional<Nanos> queued_deadline(const Record& record, const Token& token) noexcept {
  for (const Waiter& waiter : record.waiters)
    if (waiter.token == token) return waiter.deadline;
  return std::nullopt;
}

/// Brings the record up to date at `now`: expired holders out, overdue requests out,
/// queued requests that now fit in.
inline void refresh(Record& record, Nanos now, ExpiredList* expired) {
  if (record.holders.empty() && record.waiters.empty()) return;
  purge_expired(record, now, expired);
  if (record.waiters.empty()) return;
  drop_overdue_waiters(record, now);
  promote_waiters(record, now);
}

/// One immediate attempt that does not queue: granted when nobody is queued and the
/// live holders admit the mode.
inline std::optional<Grant> try_grant(Record& record, const Request& request, Nanos now,
                                      ExpiredList* expired) {
  refresh(record, now, expired);
  if (!record.waiters.empty() || !admits(record, request.mode)) return std::nullopt;
  return add_holder(record, request.token, request.mode, request.ttl, request.owner, now);
}

/// Puts a request at the back of the queue; returns its ticket.
inline std::uint64_t enqueue(Record& record, const Request& request, Nanos deadline) {
  Waiter waiter;
  waiter.owner.assign(request.owner.data(), request.owner.size());
  waiter.token = request.token;
  waiter.mode = request.mode;
  waiter.ttl = request.ttl;
  waiter.deadline = deadline;
  waiter.ticket = record.last_ticket + 1;
  record.waiters.push_back(std::move(waiter));
  return ++record.last_ticket;
}

/// The queued request of the waiter with `token` and `ticket`, or end(). A ticket alone
/// does not name a waiter: tickets start again at 1 when a dropped record is made anew,
/// so a waiter that slept through that would find another's ticket equal to its own.
/// Tokens are unique to each request.
inline std::vector<Waiter>::iterator find_waiter(Record& record, const Token& token,
                                                 std::uint64_t ticket) noexcept {
  return std::find_if(record.waiters.begin(), record.waiters.end(),
                      [&](const Waiter& w) { return w.ticket == ticket && w.token == token; });
}

/// Removes the queued request of `token` with `ticket` (given up, timed out, or its
/// thread is unwinding). Returns false if it was not queued.
inline bool cancel(Record& record, const Token& token, std::uint64_t ticket, Nanos now) {
  auto& waiters = record.waiters;
  const auto it = find_waiter(record, token, ticket);
  if (it == waiters.end()) return false;
  waiters.erase(it);
  ++record.version;
  promote_waiters(record, now);  // those behind it may fit now
  return true;
}

/// The ticket of the queued request with `token`, or 0 if it is not queued.
inline std::uint64_t queued_ticket(const Record& record, const Token& token) noexcept {
  for (const Waiter& waiter : record.waiters)
    if (waiter.token == token) return waiter.ticket;
  return 0;
}

/// Where a queued request stands.
struct Poll {
  enum Kind { granted, waiting, timed_out } kind = waiting;
  Grant grant;               // when granted
  Nanos wake_at = kForever;  // when waiting: the earliest time anything can change by itself
};

/// Re-examines a queued request at `now`. If it was granted, reports the grant; if its
/// deadline has passed, removes it; otherwise says until when to sleep at most. A grant
/// that was made on the waiter's behalf and ran out before the waiter saw it is retried
/// as a new request (granted at once if it fits, else queued again at the back).
inline Poll poll(Record& record, std::uint64_t& ticket, const Request& request, Nanos deadline,
                 Nanos now, ExpiredList* expired) {
  refresh(record, now, expired);
  if (const Holder* holder = find_holder(record, request.token))
    return Poll{Poll::granted, Grant{holder->fence, holder->acquired_at, holder->expires_at}, 0};
  const bool queued = find_waiter(record, request.token, ticket) != record.waiters.end();
  if (now >= deadline) {
    if (queued) cancel(record, request.token, ticket, now);
    return Poll{Poll::timed_out, {}, 0};
  }
  if (!queued) {
    if (auto grant = try_grant(record, request, now, expired))
      return Poll{Poll::granted, *grant, 0};
    ticket = enqueue(record, request, deadline);
  }
  Nanos wake_at = deadline;
  for (const Holder& holder : record.holders) wake_at = std::min(wake_at, holder.expires_at);
  return Poll{Poll::waiting, {}, wake_at};
}

/// Removes the holders and queued requests for which `departed(token)` is true (their
/// process has certainly ended). Returns how many. Requests queued behind them are
/// granted at the next refresh().
template <class Departed>
std::size_t remove_departed(Record& record, Departed&& departed) {
  std::size_t removed = 0;
  auto& holders = record.holders;
  for (std::size_t i = 0; i < holders.size();) {
    if (departed(holders[i].token)) {
      if (i + 1 != holders.size()) holders[i] = std::move(holders.back());
      holders.pop_back();
      ++removed;
    } else {
      ++i;
    }
  }
  auto& waiters = record.waiters;
  const auto kept = std::remove_if(waiters.begin(), waiters.end(),
                                   [&](const Waiter& w) { return departed(w.token); });
  removed += static_cast<std::size_t>(waiters.end() - kept);
  waiters.erase(kept, waiters.end());
  if (removed) ++record.version;
  return removed;
}

/// Outcome of a release.
enum class Released { released, expired, not_held };

/// Ends the lease with `token`; `now()` gives the current time and is called at most
/// once, only when the outcome depends on it. With `exact`, a lease whose TTL already
/// ran out is removed too but reported as expired (it was not held until now); without,
/// a lease still on record counts as released — for callers that ignore the answer (a
/// guard's destructor), so that a release with nobody else around reads no clock.
template <class Now>
Released release(Record& record, const Token& token, Now&& now, bool exact, ExpiredList* expired) {
  auto& holders = record.holders;
  const auto it = std::find_if(holders.begin(), holders.end(),
                               [&](const Holder& h) { return h.token == token; });
  if (it == holders.end()) return Released::not_held;
  const bool others = holders.size() > 1 || !record.waiters.empty();
  const Nanos when = exact || others || expired ? now() : 0;
  const bool lapsed = (exact || expired) && it->expires_at <= when;
  if (lapsed && expired) expired->push_back(std::move(*it));
  if (it + 1 != holders.end()) *it = std::move(holders.back());
  holders.pop_back();
  ++record.version;
  if (others) refresh(record, when, expired);
  return lapsed && exact ? Released::expired : Released::released;
}

/// release() at a known time, answering exactly.
inline Released release(Record& record, const Token& token, Nanos now, ExpiredList* expired) {
  return release(
      record, token, [now] { return now; }, /*exact=*/true, expired);
}

/// Takes a request back entirely (its waiter is unwinding): its place in the queue, or
/// the grant made on its behalf meanwhile. Returns false if it had neither.
inline bool withdraw(Record& record, const Token& token, Nanos now) {
  if (const std::uint64_t ticket = queued_ticket(record, token))
    return cancel(record, token, ticket, now);
  return release(record, token, now, nullptr) != Released::not_held;
}

/// Whether a thread waiting with `token` must be woken after the record changed: when
/// its request was granted, or when it is now first in the queue (the head is the one
/// that watches the holders' expiry; everyone behind it waits for it to move).
inline bool should_wake(const Record& record, const Token& token) noexcept {
  if (!record.waiters.empty() && record.waiters.front().token == token) return true;
  return find_holder(record, token) != nullptr;
}

/// Extends (or shortens) the live lease with `token` to expire at now + ttl. Returns the
/// new expiry, or nullopt if the lease is no longer held.
inline std::optional<Nanos> renew(Record& record, const Token& token, Nanos ttl, Nanos now,
                                  ExpiredList* expired) {
  refresh(record, now, expired);
  for (Holder& holder : record.holders) {
    if (holder.token != token) continue;
    const Nanos expires_at = add_saturated(now, ttl);
    if (expires_at < holder.expires_at) ++record.version;  // waiters may wake sooner
    holder.expires_at = expires_at;
    return expires_at;
  }
  return std::nullopt;
}

/// The mode of the live holders at `now` (exclusive if any exclusive holder).
inline Mode held_mode(const Record& record, Nanos now) noexcept {
  for (const Holder& holder : record.holders)
    if (holder.expires_at > now && holder.mode == Mode::exclusive) return Mode::exclusive;
  return Mode::shared;
}

/// True when some holder is still live at `now`.
inline bool held(const Record& record, Nanos now) noexcept {
  return std::any_of(record.holders.begin(), record.holders.end(),
                     [&](const Holder& h) { return h.expires_at > now; });
}

}  // namespace leaselock::detail
