// leaselock/backends/file.hpp — leases shared by the processes of one machine.
//
// FileBackend keeps each key's record in a file of a lock directory that every process
// opens. The file is mapped into each process (mmap, MAP_SHARED) and holds a robust,
// process-shared mutex, so an uncontended acquire or release makes no system call at
// all. Waiters sleep on a futex in the file and are woken by the change they wait for, at
// their deadline, or at a blocker's expiry; nobody polls for releases.
//
// Crash safety. A record is written into the inactive one of two slots, with a checksum,
// and made current by one aligned 8-byte store; a process killed at any instruction
// leaves the previous or the new record, both whole. The next process to take the mutex
// gets EOWNERDEAD, finishes the publication and goes on. The header's state is checked
// against itself and the slots (detail/file/slots.hpp), and the removed mark is believed
// only when the remover's earlier steps show. A record that is damaged anyway (truncated,
// flipped bits, another format or clock) is reported with a StorageError and left
// untouched — never taken for free; list() and remove_idle() skip it, reporting it to
// options.on_damaged_record. Files are allocated before they are mapped, so a full file
// system gives StorageError (ENOSPC), and pages are probed under a SIGBUS handler before
// use (detail/posix/sigbus_guard.hpp), so a file cut short by someone else does not kill
// a process that maps it.
//
// Dead holders. Each holder and waiter is stored with its process (pid, start time, boot
// and PID namespace: detail/posix/identity.hpp): the one that asked, or the one a lease
// was bound to (bind(), HolderProcess), or none. A request that is refused, a waiter
// about to sleep, and the removal of an idle record remove the holders and waiters whose
// process has certainly ended; a blocked waiter checks again every `liveness_check` while
// another process holds the key. With liveness_check = 0 nothing is reclaimed. Where
// death is not certain (another PID namespace or machine, a lease bound to none()) the
// lease runs out at its TTL, never sooner.
//
// Time namespaces. Each party is stored with its time namespace: a steady_clock record
// holding a party of another time namespace than the caller's is refused with a
// StorageError (its times are on another CLOCK_MONOTONIC), never read as expired.
//
// Stalls. A process stopped (SIGSTOP) or hung inside an operation keeps the record's
// mutex: a one-try acquisition waits for it at most 1 ms and finds the key busy; a waiting
// one waits until its deadline; status() and list() read the last published record;
// other operations throw StorageError after `stall_timeout`.
//
// Fences. Every grant's fence is above every fence this directory ever gave the key,
// for the life of the directory: a record's last fence is kept in it, and before a record
// file is removed its fence is raised into the directory-wide floor in ".leaselock",
// which every record's fences stay above.
//
// Files. Record names are hashes of keys (detail/file/codec.hpp), so any key string is
// safe. Files are created 0600 (0660 with group_shared), never through a symbolic link
// (O_NOFOLLOW on every open, relative to the directory's descriptor), and published
// whole (written under a temporary name, then linked). A record file is removed without
// the classic lock-file race: the remover holds the record's mutex, marks the record
// removed, then unlinks it; a process that still maps it sees the mark under the mutex
// and opens the key afresh. Idle records are removed when they leave the process's cache,
// when the backend is destroyed, and by remove_idle().
//
// Scope and limits: one machine (one kernel). Shared memory and futexes do not reach
// across hosts, so a directory on NFS must not be shared between machines. Do not delete
// files in the directory while processes use it (use remove_idle()). After fork(), the
// child makes its own FileBackend. A record holds at most about 1 MiB of holders and
// waiters (thousands). Each key in use is one memory mapping: a process may use about
// vm.max_map_count * 7/8 keys at once (detail/file/record_file.hpp), then StorageError.
// Read backends/backend.hpp for the interface it implements.
//
// @code
//   leaselock::file_lock_manager locks{leaselock::FileBackend{"/run/agents/locks"}};
//   auto lease = locks.acquire("/srv/shared/state.json", leaselock::Mode::exclusive,
//                              std::chrono::seconds(30));
// @endcode
//
// Parts (detail/file/, read in this order): record_layout.hpp (the bytes of a record
// file), codec.hpp (a record's name and encoding), slots.hpp (reading and publishing the
// two slots), record_file.hpp (creating, opening and checking a record file),
// directory.hpp (the lock directory), meta_file.hpp (its ".leaselock" file and fence
// floor), foreign.hpp (holders of other processes, and reclaiming the dead ones),
// waiting.hpp (futex word and parked threads), record_store.hpp (one operation on one
// mapped record: its mutex, load, transition, publish, wake; removing an idle record),
// mapping_cache.hpp and key_mappings.hpp (this process's mapped records, and finding a
// key's), directory_walk.hpp (list() and remove_idle() over every record file);
// detail/posix/robust_mutex.hpp, identity.hpp and sigbus_guard.hpp are the platform
// parts. This file is the backend's interface and how each call uses those parts: find
// the key's mapping (Ref), run the transition through the store, keep or let go of the
// mapping; a waiting request sleeps on the record's futex between attempts.
#pragma once

#include <leaselock/detail/platform.hpp>
#if !LEASELOCK_HAS_FILE_BACKEND
#error \
    "leaselock/backends/file.hpp: FileBackend needs Linux (futexes, robust process-shared mutexes, /proc); elsewhere use InProcessBackend, which <leaselock/leaselock.hpp> gives you"
#endif

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <leaselock/backends/backend.hpp>
#include <leaselock/backends/file_options.hpp>
#include <leaselock/detail/file/codec.hpp>
#include <leaselock/detail/file/directory_walk.hpp>
#include <leaselock/detail/file/key_mappings.hpp>
#include <leaselock/detail/file/record_store.hpp>
#include <leaselock/detail/file/waiting.hpp>
#include <leaselock/detail/parker.hpp>
#include <leaselock/detail/posix/identity.hpp>
#include <leaselock/detail/semantics.hpp>
#include <leaselock/detail/time.hpp>
#include <leaselock/holder_process.hpp>
#include <leaselock/limits.hpp>
#include <leaselock/lock_manager.hpp>
#include <leaselock/storage_error.hpp>
#include <leaselock/token.hpp>

namespace leaselock {

class FileBackend {
 public:
  /// Opens (creating it, 0700 or 02770, if missing — not its parents) the lock directory
  /// `dir`. Throws StorageError if it cannot be created or opened, is a symbolic link or
  /// not a directory, is writable by others (or by its group, unless group_shared), or
  /// is not writable.
  explicit FileBackend(std::filesystem::path dir, FileBackendOptions options = {})
      : state_(std::make_unique<State>(std::move(dir), options)) {}

  FileBackend(FileBackend&&) noexcept = default;
  FileBackend& operator=(FileBackend&&) noexcept = default;

  const std::filesystem::path& directory() const noexcept { return state_->store.directory.path(); }

  /// Records which clock this directory's records are written on (LockManager calls it).
  /// Throws StorageError if the directory is already used with another clock.
  template <class Clock>
  void attach_clock(const Clock& clock) {
    state_->store.attach(detail::clock_name<Clock>(),
                         [clock] { return detail::to_nanos(clock.now().time_since_epoch()); });
  }

  /// Removes every record file of the directory that nobody holds or waits for (after
  /// dropping expired leases and those of dead processes), and temporary files left by
  /// dead processes. Returns how many files it removed. A damaged record file is skipped
  /// and reported to options.on_damaged_record.
  std::size_t remove_idle() { return detail::file::remove_idle(state_->store); }

  // --- Backend (see backends/backend.hpp) ---------------------------------------------

  template <class Fn>
  auto update(std::string_view key, Fn&& fn) {
    using Result = decltype(fn(std::declval<detail::Record&>()));
    if constexpr (std::is_void_v<Result>) {
      update(key, [&](detail::Record& record) {
        fn(record);
        return true;
      });
    } else {
      for (;;) {
        Ref ref(state_->keys, key);
        Outcome outcome;
        auto result =
            state_->store.run(*ref, outcome, [&](detail::Record& record) { return fn(record); });
        if (outcome.removed) {
          ref.forget();
          continue;
        }
        return Result(std::move(*result));
      }
    }
  }

  // The one-try form (an acquisition without a wait, or adopt()): a record another
  // process keeps locked for over kOneTryPatience is taken as busy, and R{} returned.
  template <class Fn>
  auto update(std::string_view key, Fn&& fn, detail::BackendHandle* pin) {
    using Result = decltype(fn(std::declval<detail::Record&>()));
    try {
      for (;;) {
        Ref ref(state_->keys, key, /*create=*/true, kOneTryPatience);
        Mapped& mapped = *ref;
        Outcome outcome;
        auto result = state_->store.run(
            mapped, outcome,
            [&](detail::Record& record) {
              auto first = fn(record);
              // Refused: if a holder's process has died, its lease goes and we try again.
              if (!first && state_->store.reclaim(mapped, record)) return fn(record);
              return first;
            },
            /*store=*/true, kOneTryPatience);
        if (outcome.removed) {
          ref.forget();
          continue;
        }
        if (*result) *pin = ref.pin();
        return std::move(*result);
      }
    } catch (const Stalled&) {
      return Result{};
    }
  }

  /// Makes `process` the process that token's lease on `key` lives and dies with, if
  /// holds(record) says the token holds the key now (LockManager::bind). The binding is
  /// stored with the holder in the record file: none() as "no process" (never taken for
  /// dead), another process by its identity. Throws std::invalid_argument if that
  /// process has ended.
  template <class Fn>
  bool bind(std::string_view key, const Token& token, const HolderProcess& process, Fn&& holds) {
    const detail::posix::ProcessIdentity id = identity_for(process);
    for (;;) {
      Ref ref(state_->keys, key, /*create=*/false);
      if (!ref) return false;
      Mapped& mapped = *ref;
      Outcome outcome;
      auto bound = state_->store.run(mapped, outcome, [&](detail::Record& record) {
        if (!holds(record)) return false;
        mapped.foreign.bind(token, id);
        return true;
      });
      if (!outcome.removed) return *bound;
      ref.forget();
    }
  }

  template <class Fn>
  auto update(detail::BackendHandle handle, Fn&& fn, bool unpin) {
    Mapped& mapped = *static_cast<Mapped*>(handle);
    struct Unpin {
      detail::file::KeyMappings& keys;
      Mapped& mapped;
      bool active;
      ~Unpin() {
        if (active) keys.release_ref(mapped);
      }
    } unpinner{state_->keys, mapped, unpin};
    Outcome outcome;
    auto result =
        state_->store.run(mapped, outcome, [&](detail::Record& record) { return fn(record); });
    if (!outcome.removed) return std::move(*result);
    // The record was removed (it went idle, so the lease is gone): run fn on the key's
    // current record instead.
    return update(std::string_view(mapped.key), std::forward<Fn>(fn));
  }

  void unpin(detail::BackendHandle handle) noexcept {
    state_->keys.release_ref(*static_cast<Mapped*>(handle));
  }

  // A record another process keeps locked is waited for in slices of kWaitPatience until
  // the request's deadline has passed; then R{} (timed out). A request queued before
  // that stays in the record, and leaves the queue unserved at its deadline
  // (detail::drop_overdue_waiters).
  template <class Clock, class Fn>
  auto wait_update(std::string_view key, const Token& waiter, const Clock& clock,
                   detail::Nanos deadline, Fn&& fn, detail::BackendHandle* pin) {
    using Result = std::decay_t<decltype(*fn(std::declval<detail::Record&>()).result)>;
    for (;;) {
      try {
        return wait_update_once<Result>(key, waiter, clock, fn, pin);
      } catch (const Stalled&) {
        if (detail::now_nanos(clock) > deadline) return Result{};
      }
    }
  }

  // A record another process keeps locked (stalled inside an operation) is read from its
  // last published slot instead, without its mutex.
  template <class Fn>
  void read(std::string_view key, Fn&& fn) const {
    for (;;) {
      try {
        Ref ref(state_->keys, key, /*create=*/false, kOneTryPatience);
        if (!ref) {
          fn(static_cast<const detail::Record*>(nullptr));
          return;
        }
        Outcome outcome;
        state_->store.run(
            *ref, outcome,
            [&](detail::Record& record) {
              state_->store.show(*ref, record, [&](const detail::Record& shown) { fn(&shown); });
              return true;
            },
            /*store=*/false, kOneTryPatience);
        if (!outcome.removed) return;
        ref.forget();
      } catch (const Stalled&) {
        bool found = false;
        detail::file::read_snapshot(state_->store, detail::file::record_name(key),
                                    [&](std::string_view, const detail::Record& shown) {
                                      found = true;
                                      fn(&shown);
                                    });
        if (!found) fn(static_cast<const detail::Record*>(nullptr));
        return;
      }
    }
  }

  template <class Fn>
  void read_all(Fn&& fn) const {
    // A damaged record is reported and skipped: the others are still listed.
    detail::file::RecordStore& store = state_->store;
    store.directory.for_each_record_name([&](const std::string& name) {
      detail::file::skipping_damage(store, [&] { detail::file::read_snapshot(store, name, fn); });
    });
  }

 private:
  // The backend's parts, at a fixed address (mappings and leases point into them): the
  // record store, then the cache of mappings over it (destroyed first: it retires its
  // mappings through the store).
  struct State {
    detail::file::RecordStore store;
    detail::file::KeyMappings keys;
    State(std::filesystem::path dir, const FileBackendOptions& options)
        : store(std::move(dir), options), keys(store, options.cached_records) {}
  };

  using Mapped = detail::file::Mapped;
  using Outcome = detail::file::Outcome;
  using Ref = detail::file::Ref;
  using Stalled = detail::file::Stalled;
  static constexpr std::chrono::nanoseconds kOneTryPatience = detail::file::kOneTryPatience;
  static constexpr std::chrono::nanoseconds kWaitPatience = detail::file::kWaitPatience;

  // The identity stored for a holder bound to `process`.
  static detail::posix::ProcessIdentity identity_for(const HolderProcess& process) {
    switch (process.kind()) {
      case HolderProcess::Kind::this_process: return detail::posix::self_identity();
      case HolderProcess::Kind::none: return detail::posix::unbound_identity();
      case HolderProcess::Kind::other_process: break;
    }
    const auto id = detail::posix::identity_of_process(process.pid());
    if (!id) detail::throw_invalid("process " + std::to_string(process.pid()) + " has ended");
    return *id;
  }

  // wait_update() until a record's mutex stays locked past kWaitPatience (Stalled).
  template <class Result, class Clock, class Fn>
  Result wait_update_once(std::string_view key, const Token& waiter, const Clock& clock, Fn& fn,
                          detail::BackendHandle* pin) {
    (void)waiter;  // every sleeper on the key is woken; each re-checks its own request
    constexpr bool kParkHook = detail::has_park_hook<Clock>::value;
    const auto liveness = state_->store.options.liveness_check;
    detail::Parker& parker = detail::this_thread_parker();
    std::chrono::steady_clock::time_point next_check{};
    for (;;) {
      Ref ref(state_->keys, key, /*create=*/true, kWaitPatience);
      Mapped& mapped = *ref;
      for (;;) {
        enum class Next { done, again, sleep } next = Next::sleep;
        std::uint32_t seen = 0;
        bool foreign = false;
        Outcome outcome;
        auto step = state_->store.run(
            mapped, outcome,
            [&](detail::Record& record) {
              auto decided = fn(record);
              if (decided.result) {
                next = Next::done;
              } else if (record.idle()) {
                next = Next::again;  // fn left nothing to wait in: run it again
              } else {
                foreign = state_->store.has_foreign(mapped);
                if (foreign && liveness.count() > 0 &&
                    std::chrono::steady_clock::now() >= next_check) {
                  next_check = std::chrono::steady_clock::now() + liveness;
                  if (state_->store.reclaim(mapped, record)) next = Next::again;  // somebody left
                }
              }
              if (next == Next::sleep) {
                seen = detail::file::wake_count(*mapped.header);
                if constexpr (kParkHook) {
                  parker.reset();
                  detail::file::ParkedThreads::instance().add(mapped.device, mapped.inode, parker);
                }
              }
              return decided;
            },
            /*store=*/true, kWaitPatience);
        if (outcome.removed) break;
        if (next == Next::done) {
          Result result = std::move(*step->result);
          if (result) *pin = ref.pin();
          return result;
        }
        if (next == Next::again) continue;
        if constexpr (kParkHook) {
          struct Unpark {
            detail::Parker& parker;
            ~Unpark() { detail::file::ParkedThreads::instance().remove(parker); }
          } unpark{parker};
          detail::park_until(clock, parker, step->wake_at);
        } else {
          detail::Nanos timeout = detail::kForever;
          if (step->wake_at != detail::kForever) timeout = step->wake_at - detail::now_nanos(clock);
          if (foreign && liveness.count() > 0)
            timeout = std::min(timeout, detail::to_nanos(liveness));
          detail::file::sleep_for_change(*mapped.header, seen, timeout);
        }
      }
      ref.forget();
    }
  }

  std::unique_ptr<State> state_;
};

/// Processes of one machine, real time.
using file_lock_manager = LockManager<std::chrono::steady_clock, FileBackend>;

}  // namespace leaselock