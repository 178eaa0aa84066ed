// bench/bench_common.hpp — helpers both benchmark programs share: the command line,
// keeping the optimizer honest, the clock, statistics (median, percentile), the timing
// loop, interleaved AB/BA repetitions, number formatting, test keys, and what the machine
// is (CPU model, load average).
#pragma once

#include <time.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

// --- command line ------------------------------------------------------------------------

/// Reads the arguments: each must be one of `flags`, and on_flag(flag) is called for it in
/// order. At any other argument, prints "usage: <program> [flag] ..." to stderr and
/// returns false.
template <class OnFlag>
bool parse_flags(int argc, char** argv, std::initializer_list<const char*> flags,
                 OnFlag&& on_flag) {
  for (int i = 1; i < argc; ++i) {
    const auto flag = std::find_if(flags.begin(), flags.end(),
                                   [&](const char* f) { return std::strcmp(argv[i], f) == 0; });
    if (flag == flags.end()) {
      std::string usage;
      for (const char* f : flags) usage += std::string(" [") + f + "]";
      std::fprintf(stderr, "usage: %s%s\n", argv[0], usage.c_str());
      return false;
    }
    on_flag(std::string_view(*flag));
  }
  return true;
}

// --- keeping the optimizer honest; time ------------------------------------------------

template <class T>
inline void keep(const T& value) {
  __asm__ __volatile__("" : : "r,m"(value) : "memory");
}

/// CLOCK_MONOTONIC in ns: one clock for every process of the machine.
inline std::int64_t mono_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + static_cast<std::int64_t>(ts.tv_nsec);
}

// --- statistics --------------------------------------------------------------------------

inline double median(std::vector<double> values) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2.0;
}

/// Nearest-rank percentile (p in [0, 1]) of `values` (sorted in place).
inline double percentile(std::vector<std::int64_t>& values, double p) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const double position = p * static_cast<double>(values.size() - 1);
  return static_cast<double>(values[static_cast<std::size_t>(position + 0.5)]);
}

// --- timing harnesses ------------------------------------------------------------------

/// ns per call of `op`, over about `seconds` of wall time, after a short warm-up; `op` runs
/// in batches of `Batch` calls between readings of the clock.
template <int Batch, class Op>
double ns_per_op(Op& op, double seconds) {
  for (int i = 0; i < Batch; ++i) op();
  const auto budget = static_cast<std::int64_t>(seconds * 1e9);
  std::uint64_t ops = 0;
  const std::int64_t start = mono_ns();
  std::int64_t now = start;
  do {
    for (int i = 0; i < Batch; ++i) op();
    ops += Batch;
    now = mono_ns();
  } while (now - start < budget);
  return static_cast<double>(now - start) / static_cast<double>(ops);
}

/// Runs `a` and `b` `reps` times each, alternating AB and BA so drift hits both alike.
struct Pair {
  std::vector<double> a, b;
  double ma() const { return median(a); }
  double mb() const { return median(b); }
};

template <class A, class B>
Pair interleaved(int reps, A&& run_a, B&& run_b) {
  Pair pair;
  for (int r = 0; r < reps; ++r) {
    if (r % 2 == 0) {
      pair.a.push_back(run_a());
      pair.b.push_back(run_b());
    } else {
      pair.b.push_back(run_b());
      pair.a.push_back(run_a());
    }
  }
  return pair;
}

// --- output, keys, machine -------------------------------------------------------------

inline std::string fmt(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

/// `n` distinct 21-character keys (for n < 10^7): "repo/src/k0000000.cpp", ...
inline std::vector<std::string> make_keys(std::size_t n) {
  std::vector<std::string> keys;
  keys.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::string number = std::to_string(i);
    if (number.size() < 7) number.insert(0, 7 - number.size(), '0');
    keys.push_back("repo/src/k" + number + ".cpp");  // 21 chars for i < 10^7
  }
  return keys;
}

inline std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown CPU";
}

/// The 1- and 5-minute load averages, as /proc/loadavg prints them.
inline std::string loadavg() {
  std::ifstream file("/proc/loadavg");
  std::string one, five;
  file >> one >> five;
  return one + " " + five;
}

}  // namespace bench
