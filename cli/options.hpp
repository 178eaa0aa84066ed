// cli/options.hpp — the command line's argument parser and the options every subcommand
// shares (COMMON in DESIGN.md: --dir, --postgres, --owner, --json).
//
// Each subcommand declares its flags on an ArgParser, adds the common ones with
// add_common(), and parses. Anything it does not know is a UsageError naming the
// subcommand's --help. Long options take `--name VALUE` or `--name=VALUE`; short ones
// `-w 5` or `-w5`, and boolean short flags combine (`-xn`). `--` ends the options (run:
// the command follows). `-h`/`--help` anywhere asks for the subcommand's help.
//
// @code
//   CommonOptions common;
//   bool shared = false;
//   ArgParser parser("status", kStatusHelp, common);   // kStatusHelp: usage + own options
//   parser.flag({"-s", "--shared"}, [&] { shared = true; });
//   const std::optional<ParsedArgs> args = parser.parse(arguments);
//   if (!args) return exit_code::ok;                    // --help was printed
// @endcode
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <leaselock/limits.hpp>
#include <leaselock/token.hpp>

#include "errors.hpp"

namespace leaselock::cli {

/// The options every subcommand takes, resolved against the environment.
struct CommonOptions {
  /// The lock directory (--dir, else $LEASELOCK_DIR, else default_lock_directory()).
  std::string dir;
  /// A PostgreSQL connection URL (--postgres, else $LEASELOCK_POSTGRES); empty: none.
  std::string postgres;
  /// The owner recorded with the lease (--owner, else $LEASELOCK_OWNER); empty: the
  /// subcommand's default.
  std::string owner;
  /// --json: one JSON object on stdout instead of text.
  bool json = false;
};

/// What parse() found.
struct ParsedArgs {
  std::vector<std::string> positional;
  /// Whether `--` was given, and everything after it.
  bool dashes = false;
  std::vector<std::string> after_dashes;
};

/// The COMMON part of every subcommand's --help.
inline constexpr const char* kCommonOptionsHelp =
    "\n"
    "COMMON options:\n"
    "  --dir DIR       lock directory (default: $LEASELOCK_DIR, else /tmp/leaselock-UID)\n"
    "  --postgres URL  PostgreSQL storage instead (default: $LEASELOCK_POSTGRES)\n"
    "  --owner NAME    owner shown in status (default: $LEASELOCK_OWNER, else PID@HOST)\n"
    "  --json          print one JSON object on stdout\n";

/// /tmp/leaselock-UID: the same for every process of one user, whatever its session.
inline std::string default_lock_directory() {
  return "/tmp/leaselock-" + std::to_string(static_cast<unsigned long>(::getuid()));
}

class ArgParser {
 public:
  /// `command` names the subcommand in messages ("run" -> "see 'leaselock run --help'");
  /// `help` is its usage and own options, printed (with COMMON's) for -h/--help. The
  /// COMMON options go into `common`.
  ArgParser(std::string command, std::string help, CommonOptions& common)
      : command_(std::move(command)), help_(std::move(help)) {
    add_common(common);
  }

  /// A flag without a value.
  void flag(std::initializer_list<std::string_view> names, std::function<void()> on) {
    specs_.push_back(Spec{std::vector<std::string>(names.begin(), names.end()), false,
                          [on = std::move(on)](const std::string&) { on(); }});
  }

  /// An option with a value; `on` may throw UsageError for a bad one.
  void option(std::initializer_list<std::string_view> names,
              std::function<void(const std::string&)> on) {
    specs_.push_back(
        Spec{std::vector<std::string>(names.begin(), names.end()), true, std::move(on)});
  }

  /// Parses `args` (the words after the subcommand's name); nullopt if they asked for
  /// --help, which was printed on stdout. Throws UsageError.
  std::optional<ParsedArgs> parse(const std::vector<std::string>& args) {
    ParsedArgs parsed;
    bool help = false;
    scan(args, parsed, help);
    if (help) {
      std::fputs(help_.c_str(), stdout);
      std::fputs(kCommonOptionsHelp, stdout);
      std::fflush(stdout);
      return std::nullopt;
    }
    resolve_environment();
    return parsed;
  }

  /// A UsageError for an unexpected or missing argument, pointing to --help.
  UsageError usage(const std::string& what) const {
    return UsageError(what + " (see 'leaselock " + command_ + " --help')");
  }

  const std::string& command() const noexcept { return command_; }

 private:
  struct Spec {
    std::vector<std::string> names;
    bool takes_value;
    std::function<void(const std::string&)> on;
  };

  // --dir, --postgres, --owner and --json into `common`; the environment fills in what
  // the command line leaves out when parse() ends.
  void add_common(CommonOptions& common) {
    common_ = &common;
    option({"--dir"}, [this](const std::string& value) {
      if (value.empty()) throw UsageError("--dir needs a directory path (e.g. --dir /tmp/locks)");
      common_->dir = value;
      dir_given_ = true;
    });
    option({"--postgres"}, [this](const std::string& value) {
      if (value.empty())
        throw UsageError("--postgres needs a connection URL (e.g. postgresql://user@host/db)");
      common_->postgres = value;
      postgres_given_ = true;
    });
    option({"--owner"},
           [this](const std::string& value) { common_->owner = checked_owner(value, "--owner"); });
    flag({"--json"}, [this] { common_->json = true; });
  }

  void scan(const std::vector<std::string>& args, ParsedArgs& parsed, bool& help) {
    for (std::size_t i = 0; i < args.size(); ++i) {
      const std::string& arg = args[i];
      if (arg == "--") {
        parsed.dashes = true;
        parsed.after_dashes.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
        break;
      }
      if (arg == "-h" || arg == "--help") {
        help = true;
        continue;
      }
      if (arg.size() < 2 || arg[0] != '-') {
        parsed.positional.push_back(arg);
        continue;
      }
      const auto next_value = [&](const std::string& name) -> std::string {
        if (i + 1 >= args.size())
          throw UsageError(name + " needs a value (see 'leaselock " + command_ + " --help')");
        return args[++i];
      };
      if (arg[1] == '-') {  // --name or --name=value
        const std::size_t equals = arg.find('=');
        const std::string name = arg.substr(0, equals);
        const Spec& spec = find(name);
        if (!spec.takes_value) {
          if (equals != std::string::npos)
            throw UsageError(name + " takes no value (see 'leaselock " + command_ + " --help')");
          spec.on("");
        } else {
          spec.on(equals != std::string::npos ? arg.substr(equals + 1) : next_value(name));
        }
        continue;
      }
      // -x, -xn, -w5, -w 5
      for (std::size_t c = 1; c < arg.size(); ++c) {
        const std::string name{'-', arg[c]};
        const Spec& spec = find(name);
        if (!spec.takes_value) {
          spec.on("");
          continue;
        }
        spec.on(c + 1 < arg.size() ? arg.substr(c + 1) : next_value(name));
        break;
      }
    }
  }

  const Spec& find(const std::string& name) const {
    for (const Spec& spec : specs_)
      for (const std::string& known : spec.names)
        if (known == name) return spec;
    throw UsageError("unknown option '" + name + "' (see 'leaselock " + command_ + " --help')");
  }

  static std::string checked_owner(const std::string& owner, const char* source) {
    if (owner.size() > max_owner_size)
      throw UsageError(std::string(source) + " is " + std::to_string(owner.size()) +
                       " bytes, over the limit of " + std::to_string(max_owner_size) +
                       " (use a shorter name)");
    return owner;
  }

  void resolve_environment() {
    if (dir_given_ && postgres_given_)
      throw UsageError("--dir and --postgres both given; choose one storage");
    if (!dir_given_ && !postgres_given_) {
      const char* dir = std::getenv("LEASELOCK_DIR");
      const char* postgres = std::getenv("LEASELOCK_POSTGRES");
      if (dir && *dir && postgres && *postgres)
        throw UsageError(
            "LEASELOCK_DIR and LEASELOCK_POSTGRES are both set; unset one, or pass --dir or "
            "--postgres");
      if (postgres && *postgres) {
        common_->postgres = postgres;
      } else {
        common_->dir = dir && *dir ? std::string(dir) : default_lock_directory();
      }
    }
    if (common_->owner.empty()) {
      if (const char* owner = std::getenv("LEASELOCK_OWNER"))
        common_->owner = checked_owner(owner, "LEASELOCK_OWNER");
    }
  }

  std::string command_;
  std::string help_;
  std::vector<Spec> specs_;
  CommonOptions* common_ = nullptr;
  bool dir_given_ = false;
  bool postgres_given_ = false;
};

/// A KEY argument, checked against the library's limits before anything is opened.
inline const std::string& key_argument(const std::string& key) {
  if (key.empty()) throw UsageError("the key is empty (give a non-empty KEY, e.g. a file path)");
  if (key.size() > max_key_size)
    throw UsageError("key is " + std::to_string(key.size()) + " bytes, over the limit of " +
                     std::to_string(max_key_size) + " (use a shorter key, e.g. a hash of it)");
  return key;
}

/// A TOKEN argument: the 32 hex digits acquire printed.
inline Token token_argument(const std::string& text) {
  if (auto token = Token::parse(text)) return *token;
  throw UsageError("malformed token '" + text.substr(0, 40) + (text.size() > 40 ? "..." : "") +
                   "' (expected the 32 hex digits that 'leaselock acquire' printed)");
}

}  // namespace leaselock::cli
