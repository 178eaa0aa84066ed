// leaselock/detail/file/record_file.hpp — opening, creating and checking one record file.
//
// A record file is created whole under a temporary name (".tmp-<pid>-<random>": header,
// key, an empty record in slot 0 whose last fence is the directory's fence floor, a
// fresh robust mutex) and then linked into place, so no process ever sees half of one.
// Its space is allocated before it is mapped, and so is a record's growth: a full file
// system gives StorageError, never SIGBUS. Opening maps the file's whole reserved span
// (kMapSize) and checks its header: magic, format, sizes, checksum, that the key is the
// one its name says, and the clock. A file that fails is reported with a StorageError
// and left untouched.
#pragma once

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <string_view>

#include <leaselock/detail/file/codec.hpp>
#include <leaselock/detail/file/directory.hpp>
#include <leaselock/detail/file/record_layout.hpp>
#include <leaselock/detail/file/slots.hpp>
#include <leaselock/detail/posix/identity.hpp>
#include <leaselock/detail/posix/random.hpp>
#include <leaselock/detail/posix/robust_mutex.hpp>
#include <leaselock/limits.hpp>
#include <leaselock/storage_error.hpp>

namespace leaselock::detail::file {

/// Record files this process has mapped now (every backend), one memory mapping each.
inline std::atomic<std::size_t>& mapped_records() noexcept {
  static std::atomic<std::size_t> count{0};
  return count;
}

/// How many record files this process may map at once: the kernel's vm.max_map_count
/// (read once), less an eighth of it (at least 4096) left for the rest of the process —
/// its allocator maps memory too. Tests may lower it.
inline std::atomic<std::size_t>& record_mapping_limit() noexcept {
  static std::atomic<std::size_t> limit{[] {
    std::size_t max_map_count = 65530;
    char text[32];
    if (posix::read_small_file("/proc/sys/vm/max_map_count", text, sizeof text) > 0)
      max_map_count = static_cast<std::size_t>(std::strtoull(text, nullptr, 10));
    const std::size_t reserve = std::max<std::size_t>(4096, max_map_count / 8);
    return max_map_count > 2 * reserve ? max_map_count - reserve : max_map_count / 2;
  }()};
  return limit;
}

/// The message for a mapping the kernel refused.
inline std::string mapping_refused(const std::string& what) {
  return what + " (this process maps " + std::to_string(mapped_records().load()) +
         " record files, one memory mapping per key in use; vm.max_map_count limits them)";
}

/// One record file as this process sees it: which file it is, and its slots.
struct RecordFile : RecordSlots {
  std::string key;
  std::string name;
  dev_t device = 0;
  ino_t inode = 0;
  bool owns_mapping = true;  // false: base is a copy of the file read with pread

  RecordFile() = default;
  RecordFile(const RecordFile&) = delete;
  RecordFile& operator=(const RecordFile&) = delete;
  ~RecordFile() {
    if (base && owns_mapping) {
      ::munmap(base, kMapSize);
      mapped_records().fetch_sub(1, std::memory_order_relaxed);
    }
  }
};

[[noreturn]] inline void corrupt(const LockDirectory& directory, const RecordFile& file,
                                 const std::string& why) {
  fail("record file '" + directory.file_path(file.name).string() + "' is corrupt (" + why +
           "); it was left untouched — move it away to free the key",
       directory.file_path(file.name));
}

inline void init_record_mutex(const LockDirectory& directory, pthread_mutex_t& mutex,
                              const std::string& name) {
  if (const int error = posix::init_robust_mutex(mutex))
    fail("cannot set up the mutex of '" + directory.file_path(name).string() + "'",
         directory.file_path(name), error);
}

/// Checks the header of `file` (mapped or copied, verified_size set): with `key`, that it
/// is that key's; otherwise reads the key from it. Sets file.key and file.slot_base.
inline void check_header(const LockDirectory& directory, RecordFile& file,
                         const std::string_view* key, std::string_view clock) {
  if (file.verified_size < kKeyOffset)
    corrupt(directory, file,
            "truncated: " + std::to_string(file.verified_size) + " bytes, shorter than its header");
  const RecordHeader& h = *file.header;
  if (std::memcmp(h.magic, kRecordMagic, 8) != 0) corrupt(directory, file, "bad magic");
  if (h.format != kFormat)
    corrupt(directory, file,
            "format " + std::to_string(h.format) + ", this build reads format " +
                std::to_string(kFormat));
  if (h.header_size != sizeof(RecordHeader) || h.key_size == 0 || h.key_size > max_key_size ||
      h.slot_base != align64(kKeyOffset + h.key_size))
    corrupt(directory, file, "bad header fields");
  if (file.verified_size < h.slot_base)
    corrupt(directory, file,
            "truncated: " + std::to_string(file.verified_size) + " bytes, shorter than its key");
  const char* stored_key = reinterpret_cast<const char*>(file.base + kKeyOffset);
  if (header_check(h, stored_key) != h.header_check)
    corrupt(directory, file, "header checksum mismatch");
  const std::string_view stored(stored_key, h.key_size);
  if (record_name(stored) != file.name) corrupt(directory, file, "its key does not match its name");
  if (key && stored != *key)
    fail("keys collide: record file '" + directory.file_path(file.name).string() +
             "' holds another key with the same hash; the two keys cannot be used together",
         directory.file_path(file.name));
  const std::string_view written = stored_name(h.clock);
  if (written != clock)
    fail("record file '" + directory.file_path(file.name).string() + "' was written with " +
             std::string(written) + "; this manager's clock is " + std::string(clock),
         directory.file_path(file.name));
  file.key.assign(stored.data(), stored.size());
  file.slot_base = h.slot_base;
}

/// Maps record file `name` into `file` and checks its header (see check_header()).
/// Returns false if there is no such file.
inline bool map_record(const LockDirectory& directory, const std::string& name,
                       const std::string_view* key, std::string_view clock, RecordFile& file) {
  struct stat st {};
  const int fd = directory.open_file(name, O_RDWR, st);
  if (fd < 0) return false;
  file.name = name;
  file.device = st.st_dev;
  file.inode = st.st_ino;
  file.verified_size = static_cast<std::size_t>(st.st_size);
  void* memory = ::mmap(nullptr, kMapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int map_error = errno;
  ::close(fd);
  if (memory == MAP_FAILED)
    fail(mapping_refused("cannot map '" + directory.file_path(name).string() + "'"),
         directory.file_path(name), map_error);
  mapped_records().fetch_add(1, std::memory_order_relaxed);
  file.base = static_cast<unsigned char*>(memory);
  file.header = reinterpret_cast<RecordHeader*>(file.base);
  check_header(directory, file, key, clock);
  return true;
}

/// Creates key's record file `name`, whole, under a temporary name, and links it into
/// place; maps it into `file`. Returns false if another process linked one first.
inline bool create_record(const LockDirectory& directory, std::string_view key,
                          const std::string& name, std::string_view clock,
                          std::uint64_t fence_floor, RecordFile& file) {
  const std::filesystem::path& dir = directory.path();
  if (key.empty() || key.size() > max_key_size)
    fail("a key of " + std::to_string(key.size()) + " bytes has no record file", dir, EINVAL);
  TemporaryFile tmp(directory, name);
  struct Unmap {
    void* memory = MAP_FAILED;
    ~Unmap() {
      if (memory != MAP_FAILED) ::munmap(memory, kMapSize);
    }
  } cleanup;
  const std::size_t slot_base = align64(kKeyOffset + key.size());
  const std::size_t size = slot_base + 2 * kInitialSlot;
  tmp.allocate(size);  // before mapping: writing the new file cannot fail
  cleanup.memory = ::mmap(nullptr, kMapSize, PROT_READ | PROT_WRITE, MAP_SHARED, tmp.fd(), 0);
  if (cleanup.memory == MAP_FAILED)
    fail(mapping_refused("cannot map a record in '" + dir.string() + "'"), dir, errno);
  auto* base = static_cast<unsigned char*>(cleanup.memory);
  auto* h = ::new (base) RecordHeader{};
  std::memcpy(h->magic, kRecordMagic, 8);
  h->format = kFormat;
  h->header_size = sizeof(RecordHeader);
  h->key_size = static_cast<std::uint32_t>(key.size());
  h->slot_base = static_cast<std::uint32_t>(slot_base);
  store_name(h->clock, clock);
  std::memcpy(base + kKeyOffset, key.data(), key.size());
  h->header_check = header_check(*h, key.data());
  init_record_mutex(directory, h->mutex, name);
  h->layout = kInitialSlot << 1;
  h->generation = 1;
  h->generation_check = ~std::uint64_t{1};
  Record empty;
  empty.last_fence = fence_floor;
  write_slot(
      base + slot_base, empty, [](std::size_t, const Token&) { return ProcessIdentity{}; }, 1);
  struct stat st {};
  if (::fstat(tmp.fd(), &st) != 0)
    fail("cannot stat a record in '" + dir.string() + "'", dir, errno);
  if (!tmp.link_as(name)) return false;
  file.key.assign(key.data(), key.size());
  file.name = name;
  file.base = base;
  file.header = h;
  file.slot_base = slot_base;
  file.verified_size = size;
  file.device = st.st_dev;
  file.inode = st.st_ino;
  cleanup.memory = MAP_FAILED;  // the mapping is file's now
  mapped_records().fetch_add(1, std::memory_order_relaxed);
  return true;
}

/// Makes the mutex of record file `name` fresh (the first process of a boot does it).
inline void reset_mutex(const LockDirectory& directory, const std::string& name) {
  struct stat st {};
  const int fd = directory.open_file(name, O_RDWR, st);
  if (fd < 0) return;
  if (static_cast<std::size_t>(st.st_size) >= kKeyOffset) {
    void* memory = ::mmap(nullptr, sizeof(RecordHeader), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (memory != MAP_FAILED) {
      auto* h = static_cast<RecordHeader*>(memory);
      if (std::memcmp(h->magic, kRecordMagic, 8) == 0) init_record_mutex(directory, h->mutex, name);
      ::munmap(memory, sizeof(RecordHeader));
    }
  }
  ::close(fd);
}

/// Checks that `file`'s directory entry is still the file and at least `needed` bytes
/// long (sets verified_size); reports it corrupt otherwise.
inline void verify_size(const LockDirectory& directory, RecordFile& file, std::size_t needed) {
  struct stat st {};
  const int fd = directory.open_file(file.name, O_RDONLY, st);
  if (fd >= 0) ::close(fd);
  if (fd < 0 || st.st_ino != file.inode || st.st_dev != file.device)
    corrupt(directory, file, "its file was replaced while in use");
  file.verified_size = static_cast<std::size_t>(st.st_size);
  if (file.verified_size < needed)
    corrupt(directory, file,
            "truncated: " + std::to_string(file.verified_size) + " bytes, its slots need " +
                std::to_string(needed));
}

/// Makes `file` `size` bytes long, allocated (StorageError if there is no room: then
/// nothing changed).
inline void grow(const LockDirectory& directory, RecordFile& file, std::size_t size) {
  struct stat st {};
  const int fd = directory.open_file(file.name, O_RDWR, st);
  if (fd < 0 || st.st_ino != file.inode || st.st_dev != file.device) {
    if (fd >= 0) ::close(fd);
    corrupt(directory, file, "its file was replaced while in use");
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  // Allocated, not only sized: the slots are then written through the mapping, under
  // the record's mutex, where a file system without room would raise SIGBUS.
  allocate_file(directory, fd, size, "record file '" + file.name + "' to grow");
  file.verified_size = size;
}

}  // namespace leaselock::detail::file
