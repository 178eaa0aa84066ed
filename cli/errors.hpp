// cli/errors.hpp — the exit codes of the leaselock command and the errors that map to them.
//
// A subcommand throws UsageError for bad input (exit 64) and StorageUnavailable when the
// lock storage cannot be used (exit 69); main() prints the message as one line on stderr,
// prefixed with the subcommand's name. Messages say what is wrong and how to fix it.
#pragma once

#include <stdexcept>
#include <string>

namespace leaselock::cli {

namespace exit_code {
inline constexpr int ok = 0;
inline constexpr int usage = 64;        // EX_USAGE: bad input, nothing changed
inline constexpr int unavailable = 69;  // EX_UNAVAILABLE: storage unusable or unreachable
inline constexpr int busy = 75;         // EX_TEMPFAIL: busy or timed out (-E changes it)
inline constexpr int lost = 76;         // the lease was lost while run's command ran
inline constexpr int internal = 70;     // EX_SOFTWARE: an unexpected failure
inline constexpr int cannot_execute = 126;
inline constexpr int not_found = 127;
}  // namespace exit_code

/// Bad input: an unknown flag, a bad duration, a malformed token... Exit 64.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The lock storage cannot be used (directory unusable, backend not built). Exit 69.
class StorageUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace leaselock::cli
