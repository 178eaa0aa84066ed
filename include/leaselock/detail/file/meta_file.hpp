// leaselock/detail/file/meta_file.hpp — the lock directory's own file, ".leaselock".
//
// One page, mapped by every process that uses the directory: what the directory is
// (magic, format), the clock its records' times are on, the boot whose processes use the
// records' mutexes, and the directory-wide fence floor — raised to a record's last fence
// before that record's file is removed, so a key's fences keep increasing across the
// removal and re-creation of its record. The rare changes that are not single stores are
// made under flock on the file (MetaFile::Lock).
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <leaselock/detail/file/directory.hpp>
#include <leaselock/detail/file/record_layout.hpp>
#include <leaselock/detail/posix/identity.hpp>

namespace leaselock::detail::file {

inline constexpr char kMetaMagic[8] = {'l', 'e', 'a', 's', 'e', 'd', 'i', 'r'};
inline constexpr const char* kMetaName = ".leaselock";

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

class MetaFile {
 public:
  /// Opens (creating it if missing) the meta file of `directory`. The first process of a
  /// boot to open it calls on_new_boot() (under the file's lock) to make every record's
  /// mutex fresh: a mutex left locked by a process of an earlier boot would never be
  /// released. Throws StorageError if it cannot, or the file is not a leaselock one.
  template <class OnNewBoot>
  MetaFile(const LockDirectory& directory, OnNewBoot&& on_new_boot) : directory_(directory) {
    try {
      open(on_new_boot);
    } catch (...) {
      close();
      throw;
    }
  }
  MetaFile(const MetaFile&) = delete;
  MetaFile& operator=(const MetaFile&) = delete;
  ~MetaFile() { close(); }

  /// flock on the file, for the rare changes of it that are not single stores.
  class Lock {
   public:
    explicit Lock(const MetaFile& meta) : meta_(meta) {
      while (::flock(meta_.fd_, LOCK_EX) != 0)
        if (errno != EINTR)
          fail("cannot lock '" + meta_.path() + "'", meta_.directory_.path(), errno);
    }
    Lock(const Lock&) = delete;
    Lock& operator=(const Lock&) = delete;
    ~Lock() { ::flock(meta_.fd_, LOCK_UN); }

   private:
    const MetaFile& meta_;
  };

  /// Records that the directory's records are written on clock `name`. Throws
  /// StorageError if it is already used with another clock.
  void attach_clock(std::string_view name) {
    Lock lock(*this);
    const std::string_view stored = stored_name(header_->clock);
    if (stored.empty()) {
      store_name(header_->clock, name);
    } else if (stored != name) {
      fail("lock directory '" + directory_.path().string() + "' is used with " +
               std::string(stored) + "; this manager's clock is " + std::string(name),
           directory_.path());
    }
  }

  std::uint64_t fence_floor() const noexcept {
    return __atomic_load_n(&header_->fence_floor, __ATOMIC_ACQUIRE);
  }

  /// Raises the fence floor to `fence` (never lowers it).
  void raise_fence_floor(std::uint64_t fence) noexcept {
    std::uint64_t seen = fence_floor();
    while (seen < fence && !__atomic_compare_exchange_n(&header_->fence_floor, &seen, fence, true,
                                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    }
  }

 private:
  std::string path() const { return directory_.file_path(kMetaName).string(); }

  template <class OnNewBoot>
  void open(OnNewBoot& on_new_boot) {
    const std::filesystem::path& dir = directory_.path();
    struct stat st {};
    fd_ = directory_.open_file(kMetaName, O_RDWR, st);
    if (fd_ < 0) {
      create();
      fd_ = directory_.open_file(kMetaName, O_RDWR, st);
    }
    if (fd_ < 0) fail("cannot create '" + path() + "'", dir, errno);
    if (::fchmod(fd_, directory_.file_mode()) != 0 && errno != EPERM)
      fail("cannot set the mode of '" + path() + "'", directory_.file_path(kMetaName), errno);
    Lock lock(*this);
    if (::fstat(fd_, &st) != 0) fail("cannot stat '" + path() + "'", dir, errno);
    // Empty: made by an earlier version, which sized it after creating it.
    const bool fresh = st.st_size == 0;
    if (fresh) allocate_file(directory_, fd_, kMetaSize, "'" + path() + "'");
    if (!fresh && static_cast<std::size_t>(st.st_size) < kMetaSize)
      fail("'" + path() + "' is truncated", dir);
    void* memory = ::mmap(nullptr, kMetaSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (memory == MAP_FAILED) fail("cannot map '" + path() + "'", dir, errno);
    header_ = static_cast<MetaHeader*>(memory);
    // A creator may have died after sizing the file and before writing it.
    static constexpr char kUnwritten[8] = {};
    if (fresh || (std::memcmp(header_->magic, kUnwritten, 8) == 0 && header_->format == 0)) {
      std::memcpy(header_->magic, kMetaMagic, 8);
      header_->format = kFormat;
      header_->size = static_cast<std::uint32_t>(kMetaSize);
    }
    if (std::memcmp(header_->magic, kMetaMagic, 8) != 0)
      fail("'" + path() + "' is not a leaselock directory file (bad magic)",
           directory_.file_path(kMetaName));
    if (header_->format != kFormat)
      fail("'" + path() + "' has format " + std::to_string(header_->format) +
               "; this build reads format " + std::to_string(kFormat),
           directory_.file_path(kMetaName));
    const std::uint64_t boot = posix::self_identity().boot;
    if (header_->boot != boot) {
      on_new_boot();
      header_->boot = boot;
    }
  }

  // Creates the file whole, allocated, under a temporary name, and links it into place
  // (unless another process was first).
  void create() {
    TemporaryFile tmp(directory_, kMetaName);
    tmp.allocate(kMetaSize);
    MetaHeader header{};
    std::memcpy(header.magic, kMetaMagic, 8);
    header.format = kFormat;
    header.size = static_cast<std::uint32_t>(kMetaSize);
    if (::pwrite(tmp.fd(), &header, sizeof header, 0) != static_cast<ssize_t>(sizeof header))
      fail("cannot write '" + path() + "'", directory_.path(), errno);
    (void)tmp.link_as(kMetaName);
  }

  void close() noexcept {
    if (header_) ::munmap(header_, kMetaSize);
    header_ = nullptr;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  const LockDirectory& directory_;
  int fd_ = -1;
  MetaHeader* header_ = nullptr;
};

}  // namespace leaselock::detail::file
