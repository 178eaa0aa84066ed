// cli/main.cpp — the leaselock command: leases from the shell. See README "Command line".
//
// main() picks the subcommand, runs it, and turns its errors into one line on stderr and
// the exit codes of errors.hpp: UsageError and std::invalid_argument 64, StorageUnavailable
// and StorageError 69, anything else 70.
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>

#include <leaselock/storage_error.hpp>
#include <leaselock/version.hpp>

#include "backend.hpp"
#include "commands.hpp"
#include "errors.hpp"
#include "mcp/mcp_command.hpp"

namespace {

using leaselock::cli::Args;

struct Subcommand {
  const char* name;
  int (*function)(const Args&);
  const char* summary;
};

constexpr Subcommand kSubcommands[] = {
    {"run", leaselock::cli::run_command, "run a command while holding a lease on KEY"},
    {"acquire", leaselock::cli::acquire_command, "take a lease that outlives this command"},
    {"release", leaselock::cli::release_command, "give back a lease by its token"},
    {"renew", leaselock::cli::renew_command, "extend a lease by its token"},
    {"status", leaselock::cli::status_command, "show who holds KEY"},
    {"list", leaselock::cli::list_command, "show every held key (under PREFIX)"},
    {"mcp", leaselock::cli::mcp_command, "serve file locks to AI agents (MCP: stdio or HTTP)"},
};

void print_usage(std::FILE* out) {
  std::fputs(
      "usage: leaselock SUBCOMMAND [OPTIONS] ...\n"
      "\n"
      "Leases on named keys for shell scripts and agents: processes of one machine share\n"
      "them through a lock directory (--dir), processes of many through a PostgreSQL\n"
      "database (--postgres URL).\n"
      "\n"
      "subcommands:\n",
      out);
  for (const Subcommand& sub : kSubcommands)
    std::fprintf(out, "  %-8s %s\n", sub.name, sub.summary);
  std::fputs(
      "\n"
      "'leaselock SUBCOMMAND --help' shows each one's options.\n"
      "exit codes: 0 done, 75 busy or timed out, 76 lease lost, 64 usage error,\n"
      "69 storage unusable; run exits with its command's status.\n",
      out);
}

void report(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "leaselock%s%s: %s\n", command.empty() ? "" : " ", command.c_str(),
               message.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  namespace cli = leaselock::cli;
  if (argc < 2) {
    report("", "no subcommand given (try 'leaselock --help')");
    return cli::exit_code::usage;
  }
  const std::string_view first = argv[1];
  if (first == "-h" || first == "--help" || first == "help") {
    print_usage(stdout);
    return cli::exit_code::ok;
  }
  if (first == "--version") {
    std::printf("leaselock %d.%d.%d\n", LEASELOCK_VERSION_MAJOR, LEASELOCK_VERSION_MINOR,
                LEASELOCK_VERSION_PATCH);
    return cli::exit_code::ok;
  }
  const std::string command(first);
  for (const Subcommand& sub : kSubcommands) {
    if (command != sub.name) continue;
    try {
      return sub.function(Args(argv + 2, argv + argc));
    } catch (const cli::UsageError& error) {
      report(command, error.what());
      return cli::exit_code::usage;
    } catch (const std::invalid_argument& error) {
      report(command, cli::reason(error));
      return cli::exit_code::usage;
    } catch (const cli::StorageUnavailable& error) {
      report(command, error.what());
      return cli::exit_code::unavailable;
    } catch (const leaselock::StorageError& error) {
      report(command, cli::reason(error));
      return cli::exit_code::unavailable;
    } catch (const std::exception& error) {
      report(command, error.what());
      return cli::exit_code::internal;
    }
  }
  report("", "unknown subcommand '" + command + "' (try 'leaselock --help')");
  return cli::exit_code::usage;
}
