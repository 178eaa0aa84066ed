#!/usr/bin/env bash
# tools/demo.sh — the leaselock demo, from a fresh Debian/Ubuntu machine.
#
#   ./tools/demo.sh [agents] [edits-per-agent]
#
# Builds the examples (installing g++ and cmake with apt-get if they are missing) and
# runs them: first the main demo, agent processes editing one shared JSON file without and
# with leases (one agent killed while it holds the lease, one stalled past its TTL); then
# agent threads doing the same, a lock handed across requests by token, and a long job
# kept alive that notices when it loses its lease; last, shell agents stepping through
# `leaselock run`, without and with leases. [agents] (at least 2) and
# [edits-per-agent] go to both agent demos.
set -euo pipefail
cd "$(dirname "$0")/.."

source tools/packages.sh
require cmake cmake
require g++ g++
require make make
require nlohmann-json3-dev /usr/include/nlohmann/json.hpp /usr/local/include/nlohmann/json.hpp
install_required || exit 2

echo "==> Building the examples (build/demo)"
cmake -S . -B build/demo -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=Release \
  -DLEASELOCK_BUILD_TESTS=OFF -DLEASELOCK_BUILD_BENCH=OFF -DLEASELOCK_INSTALL=OFF >/dev/null
cmake --build build/demo -j "$(nproc 2>/dev/null || echo 2)" -- --quiet \
  agents_json shared_file_threads token_across_calls keep_alive leaselock_cli

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

# Shell agents: every step a new process, each read-modify-write of one counter file
# wrapped in `leaselock run` (or not).
shell_agents() {
  local leaselock=$PWD/build/demo/cli/leaselock work mode agent
  work=$(mktemp -d)
  export LEASELOCK_DIR="$work/locks"
  local step='n=$(cat counter); sleep 0.002; echo $((n + 1)) > counter'
  cd "$work"
  for mode in without with; do
    echo 0 >counter
    for agent in 1 2 3 4; do
      for _ in $(seq 25); do
        if [ $mode = with ]; then
          "$leaselock" run -w 30s counter -- sh -c "$step"
        else
          sh -c "$step"
        fi
      done &
    done
    wait
    printf '%-14s: %3d of 100 steps kept\n' "$mode leases" "$(cat counter)"
  done
  echo '$ leaselock run -n counter -c "sleep 1" & leaselock run -n counter -- true'
  "$leaselock" run -n counter -c 'sleep 1' &
  sleep 0.2
  "$leaselock" run -n counter -- true || echo "exit $? (busy: another agent holds it)"
  "$leaselock" list
  wait
  cd - >/dev/null
  rm -rf "$work"
}
run "Shell agents: 4 loops x 25 steps through 'leaselock run'" shell_agents
