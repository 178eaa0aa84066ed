// cli/commands.hpp — the subcommands main() dispatches to.
//
// Every subcommand is a function `int NAME_command(const Args& args)`: `args` are the
// words after its name; it parses them with an ArgParser (options.hpp, add_common() for
// COMMON), returns its exit code (errors.hpp), and throws UsageError or
// StorageUnavailable for main() to report. A new subcommand declares its function in a
// header of its own and joins the table in main.cpp.
#pragma once

#include <string>
#include <vector>

namespace leaselock::cli {

using Args = std::vector<std::string>;

int run_command(const Args& args);      // run.cpp
int acquire_command(const Args& args);  // tokens.cpp
int release_command(const Args& args);  // tokens.cpp
int renew_command(const Args& args);    // tokens.cpp
int status_command(const Args& args);   // status.cpp
int list_command(const Args& args);     // status.cpp

}  // namespace leaselock::cli
