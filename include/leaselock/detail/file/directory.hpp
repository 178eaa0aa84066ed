// leaselock/detail/file/directory.hpp — FileBackend's lock directory and its files.
//
// LockDirectory opens (or creates) the directory, refuses one that others could tamper
// with, and opens files in it relative to its descriptor, never through a symbolic link,
// checking each is a regular file nobody else may write. It also lists the record files
// and removes temporary files their dead creators left. Errors are StorageError, with
// the path; fail() reports what the system refused, refuse() a refusal on policy.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <leaselock/detail/file/codec.hpp>
#include <leaselock/detail/posix/random.hpp>
#include <leaselock/storage_error.hpp>

namespace leaselock::detail::file {

/// Throws StorageError "leaselock: <what>[: <strerror(error)>]".
[[noreturn]] inline void fail(const std::string& what, const std::filesystem::path& path,
                              int error = 0) {
  std::string message = "leaselock: " + what;
  if (error) message += ": " + std::string(std::strerror(error));
  throw StorageError(message, path, error);
}

/// A refusal on policy: the message says why; `error` only sets code().
[[noreturn]] inline void refuse(const std::string& what, const std::filesystem::path& path,
                                int error) {
  throw StorageError("leaselock: " + what, path, error);
}

class LockDirectory {
 public:
  /// Opens (creating it, 0700 or 02770, if missing — not its parents) the directory
  /// `dir`. Throws StorageError if it cannot be created or opened, is a symbolic link or
  /// not a directory, is writable by others (or by its group, unless group_shared), or
  /// belongs to another user (unless group_shared).
  LockDirectory(std::filesystem::path dir, bool group_shared)
      : path_(std::move(dir)), group_shared_(group_shared), file_mode_(group_shared ? 0660 : 0600) {
    try {
      open();
    } catch (...) {
      if (fd_ >= 0) ::close(fd_);
      throw;
    }
  }
  LockDirectory(const LockDirectory&) = delete;
  LockDirectory& operator=(const LockDirectory&) = delete;
  /// Closes the directory; one this object created is removed again unless keep() was
  /// called (if it is still empty), so a backend that failed to start leaves nothing.
  ~LockDirectory() {
    if (fd_ >= 0) ::close(fd_);
    if (created_ && !kept_) ::rmdir(path_.c_str());
  }
  void keep() noexcept { kept_ = true; }

  const std::filesystem::path& path() const noexcept { return path_; }
  int fd() const noexcept { return fd_; }
  mode_t file_mode() const noexcept { return file_mode_; }
  std::filesystem::path file_path(std::string_view name) const { return path_ / std::string(name); }

  /// Opens `name` in the directory without following a symbolic link, and checks it is
  /// a regular file nobody else may write. -1 with errno ENOENT if it does not exist.
  int open_file(const std::string& name, int flags, struct stat& st) const {
    const int fd = ::openat(fd_, name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, file_mode_);
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
    if (!group_shared_ && st.st_uid != ::geteuid())
      close_and_fail("'" + file_path(name).string() + "' belongs to another user", EPERM);
    return fd;
  }

  bool exists(const std::string& name) const noexcept {
    struct stat st {};
    return ::fstatat(fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  }

  /// Unlinks `name` if the directory entry is still the file (device, inode).
  void unlink_if_same(const std::string& name, dev_t device, ino_t inode) const noexcept {
    struct stat st {};
    if (::fstatat(fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == device &&
        st.st_ino == inode)
      ::unlinkat(fd_, name.c_str(), 0);
  }

  /// Calls fn(name) for each record file in the directory (read first, then called).
  template <class Fn>
  void for_each_record_name(Fn&& fn) const {
    const int fd = ::dup(fd_);
    if (fd < 0) fail("cannot read lock directory '" + path_.string() + "'", path_, errno);
    DIR* stream = ::fdopendir(fd);
    if (!stream) {
      ::close(fd);
      fail("cannot read lock directory '" + path_.string() + "'", path_, errno);
    }
    ::rewinddir(stream);
    struct Closer {
      DIR* stream;
      ~Closer() { ::closedir(stream); }
    } closer{stream};
    std::vector<std::string> names;
    while (const dirent* entry = ::readdir(stream)) {
      const std::string_view name(entry->d_name);
      if (is_record_name(name)) names.emplace_back(name);
    }
    for (const std::string& name : names) fn(name);
  }

  /// Removes the temporary files (".tmp-<pid>-...") of creators that died before linking
  /// them. Returns how many it removed.
  std::size_t remove_stale_temporaries() const {
    std::size_t removed = 0;
    const int fd = ::dup(fd_);
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
      if (::fstatat(fd_, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
          st.st_mtime > ::time(nullptr) - 60)
        continue;
      if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
        stale.emplace_back(entry->d_name);
    }
    ::closedir(stream);
    for (const std::string& name : stale) removed += ::unlinkat(fd_, name.c_str(), 0) == 0;
    return removed;
  }

 private:
  void open() {
    if (path_.empty()) fail("the lock directory path is empty", path_, EINVAL);
    const mode_t dir_mode = group_shared_ ? 02770 : 0700;
    const bool created = ::mkdir(path_.c_str(), dir_mode) == 0;
    created_ = created;
    if (!created && errno != EEXIST)
      fail("cannot create lock directory '" + path_.string() + "'", path_, errno);
    fd_ = ::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd_ < 0) {
      const int error = errno;
      struct stat st {};
      if (::lstat(path_.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
        refuse("lock directory '" + path_.string() + "' is a symbolic link; refusing to follow it",
               path_, ELOOP);
      fail("cannot open lock directory '" + path_.string() + "'", path_, error);
    }
    // mkdir's mode passes through the umask and drops the set-group-id bit.
    if (created && ::fchmod(fd_, dir_mode) != 0)
      fail("cannot set the mode of lock directory '" + path_.string() + "'", path_, errno);
    struct stat st {};
    if (::fstat(fd_, &st) != 0) fail("cannot stat '" + path_.string() + "'", path_, errno);
    if (st.st_mode & S_IWOTH)
      refuse("lock directory '" + path_.string() +
                 "' is writable by others; use a directory only its owner (or group) can write",
             path_, EPERM);
    if (!group_shared_ && (st.st_mode & S_IWGRP))
      refuse("lock directory '" + path_.string() +
                 "' is writable by its group; pass group_shared = true to share it",
             path_, EPERM);
    if (!group_shared_ && st.st_uid != ::geteuid())
      refuse("lock directory '" + path_.string() + "' belongs to another user (uid " +
                 std::to_string(st.st_uid) + ")",
             path_, EPERM);
  }

  std::filesystem::path path_;
  bool group_shared_;
  mode_t file_mode_;
  int fd_ = -1;
  bool created_ = false;
  bool kept_ = false;
};

/// Allocates the first `size` bytes of the open file `fd` of `directory`, growing it if
/// shorter, so that writing them through a mapping cannot fail (SIGBUS). StorageError
/// (ENOSPC, EDQUOT...) naming `what` if the file system has no room; then the file's
/// size is unchanged.
inline void allocate_file(const LockDirectory& directory, int fd, std::size_t size,
                          const std::string& what) {
  int error = 0;
  do {
    error = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
  } while (error == EINTR);
  if (error)
    fail("no room for " + what + " (" + std::to_string(size) + " bytes) in '" +
             directory.path().string() + "'",
         directory.path(), error);
}

/// A new file of the directory under a temporary name (".tmp-<pid>-<random>"), to be
/// written whole and then linked into place; unlinked (and closed) when it goes, so a
/// failure leaves nothing behind. remove_stale_temporaries() removes those of creators
/// that died.
class TemporaryFile {
 public:
  /// A temporary file for the file `name` will be (named in errors).
  TemporaryFile(const LockDirectory& directory, const std::string& name) : directory_(directory) {
    std::uint64_t random = 0;
    posix::fill_random(&random, sizeof random);
    std::snprintf(name_, sizeof name_, ".tmp-%u-%016llx", static_cast<unsigned>(::getpid()),
                  static_cast<unsigned long long>(random));
    fd_ = ::openat(directory.fd(), name_, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                   directory.file_mode());
    if (fd_ < 0)
      fail("cannot open '" + directory.file_path(name).string() + "'", directory.file_path(name),
           errno);
    (void)::fchmod(fd_, directory.file_mode());
  }
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;
  ~TemporaryFile() {
    ::close(fd_);
    ::unlinkat(directory_.fd(), name_, 0);
  }

  int fd() const noexcept { return fd_; }

  /// Allocates the file's first `size` bytes (so that writing them through a mapping
  /// cannot fail); StorageError (ENOSPC, EDQUOT...) if the file system has no room.
  void allocate(std::size_t size) const { allocate_file(directory_, fd_, size, "a new file"); }

  /// Links the file as `name`; false if `name` exists already.
  bool link_as(const std::string& name) const {
    if (::linkat(directory_.fd(), name_, directory_.fd(), name.c_str(), 0) == 0) return true;
    if (errno == EEXIST) return false;
    fail("cannot create '" + directory_.file_path(name).string() + "'", directory_.file_path(name),
         errno);
  }

 private:
  const LockDirectory& directory_;
  char name_[64];
  int fd_ = -1;
};

}  // namespace leaselock::detail::file
