#!/usr/bin/env bash
# tools/demo.sh — the leaselock demo, from a fresh Debian/Ubuntu machine.
#
#   ./tools/demo.sh [agents] [edits-per-agent]
#
# Builds the examples (installing g++ and cmake with apt-get if they are missing) and
# runs them: first the main demo, agent processes editing one shared JSON file without and
# with leases (one agent killed while it holds the lease, one stalled past its TTL); then
# agent threads doing the same, a lock handed across requests by token, and a long job
# kept alive that notices when it loses its lease. [agents] (at least 2) and
# [edits-per-agent] go to both agent demos.
set -euo pipefail
cd "$(dirname "$0")/.."

source tools/packages.sh
require cmake cmake
require g++ g++
require make make
install_required || exit 2

echo "==> Building the examples (build/demo)"
cmake -S . -B build/demo -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=Release \
  -DLEASELOCK_BUILD_TESTS=OFF -DLEASELOCK_BUILD_BENCH=OFF -DLEASELOCK_INSTALL=OFF >/dev/null
cmake --build build/demo -j "$(nproc 2>/dev/null || echo 2)" -- --quiet \
  agents_json shared_file_threads token_across_calls keep_alive

run() {
  echo
  echo "==> $1"
  shift
  "$@"
}
run "Agent processes editing one shared JSON file" build/demo/examples/agents_json "$@"
run "Agent threads editing one shared file" build/demo/examples/shared_file_threads "$@"
run "A lock held across requests by token" build/demo/examples/token_across_calls
run "A long job with keep-alive" build/demo/examples/keep_alive
