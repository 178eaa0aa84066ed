#!/usr/bin/env bash
# tools/bench_file.sh — the file backend's benchmark, with its peers, from a fresh
# Debian/Ubuntu machine. Not part of the tests.
#
#   ./tools/bench_file.sh             # ~1 min of measuring
#   ./tools/bench_file.sh --quick     # ~15 s (any arguments go to bench_file)
#
# Installs what is missing with apt-get (as root, or through sudo): the build tools, and
# the peers bench_file compares with — Python filelock (python3-filelock), Boost headers
# (libboost-dev: Boost.Interprocess file_lock), Node.js and npm; then `npm install
# proper-lockfile` into build/bench-peers. Then builds the release preset's bench_file
# and runs it. A peer that cannot be installed is reported by bench_file as "not
# installed"; the run goes on without it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build tools, then the peers. Node.js may come from elsewhere than Debian (its own npm
# inside): install nodejs/npm only where the commands are missing.
source tools/packages.sh
require cmake cmake
require ninja-build ninja
require g++ g++
require python3 python3
require python3-filelock '/usr/lib/python3/dist-packages/filelock/__init__.py'
require libboost-dev /usr/include/boost/interprocess/sync/file_lock.hpp
require nodejs node
require npm npm
if ! install_required; then
  # One package that cannot be had (say npm beside another Node.js) must not keep the
  # others out: try them one at a time.
  for package in "${required_packages[@]}"; do
    install_packages "$package" || echo "bench_file.sh: could not install $package; going on" >&2
  done
fi

# proper-lockfile into a scratch directory of the build tree.
peers=build/bench-peers
if command -v npm >/dev/null 2>&1 && [ ! -f "$peers/node_modules/proper-lockfile/package.json" ]; then
  echo "==> npm install proper-lockfile ($peers)"
  mkdir -p "$peers"
  [ -f "$peers/package.json" ] || echo '{ "private": true }' >"$peers/package.json"
  (cd "$peers" && npm install --no-audit --no-fund --loglevel=error proper-lockfile) ||
    echo "bench_file.sh: npm install proper-lockfile failed; going on without it" >&2
fi

echo "==> Building bench_file (build/release)"
cmake --preset release >/dev/null
cmake --build --preset release --target bench_file

# Debian's python3-filelock is for /usr/bin/python3, which may not be the python3 on PATH.
python=python3
if ! python3 -c 'import filelock' >/dev/null 2>&1 && [ -x /usr/bin/python3 ]; then
  python=/usr/bin/python3
fi

echo "==> build/release/bench/bench_file $*"
LEASELOCK_BENCH_PYTHON="$python" LEASELOCK_BENCH_NODE_PATH="$PWD/$peers/node_modules" \
  build/release/bench/bench_file "$@"
