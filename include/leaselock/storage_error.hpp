// leaselock/storage_error.hpp — what a backend throws when its storage fails.
//
// StorageError names the file or directory at fault and, when the operating system
// refused something, its error code. It is thrown for an unusable lock directory
// (missing parent, read-only, writable by others, a symbolic link), a record that is
// corrupt, truncated or written on another clock, and a record that would outgrow its
// file. Nothing stored is changed by the operation that throws it.
#pragma once

#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace leaselock {

class StorageError : public std::runtime_error {
 public:
  /// `what` is the full message; `error` an errno value, or 0.
  StorageError(const std::string& what, std::filesystem::path path, int error = 0)
      : std::runtime_error(what), path_(std::move(path)), code_(error, std::generic_category()) {}

  /// The file or directory at fault.
  const std::filesystem::path& path() const noexcept { return path_; }
  /// The operating system's error, or a default (zero) code when the storage itself is
  /// at fault (corrupt data, wrong clock, ...).
  const std::error_code& code() const noexcept { return code_; }

 private:
  std::filesystem::path path_;
  std::error_code code_;
};

}  // namespace leaselock
