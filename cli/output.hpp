// cli/output.hpp — writing results: one JSON object per line on stdout, or text.
#pragma once

#include <cstdio>
#include <string>

#include "json_out.hpp"

namespace leaselock::cli {

/// Writes `text` and a newline to stdout and flushes it (a caller may exit right after).
inline void print_line(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

inline void print_json(const Json& object) { print_line(object.dump()); }

}  // namespace leaselock::cli
