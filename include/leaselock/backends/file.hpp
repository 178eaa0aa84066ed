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
// gets EOWNERDEAD, finds a whole record and goes on. A record that is damaged anyway
// (truncated, flipped bits, another format or clock) is reported with a StorageError and
// left untouched — never taken for free.
//
// Dead holders. Each holder and waiter is stored with its process (pid, start time, boot
// and PID namespace: detail/posix/identity.hpp). A request that is refused, or a waiter
// about to sleep, removes the holders and waiters whose process has certainly ended; a
// blocked waiter checks again every `liveness_check` while another process holds the
// key. Where death is not certain (another PID namespace or machine) the lease runs out
// at its TTL, never sooner.
//
// Fences. Every grant's fence is above every fence this directory ever gave the key,
// for the life of the directory: a record's last fence is kept in it, and before a record
// file is removed its fence is raised into the directory-wide floor in ".leaselock",
// which every record's fences stay above.
//
// Files. Record names are hashes of keys (detail/file_format.hpp), so any key string is
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
// waiters (thousands). Read backends/backend.hpp for the interface it implements.
//
// @code
//   leaselock::file_lock_manager locks{leaselock::FileBackend{"/run/agents/locks"}};
//   auto lease = locks.acquire("/srv/shared/state.json", leaselock::Mode::exclusive,
//                              std::chrono::seconds(30));
// @endcode
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <leaselock/backends/backend.hpp>
#include <leaselock/detail/file_format.hpp>
#include <leaselock/detail/hash.hpp>
#include <leaselock/detail/intrusive_table.hpp>
#include <leaselock/detail/parker.hpp>
#include <leaselock/detail/posix/futex.hpp>
#include <leaselock/detail/posix/identity.hpp>
#include <leaselock/detail/posix/random.hpp>
#include <leaselock/detail/semantics.hpp>
#include <leaselock/detail/time.hpp>
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
};

namespace detail::file {

inline constexpr char kRecordMagic[8] = {'l', 'e', 'a', 's', 'e', 'r', 'e', 'c'};
inline constexpr char kMetaMagic[8] = {'l', 'e', 'a', 's', 'e', 'd', 'i', 'r'};
inline constexpr std::uint32_t kFormat = 1;
inline constexpr std::size_t kClockNameSize = 32;
/// Address space reserved for one record file; the file grows inside it.
inline constexpr std::size_t kMapSize = std::size_t{1} << 20;
inline constexpr std::size_t kInitialSlot = 512;
inline constexpr const char* kMetaName = ".leaselock";

/// The first bytes of a record file. The key follows at kKeyOffset, the two slots at
/// slot_base and slot_base + capacity.
struct RecordHeader {
  char magic[8];
  std::uint32_t format;
  std::uint32_t header_size;
  std::uint32_t key_size;
  std::uint32_t slot_base;
  char clock[kClockNameSize];
  std::uint64_t header_check;  // of the bytes before it, and the key
  // What every operation touches shares one cache line.
  alignas(64) pthread_mutex_t mutex;
  std::uint64_t layout;      // slot capacity << 1 | current slot
  std::uint32_t wake;        // futex word: bumped when waiters should look again
  std::uint32_t removed;     // the file was (or is being) unlinked: open the key afresh
  std::uint64_t generation;  // of the current slot (its own header has it too)
};
static_assert(offsetof(RecordHeader, removed) + sizeof(std::uint32_t) <= 128,
              "the mutex, layout and wake word share one cache line");
inline constexpr std::size_t kKeyOffset = (sizeof(RecordHeader) + 63) & ~std::size_t{63};

struct SlotHeader {
  std::uint64_t generation;
  std::uint64_t size;
  std::uint64_t check;
};

/// The directory's shared file.
struct MetaHeader {
  char magic[8];
  std::uint32_t format;
  std::uint32_t size;
  char clock[kClockNameSize];
  std::uint64_t boot;  // the boot whose processes use the records' mutexes
  alignas(64) std::uint64_t fence_floor;
};
inline constexpr std::size_t kMetaSize = 4096;

inline std::size_t align64(std::size_t n) noexcept { return (n + 63) & ~std::size_t{63}; }

inline std::uint64_t header_check(const RecordHeader& header, const char* key) noexcept {
  const std::uint64_t head = hash_bytes(std::string_view(reinterpret_cast<const char*>(&header),
                                                         offsetof(RecordHeader, header_check)),
                                        0x5be0cd19137e2179ull);
  return hash_bytes(std::string_view(key, header.key_size), head);
}

inline std::string_view stored_name(const char (&field)[kClockNameSize]) noexcept {
  std::size_t n = 0;
  while (n < kClockNameSize && field[n]) ++n;
  return std::string_view(field, n);
}

inline void store_name(char (&field)[kClockNameSize], std::string_view name) noexcept {
  std::memset(field, 0, kClockNameSize);
  std::memcpy(field, name.data(), std::min(name.size(), kClockNameSize - 1));
}

}  // namespace detail::file

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

  const std::filesystem::path& directory() const noexcept { return state_->dir; }

  /// Records which clock this directory's records are written on (LockManager calls it).
  /// Throws StorageError if the directory is already used with another clock.
  template <class Clock>
  void attach_clock(const Clock& clock) {
    state_->attach(detail::clock_name<Clock>(),
                   [clock] { return detail::to_nanos(clock.now().time_since_epoch()); });
  }

  /// Removes every record file of the directory that nobody holds or waits for (after
  /// dropping expired leases and those of dead processes), and temporary files left by
  /// dead processes. Returns how many files it removed.
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

  template <class Fn>
  auto update(std::string_view key, Fn&& fn, detail::BackendHandle* pin) {
    for (;;) {
      Ref ref(*state_, key);
      Mapped& mapped = *ref;
      Outcome outcome;
      auto result = state_->run(mapped, outcome, [&](detail::Record& record) {
        auto first = fn(record);
        // Refused: if a holder's process has died, its lease goes and we try again.
        if (!first && state_->options.liveness_check.count() > 0 && state_->reclaim(mapped, record))
          return fn(record);
        return first;
      });
      if (outcome.removed) {
        ref.forget();
        continue;
      }
      if (*result) *pin = ref.pin();
      return std::move(*result);
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

  template <class Clock, class Fn>
  auto wait_update(std::string_view key, const Token& waiter, const Clock& clock, Fn&& fn,
                   detail::BackendHandle* pin) {
    (void)waiter;  // every sleeper on the key is woken; each re-checks its own request
    using Result = std::decay_t<decltype(*fn(std::declval<detail::Record&>()).result)>;
    constexpr bool kParkHook = detail::has_park_hook<Clock>::value;
    const auto liveness = state_->options.liveness_check;
    detail::Parker& parker = detail::this_thread_parker();
    std::chrono::steady_clock::time_point next_check{};
    for (;;) {
      Ref ref(*state_, key);
      Mapped& mapped = *ref;
      for (;;) {
        enum class Next { done, again, sleep } next = Next::sleep;
        std::uint32_t seen = 0;
        bool foreign = false;
        Outcome outcome;
        auto step = state_->run(mapped, outcome, [&](detail::Record& record) {
          auto decided = fn(record);
          if (decided.result) {
            next = Next::done;
          } else if (record.idle()) {
            next = Next::again;  // fn left nothing to wait in: run it again
          } else {
            foreign = state_->has_foreign(mapped);
            if (foreign && liveness.count() > 0 && std::chrono::steady_clock::now() >= next_check) {
              next_check = std::chrono::steady_clock::now() + liveness;
              if (state_->reclaim(mapped, record)) next = Next::again;  // somebody left
            }
          }
          if (next == Next::sleep) {
            seen = __atomic_load_n(&mapped.header->wake, __ATOMIC_RELAXED);
            if constexpr (kParkHook) {
              parker.reset();
              Parked::instance().add(mapped, parker);
            }
          }
          return decided;
        });
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
            ~Unpark() { Parked::instance().remove(parker); }
          } unpark{parker};
          detail::park_until(clock, parker, step->wake_at);
        } else {
          detail::Nanos timeout = detail::kForever;
          if (step->wake_at != detail::kForever) timeout = step->wake_at - detail::now_nanos(clock);
          if (foreign && liveness.count() > 0)
            timeout = std::min(timeout, detail::to_nanos(liveness));
          detail::posix::futex_wait(&mapped.header->wake, seen, timeout);
        }
      }
      ref.forget();
    }
  }

  template <class Fn>
  void read(std::string_view key, Fn&& fn) const {
    for (;;) {
      Ref ref(*state_, key, /*create=*/false);
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
          /*store=*/false);
      if (!outcome.removed) return;
      ref.forget();
    }
  }

  template <class Fn>
  void read_all(Fn&& fn) const {
    state_->for_each_name([&](const std::string& name) { state_->read_snapshot(name, fn); });
  }

 private:
  struct Mapped;
  struct State;

  // What happened to a record operation besides its result.
  struct Outcome {
    bool removed = false;  // the record file was removed: open the key afresh
  };

  // The mappings nobody uses now, most recent first: records that were idle when last
  // let go (kIdle), and records others hold (kBusy).
  enum LruList { kNoList = 0, kIdle = 1, kBusy = 2 };

  // One process's view of one record file.
  struct Mapped {
    // Looked up by (hash, key) in its shard's chained table; the fields a lookup reads
    // come first.
    std::uint64_t hash = 0;
    Mapped* next = nullptr;
    std::string key;
    bool in_table = false;
    std::string name;
    unsigned char* base = nullptr;
    detail::file::RecordHeader* header = nullptr;
    std::size_t slot_base = 0;
    std::size_t verified_size = 0;  // the file is known to be at least this long
    dev_t device = 0;
    ino_t inode = 0;

    // Process-local, guarded by the owning shard's mutex.
    std::uint32_t refs = 0;  // users now, and leases pinning it
    Mapped* lru_prev = nullptr;
    Mapped* lru_next = nullptr;
    LruList lru = kNoList;

    // Guarded by the record's own (shared) mutex: the decoded record, valid while the
    // current slot's generation is `generation`.
    bool decoded = false;
    bool idle_hint = true;
    std::uint64_t generation = 0;
    detail::Record record;
    std::vector<detail::posix::ProcessIdentity> ids;  // holders', then waiters'
    // (token, process) of the holders and waiters of other processes, sorted by token.
    std::vector<std::pair<Token, detail::posix::ProcessIdentity>> foreign;

    Mapped() = default;
    Mapped(const Mapped&) = delete;
    Mapped& operator=(const Mapped&) = delete;
    ~Mapped() {
      if (base && owns_mapping) ::munmap(base, detail::file::kMapSize);
    }
    bool owns_mapping = true;  // false: base is a copy of the file read with pread
  };

  // Threads of this process parked on a clock with a park hook (ManualClock), by record
  // file: such clocks are process-local, so their waiters are woken by this process's
  // changes to the file, whichever backend instance makes them.
  struct Parked {
    std::mutex mutex;
    std::vector<std::pair<std::pair<dev_t, ino_t>, detail::Parker*>> parkers;
    std::atomic<std::size_t> count{0};

    static Parked& instance() {
      static Parked parked;
      return parked;
    }
    void add(const Mapped& m, detail::Parker& parker) {
      std::lock_guard<std::mutex> lock(mutex);
      parkers.emplace_back(std::make_pair(m.device, m.inode), &parker);
      count.fetch_add(1, std::memory_order_relaxed);
    }
    void remove(detail::Parker& parker) noexcept {
      std::lock_guard<std::mutex> lock(mutex);
      const auto it = std::find_if(parkers.begin(), parkers.end(),
                                   [&](const auto& entry) { return entry.second == &parker; });
      if (it == parkers.end()) return;
      parkers.erase(it);
      count.fetch_sub(1, std::memory_order_relaxed);
    }
    void wake(const Mapped& m) noexcept {
      if (count.load(std::memory_order_relaxed) == 0) return;
      std::lock_guard<std::mutex> lock(mutex);
      for (const auto& entry : parkers)
        if (entry.first.first == m.device && entry.first.second == m.inode) entry.second->unpark();
    }
  };

  struct alignas(64) Shard {
    std::mutex mutex;
    detail::IntrusiveTable<Mapped> table;
    struct List {
      Mapped* head = nullptr;
      Mapped* tail = nullptr;
      std::size_t size = 0;
    } lists[3];

    Mapped* find(std::string_view key, std::uint64_t hash) const noexcept {
      return table.find(hash, [&](const Mapped& m) { return m.key == key; });
    }
    void insert(Mapped* m) noexcept {
      table.insert(m);
      m->in_table = true;
    }
    void erase(Mapped* m) noexcept {
      table.erase(m);
      m->in_table = false;
    }
    void unlink(Mapped& m) noexcept {
      List& list = lists[m.lru];
      (m.lru_prev ? m.lru_prev->lru_next : list.head) = m.lru_next;
      (m.lru_next ? m.lru_next->lru_prev : list.tail) = m.lru_prev;
      m.lru_prev = m.lru_next = nullptr;
      m.lru = kNoList;
      --list.size;
    }
    // Puts m first in `which`; returns the least recently used mapping of that list, out
    // of the shard, if the list is over `limit`.
    Mapped* push_front(Mapped& m, LruList which, std::size_t limit) noexcept {
      List& list = lists[which];
      m.lru = which;
      m.lru_prev = nullptr;
      m.lru_next = list.head;
      (list.head ? list.head->lru_prev : list.tail) = &m;
      list.head = &m;
      return ++list.size > limit ? pop_back(which) : nullptr;
    }
    Mapped* pop_back(LruList which) noexcept {
      Mapped* m = lists[which].tail;
      if (!m) return nullptr;
      unlink(*m);
      erase(m);
      return m;
    }
  };

  static constexpr std::size_t kShards = 64;
  static constexpr std::size_t kIdlePerShard = 4;

  struct State {
    std::filesystem::path dir;
    FileBackendOptions options;
    int dir_fd = -1;
    int meta_fd = -1;
    detail::file::MetaHeader* meta = nullptr;
    mode_t file_mode = 0600;
    std::string clock;
    std::function<detail::Nanos()> now;
    std::size_t busy_per_shard = 64;
    Shard shards[kShards];

    State(std::filesystem::path directory, FileBackendOptions opts)
        : dir(std::move(directory)), options(opts) {
      file_mode = options.group_shared ? 0660 : 0600;
      busy_per_shard = std::max<std::size_t>(1, options.cached_records / kShards);
      try {
        open_directory();
        open_meta();
      } catch (...) {
        close_all();
        throw;
      }
    }
    State(const State&) = delete;
    State& operator=(const State&) = delete;

    ~State() {
      for (Shard& shard : shards) {
        shard.table.for_each([&](Mapped* m) {
          try {
            remove_if_idle(*m);
          } catch (...) {
          }
          delete m;
        });
        shard.table.clear();
      }
      close_all();
    }

    void close_all() noexcept {
      if (meta) ::munmap(meta, detail::file::kMetaSize);
      meta = nullptr;
      if (meta_fd >= 0) ::close(meta_fd);
      meta_fd = -1;
      if (dir_fd >= 0) ::close(dir_fd);
      dir_fd = -1;
    }

    // --- errors -----------------------------------------------------------------------

    std::filesystem::path file_path(std::string_view name) const { return dir / std::string(name); }

    [[noreturn]] void fail(const std::string& what, const std::filesystem::path& path,
                           int error = 0) const {
      std::string message = "leaselock: " + what;
      if (error) message += ": " + std::string(std::strerror(error));
      throw StorageError(message, path, error);
    }

    // A refusal on policy: the message says why; `error` only sets code().
    [[noreturn]] void refuse(const std::string& what, const std::filesystem::path& path,
                             int error) const {
      throw StorageError("leaselock: " + what, path, error);
    }

    [[noreturn]] void corrupt(const Mapped& m, const std::string& why) const {
      fail("record file '" + file_path(m.name).string() + "' is corrupt (" + why +
               "); it was left untouched — move it away to free the key",
           file_path(m.name));
    }

    // --- the directory ----------------------------------------------------------------

    void open_directory() {
      if (dir.empty()) fail("the lock directory path is empty", dir, EINVAL);
      const mode_t dir_mode = options.group_shared ? 02770 : 0700;
      const bool created = ::mkdir(dir.c_str(), dir_mode) == 0;
      if (!created && errno != EEXIST)
        fail("cannot create lock directory '" + dir.string() + "'", dir, errno);
      dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (dir_fd < 0) {
        const int error = errno;
        struct stat st {};
        if (::lstat(dir.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
          refuse("lock directory '" + dir.string() + "' is a symbolic link; refusing to follow it",
                 dir, ELOOP);
        fail("cannot open lock directory '" + dir.string() + "'", dir, error);
      }
      // mkdir's mode passes through the umask and drops the set-group-id bit.
      if (created && ::fchmod(dir_fd, dir_mode) != 0)
        fail("cannot set the mode of lock directory '" + dir.string() + "'", dir, errno);
      struct stat st {};
      if (::fstat(dir_fd, &st) != 0) fail("cannot stat '" + dir.string() + "'", dir, errno);
      if (st.st_mode & S_IWOTH)
        refuse("lock directory '" + dir.string() +
                   "' is writable by others; use a directory only its owner (or group) can write",
               dir, EPERM);
      if (!options.group_shared && (st.st_mode & S_IWGRP))
        refuse("lock directory '" + dir.string() +
                   "' is writable by its group; pass group_shared = true to share it",
               dir, EPERM);
      if (!options.group_shared && st.st_uid != ::geteuid())
        refuse("lock directory '" + dir.string() + "' belongs to another user (uid " +
                   std::to_string(st.st_uid) + ")",
               dir, EPERM);
    }

    // Opens `name` in the directory without following a symbolic link, and checks it is
    // a regular file nobody else may write. -1 with errno ENOENT if it does not exist.
    int open_file(const std::string& name, int flags, struct stat& st) const {
      const int fd = ::openat(dir_fd, name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, file_mode);
      if (fd < 0) {
        if (errno == ENOENT) return -1;
        if (errno == ELOOP)
          refuse("'" + file_path(name).string() + "' is a symbolic link; refusing to follow it",
                 file_path(name), ELOOP);
        fail("cannot open '" + file_path(name).string() + "'", file_path(name), errno);
      }
      const auto close_and_fail = [&](const std::string& what, int error) {
        ::close(fd);
        if (error == EPERM || error == EINVAL) refuse(what, file_path(name), error);
        fail(what, file_path(name), error);  // the system refused
      };
      if (::fstat(fd, &st) != 0)
        close_and_fail("cannot stat '" + file_path(name).string() + "'", errno);
      if (!S_ISREG(st.st_mode))
        close_and_fail("'" + file_path(name).string() + "' is not a regular file", EINVAL);
      if (st.st_mode & (S_IWOTH | S_IROTH))
        close_and_fail("'" + file_path(name).string() + "' is accessible by others; refusing it",
                       EPERM);
      if (!options.group_shared && st.st_uid != ::geteuid())
        close_and_fail("'" + file_path(name).string() + "' belongs to another user", EPERM);
      return fd;
    }

    void open_meta() {
      using detail::file::MetaHeader;
      struct stat st {};
      meta_fd = open_file(detail::file::kMetaName, O_RDWR | O_CREAT, st);
      if (meta_fd < 0)
        fail("cannot create '" + file_path(detail::file::kMetaName).string() + "'", dir, errno);
      if (::fchmod(meta_fd, file_mode) != 0 && errno != EPERM)
        fail("cannot set the mode of '" + file_path(detail::file::kMetaName).string() + "'",
             file_path(detail::file::kMetaName), errno);
      MetaLock lock(*this);
      if (::fstat(meta_fd, &st) != 0)
        fail("cannot stat '" + file_path(detail::file::kMetaName).string() + "'", dir, errno);
      const bool fresh = st.st_size == 0;
      if (fresh && ::ftruncate(meta_fd, static_cast<off_t>(detail::file::kMetaSize)) != 0)
        fail("cannot size '" + file_path(detail::file::kMetaName).string() + "'", dir, errno);
      if (!fresh && static_cast<std::size_t>(st.st_size) < detail::file::kMetaSize)
        fail("'" + file_path(detail::file::kMetaName).string() + "' is truncated", dir);
      void* memory =
          ::mmap(nullptr, detail::file::kMetaSize, PROT_READ | PROT_WRITE, MAP_SHARED, meta_fd, 0);
      if (memory == MAP_FAILED)
        fail("cannot map '" + file_path(detail::file::kMetaName).string() + "'", dir, errno);
      meta = static_cast<MetaHeader*>(memory);
      // A creator may have died after sizing the file and before writing it.
      static constexpr char kUnwritten[8] = {};
      if (fresh || (std::memcmp(meta->magic, kUnwritten, 8) == 0 && meta->format == 0)) {
        std::memcpy(meta->magic, detail::file::kMetaMagic, 8);
        meta->format = detail::file::kFormat;
        meta->size = static_cast<std::uint32_t>(detail::file::kMetaSize);
      }
      if (std::memcmp(meta->magic, detail::file::kMetaMagic, 8) != 0)
        fail("'" + file_path(detail::file::kMetaName).string() +
                 "' is not a leaselock directory file (bad magic)",
             file_path(detail::file::kMetaName));
      if (meta->format != detail::file::kFormat)
        fail("'" + file_path(detail::file::kMetaName).string() + "' has format " +
                 std::to_string(meta->format) + "; this build reads format " +
                 std::to_string(detail::file::kFormat),
             file_path(detail::file::kMetaName));
      // The first process of a boot makes every record's mutex fresh: a mutex left locked
      // by a process of an earlier boot would never be released.
      const std::uint64_t boot = detail::posix::self_identity().boot;
      if (meta->boot != boot) {
        for_each_name([&](const std::string& name) { reset_mutex(name); });
        meta->boot = boot;
      }
    }

    // flock on the directory file, for the rare changes of it that are not single stores.
    struct MetaLock {
      const State& state;
      explicit MetaLock(const State& s) : state(s) {
        while (::flock(state.meta_fd, LOCK_EX) != 0)
          if (errno != EINTR)
            state.fail("cannot lock '" + state.file_path(detail::file::kMetaName).string() + "'",
                       state.dir, errno);
      }
      ~MetaLock() { ::flock(state.meta_fd, LOCK_UN); }
    };

    void attach(std::string_view name, std::function<detail::Nanos()> clock_now) {
      MetaLock lock(*this);
      const std::string_view stored = detail::file::stored_name(meta->clock);
      if (stored.empty()) {
        detail::file::store_name(meta->clock, name);
      } else if (stored != name) {
        fail("lock directory '" + dir.string() + "' is used with " + std::string(stored) +
                 "; this manager's clock is " + std::string(name),
             dir);
      }
      clock.assign(name.data(), name.size());
      now = std::move(clock_now);
    }

    std::uint64_t fence_floor() const noexcept {
      return __atomic_load_n(&meta->fence_floor, __ATOMIC_ACQUIRE);
    }
    void raise_fence_floor(std::uint64_t fence) noexcept {
      std::uint64_t seen = fence_floor();
      while (seen < fence && !__atomic_compare_exchange_n(&meta->fence_floor, &seen, fence, true,
                                                          __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
      }
    }

    template <class Fn>
    void for_each_name(Fn&& fn) const {
      const int fd = ::dup(dir_fd);
      if (fd < 0) fail("cannot read lock directory '" + dir.string() + "'", dir, errno);
      DIR* stream = ::fdopendir(fd);
      if (!stream) {
        ::close(fd);
        fail("cannot read lock directory '" + dir.string() + "'", dir, errno);
      }
      ::rewinddir(stream);
      struct Closer {
        DIR* stream;
        ~Closer() { ::closedir(stream); }
      } closer{stream};
      std::vector<std::string> names;
      while (const dirent* entry = ::readdir(stream)) {
        const std::string_view name(entry->d_name);
        if (detail::file::is_record_name(name)) names.emplace_back(name);
      }
      for (const std::string& name : names) fn(name);
    }

    // --- opening records --------------------------------------------------------------

    // Maps record file `name`; with `key`, checks it is that key's; otherwise reads the
    // key from it. nullptr if there is no such file.
    std::unique_ptr<Mapped> map_record(const std::string& name, const std::string_view* key) {
      struct stat st {};
      const int fd = open_file(name, O_RDWR, st);
      if (fd < 0) return nullptr;
      auto m = std::make_unique<Mapped>();
      m->name = name;
      m->device = st.st_dev;
      m->inode = st.st_ino;
      m->verified_size = static_cast<std::size_t>(st.st_size);
      void* memory =
          ::mmap(nullptr, detail::file::kMapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      const int map_error = errno;
      ::close(fd);
      if (memory == MAP_FAILED)
        fail("cannot map '" + file_path(name).string() + "'", file_path(name), map_error);
      m->base = static_cast<unsigned char*>(memory);
      m->header = reinterpret_cast<detail::file::RecordHeader*>(m->base);
      check_header(*m, key);
      return m;
    }

    void check_header(Mapped& m, const std::string_view* key) const {
      using detail::file::RecordHeader;
      if (m.verified_size < detail::file::kKeyOffset)
        corrupt(
            m, "truncated: " + std::to_string(m.verified_size) + " bytes, shorter than its header");
      const RecordHeader& h = *m.header;
      if (std::memcmp(h.magic, detail::file::kRecordMagic, 8) != 0) corrupt(m, "bad magic");
      if (h.format != detail::file::kFormat)
        corrupt(m, "format " + std::to_string(h.format) + ", this build reads format " +
                       std::to_string(detail::file::kFormat));
      if (h.header_size != sizeof(RecordHeader) || h.key_size == 0 || h.key_size > max_key_size ||
          h.slot_base != detail::file::align64(detail::file::kKeyOffset + h.key_size))
        corrupt(m, "bad header fields");
      if (m.verified_size < h.slot_base)
        corrupt(m,
                "truncated: " + std::to_string(m.verified_size) + " bytes, shorter than its key");
      const char* stored_key = reinterpret_cast<const char*>(m.base + detail::file::kKeyOffset);
      if (detail::file::header_check(h, stored_key) != h.header_check)
        corrupt(m, "header checksum mismatch");
      const std::string_view stored(stored_key, h.key_size);
      if (detail::file::record_name(stored) != m.name)
        corrupt(m, "its key does not match its name");
      if (key && stored != *key)
        fail("keys collide: record file '" + file_path(m.name).string() +
                 "' holds another key with the same hash; the two keys cannot be used together",
             file_path(m.name));
      const std::string_view written = detail::file::stored_name(h.clock);
      if (written != clock)
        fail("record file '" + file_path(m.name).string() + "' was written with " +
                 std::string(written) + "; this manager's clock is " + clock,
             file_path(m.name));
      m.key.assign(stored.data(), stored.size());
      m.slot_base = h.slot_base;
    }

    // Creates key's record file, whole, under a temporary name, and links it into place.
    // Returns its mapping, or nullptr if another process linked one first.
    std::unique_ptr<Mapped> create_record(std::string_view key, const std::string& name) {
      using detail::file::RecordHeader;
      std::uint64_t random = 0;
      detail::posix::fill_random(&random, sizeof random);
      char tmp[64];
      std::snprintf(tmp, sizeof tmp, ".tmp-%u-%016llx", static_cast<unsigned>(::getpid()),
                    static_cast<unsigned long long>(random));
      const int fd =
          ::openat(dir_fd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, file_mode);
      if (fd < 0) fail("cannot create a record in '" + dir.string() + "'", dir, errno);
      struct Cleanup {
        const State& state;
        int fd;
        const char* tmp;
        void* memory = MAP_FAILED;
        ~Cleanup() {
          if (memory != MAP_FAILED) ::munmap(memory, detail::file::kMapSize);
          ::close(fd);
          ::unlinkat(state.dir_fd, tmp, 0);
        }
      } cleanup{*this, fd, tmp};
      (void)::fchmod(fd, file_mode);
      const std::size_t slot_base = detail::file::align64(detail::file::kKeyOffset + key.size());
      const std::size_t size = slot_base + 2 * detail::file::kInitialSlot;
      if (::ftruncate(fd, static_cast<off_t>(size)) != 0)
        fail("cannot size a record in '" + dir.string() + "'", dir, errno);
      cleanup.memory =
          ::mmap(nullptr, detail::file::kMapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (cleanup.memory == MAP_FAILED)
        fail("cannot map a record in '" + dir.string() + "'", dir, errno);
      auto* base = static_cast<unsigned char*>(cleanup.memory);
      auto* h = ::new (base) RecordHeader{};
      std::memcpy(h->magic, detail::file::kRecordMagic, 8);
      h->format = detail::file::kFormat;
      h->header_size = sizeof(RecordHeader);
      h->key_size = static_cast<std::uint32_t>(key.size());
      h->slot_base = static_cast<std::uint32_t>(slot_base);
      detail::file::store_name(h->clock, clock);
      std::memcpy(base + detail::file::kKeyOffset, key.data(), key.size());
      h->header_check = detail::file::header_check(*h, key.data());
      init_mutex(h->mutex, name);
      h->layout = detail::file::kInitialSlot << 1;
      h->generation = 1;
      detail::Record empty;
      empty.last_fence = fence_floor();
      write_slot(
          base + slot_base, empty,
          [](std::size_t, const Token&) { return detail::posix::ProcessIdentity{}; }, 1);
      struct stat st {};
      if (::fstat(fd, &st) != 0) fail("cannot stat a record in '" + dir.string() + "'", dir, errno);
      if (::linkat(dir_fd, tmp, dir_fd, name.c_str(), 0) != 0) {
        if (errno == EEXIST) return nullptr;
        fail("cannot create record file '" + file_path(name).string() + "'", file_path(name),
             errno);
      }
      auto m = std::make_unique<Mapped>();
      m->key.assign(key.data(), key.size());
      m->name = name;
      m->base = base;
      m->header = h;
      m->slot_base = slot_base;
      m->verified_size = size;
      m->device = st.st_dev;
      m->inode = st.st_ino;
      cleanup.memory = MAP_FAILED;  // the mapping is m's now
      return m;
    }

    void init_mutex(pthread_mutex_t& mutex, const std::string& name) const {
      pthread_mutexattr_t attributes;
      pthread_mutexattr_init(&attributes);
      pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
      pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
      const int error = pthread_mutex_init(&mutex, &attributes);
      pthread_mutexattr_destroy(&attributes);
      if (error)
        fail("cannot set up the mutex of '" + file_path(name).string() + "'", file_path(name),
             error);
    }

    void reset_mutex(const std::string& name) {
      struct stat st {};
      const int fd = open_file(name, O_RDWR, st);
      if (fd < 0) return;
      if (static_cast<std::size_t>(st.st_size) >= detail::file::kKeyOffset) {
        void* memory = ::mmap(nullptr, sizeof(detail::file::RecordHeader), PROT_READ | PROT_WRITE,
                              MAP_SHARED, fd, 0);
        if (memory != MAP_FAILED) {
          auto* h = static_cast<detail::file::RecordHeader*>(memory);
          if (std::memcmp(h->magic, detail::file::kRecordMagic, 8) == 0) init_mutex(h->mutex, name);
          ::munmap(memory, sizeof(detail::file::RecordHeader));
        }
      }
      ::close(fd);
    }

    // Finds or maps key's record; creates it if missing and `create`. Takes a reference.
    Mapped* acquire_ref(std::string_view key, bool create) {
      if (clock.empty())
        throw std::logic_error(
            "leaselock: FileBackend used before a LockManager attached its clock");
      const std::uint64_t hash = detail::hash_bytes(key, detail::process_hash_seed());
      Shard& shard = shard_for(hash);
      {
        std::lock_guard<std::mutex> lock(shard.mutex);
        if (Mapped* m = shard.find(key, hash)) {
          if (m->refs++ == 0 && m->lru != kNoList) shard.unlink(*m);
          return m;
        }
      }
      const std::string name = detail::file::record_name(key);
      std::unique_ptr<Mapped> fresh;
      for (;;) {
        fresh = map_record(name, &key);
        if (fresh) {
          if (!take_if_live(*fresh)) continue;
          break;
        }
        if (!create) return nullptr;
        fresh = create_record(key, name);
        if (fresh) break;  // else another process was first: map theirs
      }
      fresh->hash = hash;
      Mapped* victim = nullptr;
      Mapped* m = nullptr;
      {
        std::lock_guard<std::mutex> lock(shard.mutex);
        m = shard.find(key, hash);
        if (m) {  // another thread of ours mapped it meanwhile
          if (m->refs++ == 0 && m->lru != kNoList) shard.unlink(*m);
        } else {
          fresh->refs = 1;
          shard.insert(fresh.get());
          m = fresh.release();
          if (shard.lists[kBusy].size > busy_per_shard) victim = shard.pop_back(kBusy);
        }
      }
      retire(victim);
      return m;
    }

    // A freshly mapped record: true if it is in use; if it was marked removed, finishes
    // the removal (a remover that died half-way) and returns false.
    bool take_if_live(Mapped& m) {
      bool live = true;
      bool owner_died = false;
      {
        RecordLock lock(*this, m);
        owner_died = lock.owner_died;
        if (owner_died) __atomic_fetch_add(&m.header->wake, 1u, __ATOMIC_RELAXED);
        if (m.header->removed) {
          unlink_if_ours(m);
          live = false;
        }
      }
      // A process died holding the mutex, perhaps before waking the waiters of its change.
      if (owner_died) detail::posix::futex_wake_all(&m.header->wake);
      return live;
    }

    void release_ref(Mapped& m) noexcept {
      Shard& shard = shard_for(m.hash);
      Mapped* victim = nullptr;
      {
        std::lock_guard<std::mutex> lock(shard.mutex);
        if (--m.refs != 0) return;
        if (!m.in_table) {
          victim = &m;  // forgotten while in use: let it go now
        } else {
          victim = m.idle_hint ? shard.push_front(m, kIdle, kIdlePerShard)
                               : shard.push_front(m, kBusy, busy_per_shard);
        }
      }
      retire(victim);
    }

    // Drops the mapping of a record whose file was removed: later users open it afresh.
    void forget(Mapped& m) noexcept {
      Shard& shard = shard_for(m.hash);
      std::lock_guard<std::mutex> lock(shard.mutex);
      if (m.in_table) shard.erase(&m);
    }

    // A mapping out of every table and list: remove its file if idle, then unmap it.
    void retire(Mapped* m) noexcept {
      if (!m) return;
      try {
        remove_if_idle(*m);
      } catch (...) {
      }
      delete m;
    }

    Shard& shard_for(std::uint64_t hash) noexcept {
      return shards[static_cast<std::size_t>(hash >> 58) & (kShards - 1)];
    }

    // --- one record operation ---------------------------------------------------------

    // The record's robust mutex. A holder that died leaves EOWNERDEAD: the record is
    // whole (see the file comment), so it is marked consistent and re-read.
    struct RecordLock {
      const State& state;
      Mapped& m;
      bool owner_died = false;
      RecordLock(const State& s, Mapped& mapped) : state(s), m(mapped) {
        const int error = pthread_mutex_lock(&m.header->mutex);
        if (error == EOWNERDEAD) {
          pthread_mutex_consistent(&m.header->mutex);
          m.decoded = false;
          owner_died = true;
        } else if (error) {
          state.fail("cannot lock record file '" + state.file_path(m.name).string() + "'",
                     state.file_path(m.name), error);
        }
      }
      ~RecordLock() { pthread_mutex_unlock(&m.header->mutex); }
    };

    // Runs body(record) on m's current record under its mutex and, with `store`, writes the
    // result and wakes waiters if it changed; if body throws, what it changed is written
    // all the same (transitions keep the record consistent). Returns body's result, or
    // nothing when the record file was removed (outcome.removed).
    template <class Body>
    auto run(Mapped& m, Outcome& outcome, Body&& body, bool store = true)
        -> std::optional<decltype(body(std::declval<detail::Record&>()))> {
      bool wake = false;
      std::optional<decltype(body(std::declval<detail::Record&>()))> result;
      {
        RecordLock lock(*this, m);
        if (m.header->removed) {
          outcome.removed = true;
          return std::nullopt;
        }
        load(m);
        detail::Record& record = m.record;
        record.last_fence = std::max(record.last_fence, fence_floor());
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
        if (wake) __atomic_fetch_add(&m.header->wake, 1u, __ATOMIC_RELAXED);
      }
      if (wake) {
        detail::posix::futex_wake_all(&m.header->wake);
        Parked::instance().wake(m);
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
    void load(Mapped& m) {
      // A process's own last write, or its last read, is still current: nothing to read.
      if (m.decoded && __atomic_load_n(&m.header->generation, __ATOMIC_ACQUIRE) == m.generation)
        return;
      const std::uint64_t layout = __atomic_load_n(&m.header->layout, __ATOMIC_ACQUIRE);
      const std::size_t capacity = static_cast<std::size_t>(layout >> 1);
      const std::size_t slot = m.slot_base + (layout & 1) * capacity;
      if (capacity < sizeof(detail::file::SlotHeader) + detail::file::kHeadSize ||
          capacity % 64 != 0 || m.slot_base + 2 * capacity > detail::file::kMapSize)
        corrupt(m, "bad slot layout");
      if (m.slot_base + 2 * capacity > m.verified_size) verify_size(m, m.slot_base + 2 * capacity);
      detail::file::SlotHeader slot_header;
      std::memcpy(&slot_header, m.base + slot, sizeof slot_header);
      if (m.decoded && slot_header.generation == m.generation) return;
      if (slot_header.size > capacity - sizeof slot_header) corrupt(m, "bad record size");
      const unsigned char* payload = m.base + slot + sizeof slot_header;
      const auto size = static_cast<std::size_t>(slot_header.size);
      if (detail::file::checksum(payload, size, slot_header.generation) != slot_header.check)
        corrupt(m, "record checksum mismatch");
      m.decoded = false;
      if (const char* error = detail::file::decode(payload, size, m.record, m.ids))
        corrupt(m, error);
      m.generation = slot_header.generation;
      m.decoded = true;
      index_foreign(m, m.ids);
      // After a writer died between publishing its slot and its generation.
      if (m.header->generation != m.generation)
        __atomic_store_n(&m.header->generation, m.generation, __ATOMIC_RELEASE);
    }

    void verify_size(Mapped& m, std::size_t needed) {
      struct stat st {};
      const int fd = open_file(m.name, O_RDONLY, st);
      if (fd >= 0) ::close(fd);
      if (fd < 0 || st.st_ino != m.inode || st.st_dev != m.device)
        corrupt(m, "its file was replaced while in use");
      m.verified_size = static_cast<std::size_t>(st.st_size);
      if (m.verified_size < needed)
        corrupt(m, "truncated: " + std::to_string(m.verified_size) + " bytes, its slots need " +
                       std::to_string(needed));
    }

    // Keeps, sorted by token, the holders and waiters of m's record that belong to other
    // processes (`ids` gives each one's process, holders first): most records have none.
    static void index_foreign(Mapped& m, const std::vector<detail::posix::ProcessIdentity>& ids) {
      const auto& self = detail::posix::self_identity();
      m.foreign.clear();
      std::size_t i = 0;
      for (const detail::Holder& h : m.record.holders)
        if (const auto& id = ids[i++]; id != self) m.foreign.emplace_back(h.token, id);
      for (const detail::Waiter& w : m.record.waiters)
        if (const auto& id = ids[i++]; id != self) m.foreign.emplace_back(w.token, id);
      std::sort(m.foreign.begin(), m.foreign.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
    }

    // The process of a holder or waiter of the decoded record: another process as stored,
    // or this one (for a token the record did not have: a request this process just made).
    static const detail::posix::ProcessIdentity& identity_of(const Mapped& m, const Token& token) {
      if (!m.foreign.empty()) {
        const auto it = std::lower_bound(m.foreign.begin(), m.foreign.end(), token,
                                         [](const auto& p, const Token& t) { return p.first < t; });
        if (it != m.foreign.end() && it->first == token) return it->second;
      }
      return detail::posix::self_identity();
    }

    // Writes m.record into the free slot, then makes that slot current.
    void save(Mapped& m) {
      const detail::Record& record = m.record;
      const std::size_t size = detail::file::encoded_size(record);
      const std::size_t needed = sizeof(detail::file::SlotHeader) + size;
      std::uint64_t layout = __atomic_load_n(&m.header->layout, __ATOMIC_RELAXED);
      std::size_t capacity = static_cast<std::size_t>(layout >> 1);
      std::size_t target = 1 - (layout & 1);
      if (needed > capacity) {
        // Slots of the new capacity start beyond the current one: slot 1 of capacity c'
        // begins at c' >= 2c past slot 0, or >= c when slot 0 is current.
        const std::size_t largest = (detail::file::kMapSize - m.slot_base) / 2 & ~std::size_t{63};
        const std::size_t grown =
            std::min(std::max(2 * capacity, detail::file::align64(needed)), largest);
        if (grown < needed)
          fail("record file '" + file_path(m.name).string() +
                   "' is full: " + std::to_string(record.holders.size()) + " holders and " +
                   std::to_string(record.waiters.size()) + " waiters need " +
                   std::to_string(needed) + " bytes",
               file_path(m.name), ENOSPC);
        if (target == 0 && grown < 2 * capacity) {
          // Slot 1 is current and too close: copy it, unchanged, to slot 0 first.
          unsigned char* current = m.base + m.slot_base + capacity;
          detail::file::SlotHeader header;
          std::memcpy(&header, current, sizeof header);
          std::memcpy(m.base + m.slot_base, current,
                      sizeof header + static_cast<std::size_t>(header.size));
          __atomic_store_n(&m.header->layout, static_cast<std::uint64_t>(capacity) << 1,
                           __ATOMIC_RELEASE);
        }
        grow(m, m.slot_base + 2 * grown);
        capacity = grown;
        target = 1;
      }
      const std::uint64_t generation = m.generation + 1;
      write_slot(
          m.base + m.slot_base + target * capacity, record,
          [&](std::size_t, const Token& token) { return identity_of(m, token); }, generation);
      layout = (static_cast<std::uint64_t>(capacity) << 1) | target;
      __atomic_store_n(&m.header->layout, layout, __ATOMIC_RELEASE);
      __atomic_store_n(&m.header->generation, generation, __ATOMIC_RELEASE);
      m.generation = generation;
      if (!m.foreign.empty()) {  // drop those that left
        const auto gone = [&](const auto& p) {
          return !detail::find_holder(record, p.first) &&
                 std::none_of(record.waiters.begin(), record.waiters.end(),
                              [&](const detail::Waiter& w) { return w.token == p.first; });
        };
        m.foreign.erase(std::remove_if(m.foreign.begin(), m.foreign.end(), gone), m.foreign.end());
      }
    }

    template <class IdentityOf>
    static void write_slot(unsigned char* slot, const detail::Record& record,
                           IdentityOf&& identity_of, std::uint64_t generation) {
      detail::file::SlotHeader header{};
      header.generation = generation;
      header.size = detail::file::encoded_size(record);
      unsigned char* payload = slot + sizeof header;
      detail::file::encode(record, identity_of, payload);
      header.check =
          detail::file::checksum(payload, static_cast<std::size_t>(header.size), generation);
      std::memcpy(slot, &header, sizeof header);
    }

    void grow(Mapped& m, std::size_t size) {
      struct stat st {};
      const int fd = open_file(m.name, O_RDWR, st);
      if (fd < 0 || st.st_ino != m.inode || st.st_dev != m.device) {
        if (fd >= 0) ::close(fd);
        corrupt(m, "its file was replaced while in use");
      }
      const int error = ::ftruncate(fd, static_cast<off_t>(size)) == 0 ? 0 : errno;
      ::close(fd);
      if (error)
        fail("cannot grow record file '" + file_path(m.name).string() + "'", file_path(m.name),
             error);
      m.verified_size = size;
    }

    // --- dead processes ---------------------------------------------------------------

    bool has_foreign(const Mapped& m) const noexcept { return !m.foreign.empty(); }

    // Removes from `record` (m's, under its lock) the holders and waiters whose process
    // has certainly ended. Returns true if it removed any.
    bool reclaim(const Mapped& m, detail::Record& record) {
      if (!has_foreign(m)) return false;
      const auto& self = detail::posix::self_identity();
      std::vector<std::pair<detail::posix::ProcessIdentity, bool>> verdicts;
      const auto departed = [&](const Token& token) {
        const auto& id = identity_of(m, token);
        if (id == self) return false;
        for (const auto& v : verdicts)
          if (v.first == id) return v.second;
        const bool dead = detail::posix::certainly_dead(id);
        verdicts.emplace_back(id, dead);
        return dead;
      };
      return detail::remove_departed(record, departed) > 0;
    }

    // --- removing records ---------------------------------------------------------------

    // Under m's lock: unlinks its file if the directory entry is still this file.
    void unlink_if_ours(const Mapped& m) const noexcept {
      struct stat st {};
      if (::fstatat(dir_fd, m.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          st.st_dev == m.device && st.st_ino == m.inode)
        ::unlinkat(dir_fd, m.name.c_str(), 0);
    }

    // Removes m's file if nobody holds or waits (expired leases and those of dead
    // processes dropped first). Returns true if it removed it.
    bool remove_if_idle(Mapped& m) {
      RecordLock lock(*this, m);
      if (m.header->removed) return false;
      load(m);
      detail::Record& record = m.record;
      bool changed = reclaim(m, record);
      if (now && !record.holders.empty())
        changed |= detail::purge_expired(record, now(), nullptr) > 0;
      if (!record.idle()) {
        if (changed) {
          save(m);
          __atomic_fetch_add(&m.header->wake, 1u, __ATOMIC_RELAXED);
          detail::posix::futex_wake_all(&m.header->wake);
        }
        return false;
      }
      raise_fence_floor(std::max(record.last_fence, fence_floor()));
      __atomic_store_n(&m.header->removed, 1u, __ATOMIC_RELEASE);
      unlink_if_ours(m);
      return true;
    }

    // Maps record file `name` on its own (not cached), reading its key from it; nullptr if
    // the file is gone, also if it went while being read.
    std::unique_ptr<Mapped> map_existing(const std::string& name) {
      try {
        return map_record(name, nullptr);
      } catch (const StorageError&) {
        if (!file_exists(name)) return nullptr;  // removed while we looked
        throw;
      }
    }

    template <class Fn>
    void for_each_record(Fn&& fn) {
      for_each_name([&](const std::string& name) {
        if (std::unique_ptr<Mapped> m = map_existing(name)) fn(*m);
      });
    }

    bool file_exists(const std::string& name) const noexcept {
      struct stat st {};
      return ::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
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
        const int fd = open_file(name, O_RDONLY, st);
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
          check_header(copy, nullptr);
          if (copy.header->removed) return;
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

    // What status() and list() see: the record without the holders and waiters whose
    // process has certainly ended (the next request on the key reclaims them).
    template <class Fn>
    void show(const Mapped& m, const detail::Record& record, Fn&& fn) {
      if (!has_foreign(m) || options.liveness_check.count() == 0) return fn(record);
      detail::Record live = record;
      reclaim(m, live);
      fn(static_cast<const detail::Record&>(live));
    }

    std::size_t remove_idle() {
      std::size_t removed = 0;
      for_each_record([&](Mapped& m) { removed += remove_if_idle(m); });
      // Temporary files of creators that died before linking them.
      const int fd = ::dup(dir_fd);
      if (fd < 0) return removed;
      DIR* stream = ::fdopendir(fd);
      if (!stream) {
        ::close(fd);
        return removed;
      }
      ::rewinddir(stream);
      std::vector<std::string> stale;
      while (const dirent* entry = ::readdir(stream)) {
        // Named by the creator's pid; also at least a minute old, for a creator in another
        // PID namespace whose pid means nothing here.
        unsigned pid = 0;
        if (std::sscanf(entry->d_name, ".tmp-%u-", &pid) != 1 || pid == 0) continue;
        struct stat st {};
        if (::fstatat(dir_fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            st.st_mtime > ::time(nullptr) - 60)
          continue;
        if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
          stale.emplace_back(entry->d_name);
      }
      ::closedir(stream);
      for (const std::string& name : stale) removed += ::unlinkat(dir_fd, name.c_str(), 0) == 0;
      return removed;
    }
  };

  // A reference to a key's mapping for the length of one operation (or a pin).
  class Ref {
   public:
    Ref(State& state, std::string_view key, bool create = true)
        : state_(state), mapped_(state.acquire_ref(key, create)) {}
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
