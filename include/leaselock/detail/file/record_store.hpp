// leaselock/detail/file/record_store.hpp — one operation on one record file.
//
// A RecordStore is a FileBackend's lock directory with its fence floor and clock, and
// what every operation on a mapped record does: take the record's robust mutex (finishing
// what a holder that died left half-published), see whether the file was marked removed,
// load the current slot, run the transition, publish the result and wake the waiters
// (run()); reclaim the holders of dead processes where the options allow it; and remove
// an idle record's file without the lock-file race (remove_if_idle()). Finding a key's
// mapping is key_mappings.hpp; walking every record file is directory_walk.hpp.
#pragma once

#include <fcntl.h>
#include <pthread.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <leaselock/backends/file_options.hpp>
#include <leaselock/detail/file/codec.hpp>
#include <leaselock/detail/file/directory.hpp>
#include <leaselock/detail/file/foreign.hpp>
#include <leaselock/detail/file/mapping_cache.hpp>
#include <leaselock/detail/file/meta_file.hpp>
#include <leaselock/detail/file/record_file.hpp>
#include <leaselock/detail/file/record_layout.hpp>
#include <leaselock/detail/file/slots.hpp>
#include <leaselock/detail/file/waiting.hpp>
#include <leaselock/detail/posix/identity.hpp>
#include <leaselock/detail/posix/robust_mutex.hpp>
#include <leaselock/detail/posix/sigbus_guard.hpp>
#include <leaselock/detail/semantics.hpp>
#include <leaselock/detail/time.hpp>
#include <leaselock/storage_error.hpp>

namespace leaselock::detail::file {

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
inline constexpr std::chrono::nanoseconds kOneTryPatience = std::chrono::milliseconds(1);
inline constexpr std::chrono::nanoseconds kWaitPatience = std::chrono::milliseconds(10);

// What happened to a record operation besides its result.
struct Outcome {
  bool removed = false;  // the record file was removed: open the key afresh
};

// One process's view of one record file: its place in the cache, the file and its
// slots, and which of its holders and waiters are other processes'.
struct Mapped : CacheLinks<Mapped>, RecordFile {
  ForeignParties foreign;  // guarded by the record's mutex
};

/// A lock directory's records, and what one operation does to one of them. Its members
/// are set up once (attach() before any operation) and then only read.
class RecordStore {
 public:
  FileBackendOptions options;
  detail::file::LockDirectory directory;
  detail::file::MetaFile meta;
  std::string clock;
  std::function<detail::Nanos()> now;

  RecordStore(std::filesystem::path dir, FileBackendOptions opts)
      : options(opts), directory(std::move(dir), opts.group_shared), meta(directory, [this] {
          directory.for_each_record_name(
              [&](const std::string& name) { detail::file::reset_mutex(directory, name); });
        }) {
    detail::posix::install_sigbus_guard();
    directory.keep();
  }
  RecordStore(const RecordStore&) = delete;
  RecordStore& operator=(const RecordStore&) = delete;

  void attach(std::string_view name, std::function<detail::Nanos()> clock_now) {
    meta.attach_clock(name);
    clock.assign(name.data(), name.size());
    now = std::move(clock_now);
  }

  [[noreturn]] void corrupt(const Mapped& m, const std::string& why) const {
    detail::file::corrupt(directory, m, why);
  }

  std::chrono::nanoseconds stall_timeout() const noexcept { return options.stall_timeout; }

  // --- one record operation ---------------------------------------------------------

  // The record's robust mutex. A holder that died leaves EOWNERDEAD: its half-done
  // publication is finished (detail/file/slots.hpp), and the record is re-read. One
  // that keeps it locked past `patience` (stopped or hung) makes it throw Stalled.
  struct RecordLock {
    Mapped& m;
    bool owner_died = false;
    RecordLock(const RecordStore& state, Mapped& mapped, std::chrono::nanoseconds patience)
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
};

}  // namespace leaselock::detail::file
