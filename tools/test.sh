#!/usr/bin/env bash
# tools/test.sh — leaselock's whole test run, from a fresh Debian/Ubuntu machine.
#
#   ./tools/test.sh                 # formatting + presets debug asan tsan clang gcc-cxx20 fuzz
#   ./tools/test.sh --quick         # formatting + the debug preset only, no PostgreSQL
#   ./tools/test.sh tsan clang      # formatting + the presets named (see CMakePresets.json)
#
# Missing tools are installed with apt-get (as root, or through sudo). Each preset is
# configured, built and tested in build/<preset>; a summary at the end shows what
# passed. The exit status is 0 only if everything passed. The PostgreSQL suites run in
# the debug, asan and tsan presets against a throwaway server (tools/postgres_cluster.sh)
# on loopback. (The preset clang-cxx20 exists for runs by hand: `./tools/test.sh clang-cxx20`.)
# Environment: LEASELOCK_JOBS = parallel build and test jobs (default: number of CPUs).
set -u -o pipefail

cd "$(dirname "$0")/.." || exit 2

all_presets=(debug asan tsan clang gcc-cxx20 fuzz)
presets=()
for arg in "$@"; do
  case "$arg" in
    --quick)
      presets=(debug)
      quick=1
      ;;
    -h | --help)
      sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    -*)
      echo "test.sh: unknown option $arg (try --help)" >&2
      exit 2
      ;;
    *) presets+=("$arg") ;;
  esac
done
[ ${#presets[@]} -gt 0 ] || presets=("${all_presets[@]}")
jobs=${LEASELOCK_JOBS:-$(nproc 2>/dev/null || echo 2)}

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
say() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }

# --- 1. Tools. ---------------------------------------------------------------------------
# What the tests need, one package a line: the Debian package, then what shows it is
# already there (a command, or a file pattern). A new dependency is one more line.
source tools/packages.sh
require cmake cmake
require ninja-build ninja
require g++ g++
require clang clang++
require clang-format clang-format
require pkg-config pkg-config # the pkg-config consumer test
require doctest-dev /usr/lib/cmake/doctest/doctestConfig.cmake \
  /usr/local/lib/cmake/doctest/doctestConfig.cmake '/usr/lib/*/cmake/doctest/doctestConfig.cmake' \
  /usr/share/doctest/cmake/doctestConfig.cmake
# The leaselock command (cli/) reads and writes JSON; its tests (tests/cli/) run in bash
# and read JSON with python3.
require nlohmann-json3-dev /usr/include/nlohmann/json.hpp /usr/local/include/nlohmann/json.hpp
require python3 python3
# The MCP server's tests (tests/mcp/) drive it with the MCP SDK's client, on node; the
# SDK itself is installed by the tests (npm, into the build tree).
require nodejs node
require npm npm
# PostgreSQL: the server for the throwaway test cluster, libpq for PostgresBackend.
require postgresql '/usr/lib/postgresql/*/bin/initdb'
require libpq-dev /usr/include/postgresql/libpq-fe.h
# The multi-host chaos test's hosts are network namespaces with veth links (as root).
require iproute2 ip
# PgBouncer, which the PostgreSQL suite starts in front of that server (tools/pgbouncer.sh).
require pgbouncer pgbouncer /usr/sbin/pgbouncer
# libFuzzer's runtime (the fuzz preset) comes with clang's runtime libraries.
require libclang-rt-dev '/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a' \
  '/usr/lib/llvm-*/lib/clang/*/lib/*/libclang_rt.fuzzer.a'
# The Windows build test: a MinGW-w64 cross compiler, and wine to run what it built.
require g++-mingw-w64-x86-64-posix x86_64-w64-mingw32-g++-posix
require wine64 /usr/lib/wine/wine64 wine64
if ! install_required; then
  echo "test.sh: could not install ${required_packages[*]}" >&2
  exit 2
fi

# CMakePresets.json (version 3) needs CMake 3.21 or newer.
cmake_version=$(cmake --version | sed -n 's/^cmake version \([0-9]*\.[0-9]*\).*/\1/p')
if [ "$(printf '%s\n' 3.21 "$cmake_version" | sort -V | head -n 1)" != 3.21 ]; then
  echo "test.sh: CMake $cmake_version is too old for the presets; 3.21 or newer is needed" >&2
  exit 2
fi

# --- 2. Formatting. ----------------------------------------------------------------------
results=()
failed=0
record() { # name, status, seconds
  results+=("$(printf '%-14s %-32s %5ss' "$1" "$2" "$3")")
  case "$2" in passed*) ;; *) failed=1 ;; esac
}

say "Formatting (clang-format --dry-run --Werror)"
start=$SECONDS
mapfile -t sources < <(find include cli tests examples bench -type f \
  \( -name '*.hpp' -o -name '*.cpp' \) 2>/dev/null | sort)
if [ ${#sources[@]} -eq 0 ]; then
  record format "passed (no files)" 0
elif clang-format --dry-run --Werror "${sources[@]}"; then
  record format "passed (${#sources[@]} files)" $((SECONDS - start))
else
  echo "Fix with: clang-format -i <the files above>"
  record format "FAILED" $((SECONDS - start))
  format_failed=1
fi

# --- 3. A throwaway PostgreSQL server for the PostgreSQL suites. --------------------------
postgres_args=()
if [ -n "${quick:-}" ]; then
  postgres_args=(-DLEASELOCK_TEST_POSTGRES=OFF)
  say "PostgreSQL suites SKIPPED (--quick): run ./tools/test.sh without --quick to include them"
else
  say "Starting a throwaway PostgreSQL server"
  postgres_dir="/tmp/leaselock-postgres-$$"  # /tmp: reachable by the server's user
  if postgres_env=$(tools/postgres_cluster.sh start "$postgres_dir"); then
    eval "$postgres_env"
    trap 'tools/postgres_cluster.sh stop "$postgres_dir"' EXIT
  else
    echo "test.sh: could not start PostgreSQL: the PostgreSQL suites will fail" >&2
  fi
fi

# --- 4. Presets: configure, build, test. -------------------------------------------------
# Test counts over every preset (a preset that does not build counts as one failure).
tests_passed=0
tests_failed=${format_failed:-0}
for preset in "${presets[@]}"; do
  start=$SECONDS
  say "Preset $preset: configure"
  if ! cmake --preset "$preset" "${postgres_args[@]}"; then
    record "$preset" "FAILED at configure" $((SECONDS - start))
    tests_failed=$((tests_failed + 1))
    continue
  fi
  say "Preset $preset: build"
  if ! cmake --build --preset "$preset" -j "$jobs"; then
    record "$preset" "FAILED at build" $((SECONDS - start))
    tests_failed=$((tests_failed + 1))
    continue
  fi
  say "Preset $preset: test"
  ctest_log="build/$preset/ctest-output.txt"
  ctest --preset "$preset" -j "$jobs" 2>&1 | tee "$ctest_log"
  ctest_status=${PIPESTATUS[0]}
  # ctest closes with "...% tests passed, F tests failed out of T": add them up.
  counts=$(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\1 \2/p' \
    "$ctest_log" | tail -n 1)
  if [ -n "$counts" ]; then
    read -r failed_here total_here <<<"$counts"
    tests_passed=$((tests_passed + total_here - failed_here))
    tests_failed=$((tests_failed + failed_here))
  fi
  if [ "$ctest_status" -ne 0 ]; then
    [ -n "$counts" ] || tests_failed=$((tests_failed + 1))
    record "$preset" "FAILED at test" $((SECONDS - start))
    continue
  fi
  record "$preset" "passed" $((SECONDS - start))
done

# --- 5. Summary. -------------------------------------------------------------------------
say "Summary"
printf '  %s\n' "${results[@]}"
[ -z "${quick:-}" ] || echo "  NOTE: the PostgreSQL suites were SKIPPED (--quick)."
if [ "$failed" -ne 0 ]; then
  echo "Some checks FAILED (logs above; build trees in build/<preset>)."
  echo "$tests_passed passed, $tests_failed failed"
  exit 1
fi
echo "All checks passed."
echo "$tests_passed passed, $tests_failed failed"
