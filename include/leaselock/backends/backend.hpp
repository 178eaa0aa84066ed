// leaselock/backends/backend.hpp — what a Backend is: the storage half of a LockManager.
//
// The lock semantics live once, in detail/semantics.hpp, as pure transitions over one
// key's detail::Record. A Backend only (1) stores records and runs a transition on one
// record atomically, and (2) puts a waiter to sleep until that record changes or a time
// comes. It never decides who gets a lock. A type B is a Backend when it offers:
//
//   template <class Fn> auto update(std::string_view key, Fn&& fn);
//   template <class Fn> auto update(std::string_view key, Fn&& fn,
//                                   detail::BackendHandle* pin);
//       Runs fn(detail::Record&) with exclusive access to key's record (a blank record
//       whose last_fence is at least every fence this storage ever gave the key, if none
//       is stored) and stores the result atomically; returns what fn returns. A record
//       left idle() is dropped. If fn moved record.version, the key's waiters are woken.
//       If fn throws, whatever it already changed is kept consistent and stored.
//       With `pin`, and a result that converts to true (a grant), *pin receives a handle
//       to the record that stays valid until unpinned: a lease keeps it, so that its
//       release and renewal need not look the key up again.
//
//   template <class Fn> auto update(detail::BackendHandle handle, Fn&& fn, bool unpin);
//       update() on the pinned record; with `unpin`, gives the pin back first.
//
//   void unpin(detail::BackendHandle handle) noexcept;
//
//   template <class Clock, class Fn> auto wait_update(std::string_view key,
//       const Token& waiter, const Clock& clock, detail::Nanos deadline, Fn&& fn,
//       detail::BackendHandle* pin);
//       fn returns detail::Step<R>. Runs fn like update(); while fn returns a step with
//       no result, sleeps until a change to the key's record concerns the waiter
//       (detail::should_wake) or until the step's wake_at on `clock`
//       (detail::park_until), then runs fn again. Returns the first result, pinned as
//       update() does. A change between fn's decision and the sleep is never missed.
//       Storage that learns of a grant to the waiter without reading the record
//       (PostgresBackend: from a committed notification) may run fn on a view, a record
//       holding only that grant; if fn returns a result and leaves the view unchanged
//       (the grant stands), that is the result, with no read or write of the record.
//       `deadline` (kForever for none) is the request's, in the storage's time domain
//       like every instant of a record (see storage_now below): storage whose
//       records another process can keep locked (FileBackend) stops waiting for the
//       record once it has passed and returns R{} (timed out) without running fn again.
//
//   template <class Fn> void read(std::string_view key, Fn&& fn) const;
//       fn(const detail::Record*) on a consistent snapshot; nullptr when nothing is stored.
//
//   template <class Fn> void read_all(Fn&& fn) const;
//       fn(std::string_view key, const detail::Record&) for every stored record.
//
// Optionally:
//   template <class Clock> void attach_clock(const Clock& clock);
//       Called once by the LockManager's constructor with its clock: storage that outlives
//       the process (FileBackend) records which clock wrote it and reads `now` for upkeep.
//
//   template <class Fn> bool bind(std::string_view key, const Token& token,
//                                 const HolderProcess& process, Fn&& holds);
//       Runs holds(detail::Record&) like update(); when it returns true, makes `process`
//       the process that token's lease lives and dies with, in the same atomic step, and
//       returns true. Throws std::invalid_argument, changing nothing, if `process` has
//       ended. Storage that frees the leases of dead processes (FileBackend) has it; for
//       any other backend a lease never ends with a process, and binding only checks
//       that the token holds the key (detail::bind_process).
//
// Optionally, storage that supplies the time (PostgresBackend: the database server's
// clock judges expiry for every host). All three or none:
//   template <class Clock> detail::Nanos storage_now(const Clock& clock) const;
//       The time transitions run at, in the storage's own time domain: every instant in a
//       record (acquired_at, expires_at, a waiter's deadline) is in that domain.
//   template <class Clock> detail::Nanos to_clock(const Clock& clock, detail::Nanos t) const;
//       A storage instant as an instant of `clock`, never later than the moment `clock`
//       shows when the storage's time reaches t: a holder's own view of its expiry
//       (Lease::expires_at, keep_alive, lost) is never later than the storage's.
//   template <class Clock> detail::Nanos from_clock(const Clock& clock, detail::Nanos t) const;
//       An instant of `clock` (a deadline) in the storage's domain.
// Without them, the storage's time is the manager's clock (InProcessBackend, FileBackend).
//
// A transition may be retried: update() and wait_update() may run fn more than once in one
// call (storage that writes optimistically runs it again on the fresh record when another
// writer got there first), and store only the last run. So fn sets what it captures
// afresh on each run rather than accumulating, and derives its queue ticket from the
// record (detail::queued_ticket), never from an earlier run.
//
// InProcessBackend keeps records in a sharded hash table and parks waiters on per-thread
// condition variables; FileBackend keeps them in a lock directory shared by processes.
// A database backend stores rows and wakes waiters through notifications.
#pragma once

#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>

#include <leaselock/detail/time.hpp>
#include <leaselock/holder_process.hpp>
#include <leaselock/token.hpp>

namespace leaselock::detail {

/// What one run of a waiting transition decided: a result, or "sleep until wake_at at
/// most, then run me again".
/// A backend's handle to a pinned record (see update()).
using BackendHandle = void*;

/// Calls backend.attach_clock(clock) where the backend has it.
template <class Backend, class Clock, class = void>
struct has_attach_clock : std::false_type {};
template <class Backend, class Clock>
struct has_attach_clock<
    Backend, Clock,
    std::void_t<decltype(std::declval<Backend&>().attach_clock(std::declval<const Clock&>()))>>
    : std::true_type {};

template <class Backend, class Clock>
void attach_clock(Backend& backend, const Clock& clock) {
  if constexpr (has_attach_clock<Backend, Clock>::value) backend.attach_clock(clock);
}

/// Calls backend.bind(key, token, process, holds) where the backend has it; elsewhere
/// only runs holds() (see the Backend description above).
template <class Backend, class Fn, class = void>
struct has_bind : std::false_type {};
template <class Backend, class Fn>
struct has_bind<Backend, Fn,
                std::void_t<decltype(std::declval<Backend&>().bind(
                    std::declval<std::string_view>(), std::declval<const Token&>(),
                    std::declval<const HolderProcess&>(), std::declval<Fn>()))>> : std::true_type {
};

template <class Backend, class Fn>
bool bind_process(Backend& backend, std::string_view key, const Token& token,
                  const HolderProcess& process, Fn&& holds) {
  if constexpr (has_bind<Backend, Fn>::value) {
    return backend.bind(key, token, process, std::forward<Fn>(holds));
  } else {
    return backend.update(key, std::forward<Fn>(holds));
  }
}

/// Storage time, through the backend if it supplies the time (see above), else `clock`.
template <class Backend, class Clock, class = void>
struct supplies_time : std::false_type {};
template <class Backend, class Clock>
struct supplies_time<
    Backend, Clock,
    std::void_t<decltype(std::declval<const Backend&>().storage_now(std::declval<const Clock&>()))>>
    : std::true_type {};

template <class Backend, class Clock>
Nanos storage_now(const Backend& backend, const Clock& clock) {
  if constexpr (supplies_time<Backend, Clock>::value) {
    return backend.storage_now(clock);
  } else {
    return now_nanos(clock);
  }
}

template <class Backend, class Clock>
Nanos to_clock(const Backend& backend, const Clock& clock, Nanos t) {
  if constexpr (supplies_time<Backend, Clock>::value) {
    return backend.to_clock(clock, t);
  } else {
    return t;
  }
}

template <class Backend, class Clock>
Nanos from_clock(const Backend& backend, const Clock& clock, Nanos t) {
  if constexpr (supplies_time<Backend, Clock>::value) {
    return backend.from_clock(clock, t);
  } else {
    return t;
  }
}

template <class Result>
struct Step {
  std::optional<Result> result;
  Nanos wake_at = kForever;

  static Step done(Result value) { return Step{std::optional<Result>(std::move(value)), 0}; }
  static Step sleep_until(Nanos when) { return Step{std::nullopt, when}; }
};

}  // namespace leaselock::detail
