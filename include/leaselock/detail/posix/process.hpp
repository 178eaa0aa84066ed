// leaselock/detail/posix/process.hpp — who this process is: the default lease owner.
#pragma once

#include <unistd.h>

#include <string>

namespace leaselock::detail::posix {

/// "pid@hostname" of the calling process (hostname cut to keep it short).
inline std::string process_owner() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::string owner = std::to_string(static_cast<long>(::getpid()));
  owner += '@';
  owner += host[0] ? host : "localhost";
  return owner;
}

}  // namespace leaselock::detail::posix
