// leaselock/detail/file/directory_walk.hpp — every record file of a lock directory.
//
// What a FileBackend does with all of its directory rather than one key: list() reads each
// record file without its mutex (read_snapshot(): one pread, believed when the current
// slot's checksum matches), and remove_idle() maps each on its own, outside the cache,
// and removes it if nobody holds or waits. A record file that is damaged is reported to
// the options' on_damaged_record and skipped (skipping_damage()); the walk goes on.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <leaselock/detail/file/record_file.hpp>
#include <leaselock/detail/file/record_layout.hpp>
#include <leaselock/detail/file/record_store.hpp>
#include <leaselock/detail/semantics.hpp>
#include <leaselock/storage_error.hpp>

namespace leaselock::detail::file {

/// Runs fn(), one record's part of a walk over the directory; a StorageError it throws
/// is reported to the options' on_damaged_record instead, and the walk goes on.
template <class Fn>
void skipping_damage(const RecordStore& store, Fn&& fn) {
  try {
    fn();
  } catch (const StorageError& error) {
    if (store.options.on_damaged_record) store.options.on_damaged_record(error);
  }
}

/// Maps record file `name` on its own (not cached), reading its key from it; nullptr if
/// the file is gone, also if it went while being read.
inline std::unique_ptr<Mapped> map_existing(const RecordStore& store, const std::string& name) {
  auto m = std::make_unique<Mapped>();
  try {
    if (!map_record(store.directory, name, nullptr, store.clock, *m)) return nullptr;
    return m;
  } catch (const StorageError&) {
    if (!store.directory.exists(name)) return nullptr;  // removed while we looked
    throw;
  }
}

/// Removes every record file of the directory that nobody holds or waits for, and the
/// temporary files of dead processes; how many files it removed. A record in use by a
/// stalled process, or held from another time namespace, is not idle.
inline std::size_t remove_idle(RecordStore& store) {
  std::size_t removed = 0;
  store.directory.for_each_record_name([&](const std::string& name) {
    skipping_damage(store, [&] {
      std::unique_ptr<Mapped> m = map_existing(store, name);
      if (!m) return;
      try {
        removed += store.remove_if_idle(*m, kOneTryPatience);
      } catch (const Stalled&) {               // in use by a stalled process: not idle
      } catch (const TimeNamespaceRefused&) {  // held from another time namespace
      }
    });
  });
  return removed + store.directory.remove_stale_temporaries();
}

/// Reads record file `name` without its mutex (for list()) and calls fn(key, record):
/// one pread of the file, whose current slot is whole when its checksum matches (a
/// writer never writes the current slot). A slot being rewritten as it is read is read
/// again; a record that stays damaged is read under its mutex, which reports it. Removed
/// files are skipped.
template <class Fn>
void read_snapshot(RecordStore& store, const std::string& name, Fn&& fn) {
  thread_local std::vector<unsigned char> bytes;
  for (int attempt = 0; attempt < 4; ++attempt) {
    struct stat st {};
    const int fd = store.directory.open_file(name, O_RDONLY, st);
    if (fd < 0) return;
    const auto size = std::min(static_cast<std::size_t>(st.st_size), kMapSize);
    bytes.resize(std::max(size, sizeof(RecordHeader)));
    std::size_t done = 0;
    while (done < size) {
      const ssize_t got = ::pread(fd, bytes.data() + done, size - done, static_cast<off_t>(done));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      done += static_cast<std::size_t>(got);
    }
    ::close(fd);
    Mapped copy;
    copy.owns_mapping = false;
    copy.base = bytes.data();
    copy.header = reinterpret_cast<RecordHeader*>(bytes.data());
    copy.name = name;
    copy.verified_size = done;
    copy.device = st.st_dev;
    copy.inode = st.st_ino;
    try {
      check_header(store.directory, copy, nullptr, store.clock);
      if (store.marked_removed(copy)) return;
      store.load(copy);
    } catch (const StorageError&) {
      continue;  // torn or damaged: read again, then under the mutex
    }
    store.show(copy, copy.record, [&](const Record& shown) { fn(copy.key, shown); });
    return;
  }
  const std::unique_ptr<Mapped> m = map_existing(store, name);
  if (!m) return;
  Outcome outcome;
  store.run(
      *m, outcome,
      [&](Record& record) {
        store.show(*m, record, [&](const Record& shown) { fn(m->key, shown); });
        return true;
      },
      /*store=*/false);
}

}  // namespace leaselock::detail::file
