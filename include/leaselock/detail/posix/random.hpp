// leaselock/detail/posix/random.hpp — bytes from the operating system's CSPRNG.
#pragma once

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <stdexcept>
#include <system_error>

namespace leaselock::detail::posix {

/// Fills `size` bytes at `out` from getrandom(2), falling back to /dev/urandom where the
/// system call is missing. Throws std::system_error if neither can deliver.
inline void fill_random(void* out, std::size_t size) {
  auto* bytes = static_cast<unsigned char*>(out);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t got = ::getrandom(bytes + done, size - done, 0);
    if (got > 0) {
      done += static_cast<std::size_t>(got);
      continue;
    }
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && errno == ENOSYS) break;
    throw std::system_error(errno, std::generic_category(), "leaselock: getrandom failed");
  }
  if (done == size) return;
  const int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw std::system_error(errno, std::generic_category(), "leaselock: open /dev/urandom");
  while (done < size) {
    const ssize_t got = ::read(fd, bytes + done, size - done);
    if (got > 0) {
      done += static_cast<std::size_t>(got);
    } else if (!(got < 0 && errno == EINTR)) {
      const int error = got < 0 ? errno : EIO;
      ::close(fd);
      throw std::system_error(error, std::generic_category(), "leaselock: read /dev/urandom");
    }
  }
  ::close(fd);
}

}  // namespace leaselock::detail::posix
