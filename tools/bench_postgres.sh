#!/usr/bin/env bash
# tools/bench_postgres.sh — runs bench/bench_postgres.cpp against a throwaway PostgreSQL
# server (tools/postgres_cluster.sh) and, where redis-server is installed, a throwaway
# Redis (no persistence), both on loopback; stops them afterwards.
#
#   cmake --preset release && cmake --build --preset release --target bench_postgres
#   tools/bench_postgres.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
bench=build/release/bench/bench_postgres
[ -x "$bench" ] || { echo "bench_postgres.sh: build $bench first (release preset)" >&2; exit 2; }

dir="/tmp/leaselock-bench-postgres-$$"
eval "$(tools/postgres_cluster.sh start "$dir")"
redis_pid=""
cleanup() {
  [ -z "$redis_pid" ] || kill "$redis_pid" 2>/dev/null || true
  tools/postgres_cluster.sh stop "$dir"
}
trap cleanup EXIT
export LEASELOCK_BENCH_POSTGRES="$LEASELOCK_TEST_POSTGRES"
if command -v redis-server >/dev/null 2>&1; then
  port=$((30000 + RANDOM % 20000))
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    >/dev/null 2>&1 &
  redis_pid=$!
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  export LEASELOCK_BENCH_REDIS_PORT="$port"
fi
"$bench" "$@"
