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
// floor), mapping_cache.hpp (this process's mapped records), foreign.hpp (holders of
// other processes, and reclaiming the dead ones), waiting.hpp (futex word and parked
// threads); detail/posix/robust_mutex.hpp and identity.hpp are the platform parts. This
// file is the story of one operation: find the key's mapping (Ref), take its mutex, load
// the current record, run the transition, publish the result, wake the waiters.
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
#include <leaselock/detail/file/codec.hpp>
#include <leaselock/detail/file/directory.hpp>
#include <leaselock/detail/file/foreign.hpp>
#include <leaselock/detail/file/mapping_cache.hpp>
#include <leaselock/detail/file/meta_file.hpp>
#include <leaselock/detail/file/record_file.hpp>
#include <leaselock/detail/file/record_layout.hpp>
#include <leaselock/detail/file/slots.hpp>
#include <leaselock/detail/file/waiting.hpp>
#include <leaselock/detail/hash.hpp>
#include <leaselock/detail/parker.hpp>
#include <leaselock/detail/posix/robust_mutex.hpp>
#include <leaselock/detail/posix/sigbus_guard.hpp>
#include <leaselock/detail/semantics.hpp>
#include <leaselock/detail/time.hpp>
#include <leaselock/holder_process.hpp>
#include <leaselock/limits.hpp>
#include <leaselock/lock_manager.hpp>
#include <leaselock/storage_error.hpp>
#include <leaselock/token.hpp>

namespace leaselock {

struct FileBackendOptions {
  /// Create files 0660 and accept a group-writable directory (for agents of one group).
  /// Otherwise files are 0600 and the directory must be writable by its owner only.
  bool group_shared = false;
  /// How often a waiter blocked by another process's holder checks whether that process
  /// has died (zero: never; such leases then free themselves at their TTL only).
  std::chrono::milliseconds liveness_check{10};
  /// Record files a backend keeps mapped while no lease of it holds them (the mappings of
  /// held keys are always kept). Idle ones beyond a few per shard are removed.
  std::size_t cached_records = 4096;
  /// Called by list() and remove_idle() — which go on with the other records — with the
  /// error of each record file they skip because it is damaged or cannot be read:
  /// what() says which file and what is wrong with it, path() is the file. The file is
  /// left untouched, and a request for its key still throws that StorageError. Called on
  /// the thread that lists or removes; empty (the default): such files are skipped.
  std::function<void(const StorageError&)> on_damaged_record;
  /// How long an operation without a deadline of its own (release, renew, bind, adopt)
  /// waits for a record's mutex, which another process holds that long only when it is
  /// stopped (SIGSTOP) or hung inside an operation on the key; past it, StorageError.
  /// A one-try acquisition waits at most 1 ms and finds the key busy; a waiting one
  /// waits for the mutex until its deadline; status() and list() read the last
  /// published record instead; idle-record removal skips the key.
  std::chrono::milliseconds stall_timeout{2000};
};

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

  const std::filesystem::path& directory() const noexcept { return state_->directory.path(); }

  /// Records which clock this directory's records are written on (LockManager calls it).
  /// Throws StorageError if the directory is already used with another clock.
  template <class Clock>
  void attach_clock(const Clock& clock) {
    state_->attach(detail::clock_name<Clock>(),
                   [clock] { return detail::to_nanos(clock.now().time_since_epoch()); });
  }

  /// Removes every record file of the directory that nobody holds or waits for (after
  /// dropping expired leases and those of dead processes), and temporary files left by
  /// dead processes. Returns how many files it removed. A damaged record file is skipped
  /// and reported to options.on_damaged_record.
  std::size_t remove_idle() { return state_->remove_idle(); }

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
        Ref ref(*state_, key);
        Outcome outcome;
        auto result =
            state_->run(*ref, outcome, [&](detail::Record& record) { return fn(record); });
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
        Ref ref(*state_, key, /*create=*/true, kOneTryPatience);
        Mapped& mapped = *ref;
        Outcome outcome;
        auto result = state_->run(
            mapped, outcome,
            [&](detail::Record& record) {
              auto first = fn(record);
              // Refused: if a holder's process has died, its lease goes and we try again.
              if (!first && state_->reclaim(mapped, record)) return fn(record);
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
      Ref ref(*state_, key, /*create=*/false);
      if (!ref) return false;
      Mapped& mapped = *ref;
      Outcome outcome;
      auto bound = state_->run(mapped, outcome, [&](detail::Record& record) {
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
      State& state;
      Mapped& mapped;
      bool active;
      ~Unpin() {
        if (active) state.release_ref(mapped);
      }
    } unpinner{*state_, mapped, unpin};
    Outcome outcome;
    auto result = state_->run(mapped, outcome, [&](detail::Record& record) { return fn(record); });
    if (!outcome.removed) return std::move(*result);
    // The record was removed (it went idle, so the lease is gone): run fn on the key's
    // current record instead.
    return update(std::string_view(mapped.key), std::forward<Fn>(fn));
  }

  void unpin(detail::BackendHandle handle) noexcept {
    state_->release_ref(*static_cast<Mapped*>(handle));
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
        Ref ref(*state_, key, /*create=*/false, kOneTryPatience);
        if (!ref) {
          fn(static_cast<const detail::Record*>(nullptr));
          return;
        }
        Outcome outcome;
        state_->run(
            *ref, outcome,
            [&](detail::Record& record) {
              state_->show(*ref, record, [&](const detail::Record& shown) { fn(&shown); });
              return true;
            },
            /*store=*/false, kOneTryPatience);
        if (!outcome.removed) return;
        ref.forget();
      } catch (const Stalled&) {
        bool found = false;
        state_->read_snapshot(detail::file::record_name(key),
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
    state_->for_each_name([&](const std::string& name) {
      state_->skipping_damage([&] { state_->read_snapshot(name, fn); });
    });
  }

 private:
  // A record's mutex stayed locked by another thread or process past the patience of the
  // operation (its holder is stopped or hung inside an operation).
  struct Stalled : StorageError {
    using StorageError::StorageError;
  };
  // A record holds times of another time namespace's steady clock.
  struct TimeNamespaceRefused : StorageError {
    using StorageError::StorageError;
  };
  // How long a one-try operation waits for a record's mutex; a waiting one, per attempt.
  static constexpr std::chrono::nanoseconds kOneTryPatience = std::chrono::milliseconds(1);
  static constexpr std::chrono::nanoseconds kWaitPatience = std::chrono::milliseconds(10);

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
    const auto liveness = state_->options.liveness_check;
    detail::Parker& parker = detail::this_thread_parker();
    std::chrono::steady_clock::time_point next_check{};
    for (;;) {
      Ref ref(*state_, key, /*create=*/true, kWaitPatience);
      Mapped& mapped = *ref;
      for (;;) {
        enum class Next { done, again, sleep } next = Next::sleep;
        std::uint32_t seen = 0;
        bool foreign = false;
        Outcome outcome;
        auto step = state_->run(
            mapped, outcome,
            [&](detail::Record& record) {
              auto decided = fn(record);
              if (decided.result) {
                next = Next::done;
              } else if (record.idle()) {
                next = Next::again;  // fn left nothing to wait in: run it again
              } else {
                foreign = state_->has_foreign(mapped);
                if (foreign && liveness.count() > 0 &&
                    std::chrono::steady_clock::now() >= next_check) {
                  next_check = std::chrono::steady_clock::now() + liveness;
                  if (state_->reclaim(mapped, record)) next = Next::again;  // somebody left
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

  // What happened to a record operation besides its result.
  struct Outcome {
    bool removed = false;  // the record file was removed: open the key afresh
  };

  // One process's view of one record file: its place in the cache, the file and its
  // slots, and which of its holders and waiters are other processes'.
  struct Mapped : detail::file::CacheLinks<Mapped>, detail::file::RecordFile {
    detail::file::ForeignParties foreign;  // guarded by the record's mutex
  };

  struct State {
    FileBackendOptions options;
    detail::file::LockDirectory directory;
    detail::file::MetaFile meta;
    std::string clock;
    std::function<detail::Nanos()> now;
    detail::file::MappingCache<Mapped> cache;

    State(std::filesystem::path dir, FileBackendOptions opts)
        : options(opts),
          directory(std::move(dir), opts.group_shared),
          meta(directory,
               [this] {
                 directory.for_each_record_name(
                     [&](const std::string& name) { detail::file::reset_mutex(directory, name); });
               }),
          cache(opts.cached_records) {
      detail::posix::install_sigbus_guard();
      directory.keep();
    }
    State(const State&) = delete;
    State& operator=(const State&) = delete;

    ~State() {
      cache.drain([&](Mapped* m) {
        try {
          remove_if_idle(*m, kOneTryPatience);
        } catch (...) {
        }
        delete m;
      });
    }

    void attach(std::string_view name, std::function<detail::Nanos()> clock_now) {
      meta.attach_clock(name);
      clock.assign(name.data(), name.size());
      now = std::move(clock_now);
    }

    [[noreturn]] void corrupt(const Mapped& m, const std::string& why) const {
      detail::file::corrupt(directory, m, why);
    }

    std::chrono::nanoseconds stall_timeout() const noexcept { return options.stall_timeout; }

    // --- finding a key's record -------------------------------------------------------

    // Finds or maps key's record; creates it if missing and `create`. Takes a reference.
    Mapped* acquire_ref(std::string_view key, bool create, std::chrono::nanoseconds patience) {
      if (clock.empty())
        throw std::logic_error(
            "leaselock: FileBackend used before a LockManager attached its clock");
      const std::uint64_t hash = detail::hash_bytes(key, detail::process_hash_seed());
      if (Mapped* m = cache.find_ref(key, hash)) return m;
      const std::string name = detail::file::record_name(key);
      make_room();
      std::unique_ptr<Mapped> fresh;
      for (;;) {
        fresh = std::make_unique<Mapped>();
        if (detail::file::map_record(directory, name, &key, clock, *fresh)) {
          if (!take_if_live(*fresh, patience)) continue;
          break;
        }
        if (!create) return nullptr;
        fresh = std::make_unique<Mapped>();
        if (detail::file::create_record(directory, key, name, clock, meta.fence_floor(), *fresh))
          break;  // else another process was first: map theirs
      }
      fresh->hash = hash;
      Mapped* victim = nullptr;
      Mapped* m = cache.insert_ref(fresh, victim);
      retire(victim);
      return m;
    }

    // A freshly mapped record: true if it is in use; if it was marked removed, finishes
    // the removal (a remover that died half-way) and returns false.
    bool take_if_live(Mapped& m, std::chrono::nanoseconds patience) {
      bool live = true;
      bool owner_died = false;
      {
        RecordLock lock(*this, m, patience);
        owner_died = lock.owner_died;
        if (owner_died) detail::file::announce_change(*m.header);
        if (marked_removed(m)) {
          directory.unlink_if_same(m.name, m.device, m.inode);
          live = false;
        }
      }
      // A process died holding the mutex, perhaps before waking the waiters of its change.
      if (owner_died) detail::file::wake_sleepers(*m.header);
      return live;
    }

    void release_ref(Mapped& m) noexcept { retire(cache.release_ref(m)); }

    // Before mapping one more record file: under the process's limit of mappings, drops
    // unused cached ones to stay there; StorageError if every mapping is in use.
    void make_room() {
      const auto over = [] {
        return detail::file::mapped_records().load(std::memory_order_relaxed) >=
               detail::file::record_mapping_limit().load(std::memory_order_relaxed);
      };
      while (over()) {
        Mapped* unused = cache.pop_unused();
        if (!unused) {
          const std::size_t limit = detail::file::record_mapping_limit().load();
          detail::file::fail("too many keys in use: this process maps " +
                                 std::to_string(detail::file::mapped_records().load()) +
                                 " record files, its limit of " + std::to_string(limit) +
                                 " (one memory mapping per key held or waited for; the limit is "
                                 "vm.max_map_count less room for the rest of the process)",
                             directory.path(), ENOMEM);
        }
        retire(unused);
      }
    }

    // Drops the mapping of a record whose file was removed: later users open it afresh.
    void forget(Mapped& m) noexcept { cache.forget(m); }

    // A mapping out of the cache: remove its file if idle, then unmap it.
    void retire(Mapped* m) noexcept {
      if (!m) return;
      try {
        remove_if_idle(*m, kOneTryPatience);
      } catch (...) {
      }
      delete m;
    }

    // --- one record operation ---------------------------------------------------------

    // The record's robust mutex. A holder that died leaves EOWNERDEAD: its half-done
    // publication is finished (detail/file/slots.hpp), and the record is re-read. One
    // that keeps it locked past `patience` (stopped or hung) makes it throw Stalled.
    struct RecordLock {
      Mapped& m;
      bool owner_died = false;
      RecordLock(const State& state, Mapped& mapped, std::chrono::nanoseconds patience)
          : m(mapped) {
        // A file cut short by someone else is reported, not touched (SIGBUS).
        if (m.owns_mapping && !detail::posix::probe_pages(m.base, m.verified_size))
          detail::file::corrupt(
              state.directory, m,
              "cut short while in use: it had " + std::to_string(m.verified_size) + " bytes");
        const int error = detail::posix::lock_robust_mutex_for(m.header->mutex, patience);
        if (error == EOWNERDEAD) {
          m.decoded = false;
          owner_died = true;
          try {
            // What the dead holder left half-published is finished; a record it left
            // damaged is reported by the load that follows.
            // (Its file may have been unlinked since: its size is checked by mapping.)
            (void)detail::file::recover_after_crash(
                m, [&](std::size_t needed) { state.ensure_mapped(m, needed); });
          } catch (...) {
            pthread_mutex_unlock(&m.header->mutex);
            throw;
          }
        } else if (error == ETIMEDOUT) {
          const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(patience);
          throw Stalled("leaselock: record file '" + state.directory.file_path(m.name).string() +
                            "' stayed locked for " + std::to_string(waited.count()) +
                            " ms by a process stopped or hung inside an operation on its key",
                        state.directory.file_path(m.name), ETIMEDOUT);
        } else if (error) {
          detail::file::fail(
              "cannot lock record file '" + state.directory.file_path(m.name).string() + "'",
              state.directory.file_path(m.name), error);
        }
      }
      RecordLock(const RecordLock&) = delete;
      RecordLock& operator=(const RecordLock&) = delete;
      ~RecordLock() { pthread_mutex_unlock(&m.header->mutex); }
    };

    // Runs body(record) on m's current record under its mutex and, with `store`, writes the
    // result and wakes waiters if it changed; if body throws, what it changed is written
    // all the same (transitions keep the record consistent). Returns body's result, or
    // nothing when the record file was removed (outcome.removed).
    // `patience` (default: options.stall_timeout) bounds the wait for the mutex.
    template <class Body>
    auto run(Mapped& m, Outcome& outcome, Body&& body, bool store = true,
             std::optional<std::chrono::nanoseconds> patience = std::nullopt)
        -> std::optional<decltype(body(std::declval<detail::Record&>()))> {
      bool wake = false;
      std::optional<decltype(body(std::declval<detail::Record&>()))> result;
      {
        RecordLock lock(*this, m, patience ? *patience : stall_timeout());
        if (marked_removed(m)) {
          outcome.removed = true;
          return std::nullopt;
        }
        load(m);
        detail::Record& record = m.record;
        record.last_fence = std::max(record.last_fence, meta.fence_floor());
        const std::uint64_t version = record.version;
        const bool had_waiters = !record.waiters.empty();
        try {
          result.emplace(body(record));
        } catch (...) {
          if (store) save_or_forget(m);
          throw;
        }
        if (store) save_or_forget(m);
        wake = lock.owner_died ||
               (record.version != version && (had_waiters || !record.waiters.empty()));
        m.idle_hint = record.idle();
        if (wake) detail::file::announce_change(*m.header);
      }
      if (wake) {
        detail::file::wake_sleepers(*m.header);
        detail::file::ParkedThreads::instance().wake(m.device, m.inode);
      }
      return result;
    }

    // save(); if it fails (the record outgrew its file), nothing was stored, and the next
    // use decodes the file again.
    void save_or_forget(Mapped& m) {
      try {
        save(m);
      } catch (...) {
        m.decoded = false;
        throw;
      }
    }

    // Makes m.record the current slot's record (decoding only if another write came).
    // `unlinked`: m's file may no longer be the one its name leads to (it is marked
    // removed), so its size is checked through the mapping rather than by name.
    void load(Mapped& m, bool unlinked = false) {
      bool decoded_now = false;
      const auto ensure_size = [&](std::size_t needed) {
        if (unlinked)
          ensure_mapped(m, needed);
        else
          detail::file::verify_size(directory, m, needed);
      };
      if (const char* error = detail::file::load_current(m, ensure_size, decoded_now))
        corrupt(m, error);
      if (!decoded_now) return;
      check_time_namespaces(m);
      m.foreign.index(m.record, m.ids);
    }

    // Times written by processes of another time namespace are not on this process's
    // steady clock (their CLOCK_MONOTONIC has another offset): a record holding any is
    // refused, never read as expired (system_clock is the same in every namespace).
    void check_time_namespaces(Mapped& m) const {
      if (clock == "system_clock") return;
      for (const detail::posix::ProcessIdentity& id : m.ids) {
        if (detail::posix::same_time_namespace(id)) continue;
        m.decoded = false;  // read it again next time: the holder may have left
        throw TimeNamespaceRefused(
            "leaselock: record file '" + directory.file_path(m.name).string() +
                "' is held or waited for by a process of another time namespace (" +
                std::to_string(id.time_namespace) + ", this process's is " +
                std::to_string(detail::posix::self_identity().time_namespace) + "); its " + clock +
                " times cannot be compared with this process's: use the key from " +
                "one time namespace, or a directory used with system_clock",
            directory.file_path(m.name), EXDEV);
      }
    }

    // Checks through m's mapping (SIGBUS-safe) that its file is at least `needed` bytes.
    void ensure_mapped(Mapped& m, std::size_t needed) const {
      if (!m.owns_mapping || !detail::posix::probe_pages(m.base, needed))
        corrupt(m, "truncated: its slots need " + std::to_string(needed) + " bytes");
      m.verified_size = needed;
    }

    // Under m's lock: true if its file was marked removed (open the key afresh). A mark is
    // believed only when it is whole and the remover's two steps before it can be seen —
    // the record stored idle, and the directory's fence floor raised to its last fence —
    // so no damaged header can make a held key free or a fence come back.
    bool marked_removed(Mapped& m) {
      const std::uint32_t mark = __atomic_load_n(&m.header->removed, __ATOMIC_ACQUIRE);
      if (mark == 0) return false;
      if (mark != detail::file::kRemovedMark) corrupt(m, "bad removed mark");
      load(m, /*unlinked=*/true);
      if (!m.record.idle() || m.record.last_fence > meta.fence_floor())
        corrupt(m, "marked removed while it holds leases or fences above the directory's floor");
      return true;
    }

    // Writes m.record into the free slot, then makes that slot current.
    void save(Mapped& m) {
      const auto identity_of = [&](std::size_t, const Token& token) {
        return m.foreign.identity_of(token);
      };
      const auto grow = [&](std::size_t size) { detail::file::grow(directory, m, size); };
      if (!detail::file::publish(m, identity_of, grow)) {
        const detail::Record& record = m.record;
        detail::file::fail("record file '" + directory.file_path(m.name).string() + "' is full: " +
                               std::to_string(record.holders.size()) + " holders and " +
                               std::to_string(record.waiters.size()) + " waiters need " +
                               std::to_string(detail::file::slot_bytes(record)) + " bytes",
                           directory.file_path(m.name), ENOSPC);
      }
      m.foreign.drop_departed(m.record);
    }

    // --- dead processes ---------------------------------------------------------------

    bool has_foreign(const Mapped& m) const noexcept { return !m.foreign.empty(); }

    // Removes from `record` (m's, under its lock) the holders and waiters whose process
    // has certainly ended, where the options allow reclaim (liveness_check > 0): the one
    // place where a lease may end before its TTL without its token. Returns true if it
    // removed any.
    bool reclaim(const Mapped& m, detail::Record& record) {
      return options.liveness_check.count() > 0 && m.foreign.reclaim(record);
    }

    // What status() and list() see: the record without the holders and waiters whose
    // process has certainly ended (the next request on the key reclaims them).
    template <class Fn>
    void show(const Mapped& m, const detail::Record& record, Fn&& fn) {
      if (!has_foreign(m) || options.liveness_check.count() == 0) return fn(record);
      detail::Record live = record;
      reclaim(m, live);
      fn(static_cast<const detail::Record&>(live));
    }

    // --- removing records ---------------------------------------------------------------

    // Removes m's file if nobody holds or waits (expired leases and those of dead
    // processes dropped first). Returns true if it removed it. A record another process
    // keeps locked past `patience` is left alone (Stalled).
    bool remove_if_idle(Mapped& m, std::chrono::nanoseconds patience) {
      RecordLock lock(*this, m, patience);
      if (marked_removed(m)) return false;
      load(m);
      detail::Record& record = m.record;
      bool changed = reclaim(m, record);
      if (now && !record.holders.empty())
        changed |= detail::purge_expired(record, now(), nullptr) > 0;
      if (changed) save(m);  // a record marked removed is stored idle
      if (!record.idle()) {
        if (changed) {
          detail::file::announce_change(*m.header);
          detail::file::wake_sleepers(*m.header);
        }
        return false;
      }
      // The floor first: whoever sees the mark sees a floor above the record's fences.
      meta.raise_fence_floor(std::max(record.last_fence, meta.fence_floor()));
      __atomic_store_n(&m.header->removed, detail::file::kRemovedMark, __ATOMIC_RELEASE);
      directory.unlink_if_same(m.name, m.device, m.inode);
      return true;
    }

    std::size_t remove_idle() {
      std::size_t removed = 0;
      directory.for_each_record_name([&](const std::string& name) {
        skipping_damage([&] {
          std::unique_ptr<Mapped> m = map_existing(name);
          if (!m) return;
          try {
            removed += remove_if_idle(*m, kOneTryPatience);
          } catch (const Stalled&) {               // in use by a stalled process: not idle
          } catch (const TimeNamespaceRefused&) {  // held from another time namespace
          }
        });
      });
      return removed + directory.remove_stale_temporaries();
    }

    // Runs fn(), one record's part of a walk over the directory; a StorageError it throws
    // is reported to options.on_damaged_record instead, and the walk goes on.
    template <class Fn>
    void skipping_damage(Fn&& fn) {
      try {
        fn();
      } catch (const StorageError& error) {
        if (options.on_damaged_record) options.on_damaged_record(error);
      }
    }

    // --- every record -----------------------------------------------------------------

    // Maps record file `name` on its own (not cached), reading its key from it; nullptr if
    // the file is gone, also if it went while being read.
    std::unique_ptr<Mapped> map_existing(const std::string& name) {
      auto m = std::make_unique<Mapped>();
      try {
        if (!detail::file::map_record(directory, name, nullptr, clock, *m)) return nullptr;
        return m;
      } catch (const StorageError&) {
        if (!directory.exists(name)) return nullptr;  // removed while we looked
        throw;
      }
    }

    // Reads record file `name` without its mutex (for list()): one pread of the file,
    // whose current slot is whole when its checksum matches (a writer never writes the
    // current slot). A slot being rewritten as it is read is read again; a record that
    // stays damaged is read under its mutex, which reports it. Removed files are skipped.
    template <class Fn>
    void read_snapshot(const std::string& name, Fn&& fn) {
      thread_local std::vector<unsigned char> bytes;
      for (int attempt = 0; attempt < 4; ++attempt) {
        struct stat st {};
        const int fd = directory.open_file(name, O_RDONLY, st);
        if (fd < 0) return;
        const auto size = std::min(static_cast<std::size_t>(st.st_size), detail::file::kMapSize);
        bytes.resize(std::max(size, sizeof(detail::file::RecordHeader)));
        std::size_t done = 0;
        while (done < size) {
          const ssize_t got =
              ::pread(fd, bytes.data() + done, size - done, static_cast<off_t>(done));
          if (got < 0 && errno == EINTR) continue;
          if (got <= 0) break;
          done += static_cast<std::size_t>(got);
        }
        ::close(fd);
        Mapped copy;
        copy.owns_mapping = false;
        copy.base = bytes.data();
        copy.header = reinterpret_cast<detail::file::RecordHeader*>(bytes.data());
        copy.name = name;
        copy.verified_size = done;
        copy.device = st.st_dev;
        copy.inode = st.st_ino;
        try {
          detail::file::check_header(directory, copy, nullptr, clock);
          if (marked_removed(copy)) return;
          load(copy);
        } catch (const StorageError&) {
          continue;  // torn or damaged: read again, then under the mutex
        }
        show(copy, copy.record, [&](const detail::Record& shown) { fn(copy.key, shown); });
        return;
      }
      const std::unique_ptr<Mapped> m = map_existing(name);
      if (!m) return;
      Outcome outcome;
      run(
          *m, outcome,
          [&](detail::Record& record) {
            show(*m, record, [&](const detail::Record& shown) { fn(m->key, shown); });
            return true;
          },
          /*store=*/false);
    }

    template <class Fn>
    void for_each_name(Fn&& fn) const {
      directory.for_each_record_name(fn);
    }
  };

  // A reference to a key's mapping for the length of one operation (or a pin).
  class Ref {
   public:
    Ref(State& state, std::string_view key, bool create = true,
        std::optional<std::chrono::nanoseconds> patience = std::nullopt)
        : state_(state),
          mapped_(state.acquire_ref(key, create, patience ? *patience : state.stall_timeout())) {}
    Ref(const Ref&) = delete;
    Ref& operator=(const Ref&) = delete;
    ~Ref() {
      if (mapped_) state_.release_ref(*mapped_);
    }
    explicit operator bool() const noexcept { return mapped_ != nullptr; }
    Mapped& operator*() const noexcept { return *mapped_; }
    // Keeps the reference for a lease: the handle stays valid until unpin().
    detail::BackendHandle pin() noexcept { return std::exchange(mapped_, nullptr); }
    // The record was removed: drop the mapping, so the next attempt opens the key afresh.
    void forget() noexcept {
      state_.forget(*mapped_);
      state_.release_ref(*std::exchange(mapped_, nullptr));
    }

   private:
    State& state_;
    Mapped* mapped_;
  };

  std::unique_ptr<State> state_;
};

/// Processes of one machine, real time.
using file_lock_manager = LockManager<std::chrono::steady_clock, FileBackend>;

}  // namespace leaselock
