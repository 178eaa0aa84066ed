#!/usr/bin/env bash
# tests/postgres/chaos.sh — the multi-host chaos test of PostgresBackend.
#
#   tests/postgres/chaos.sh PROGRAM [SECONDS]     # as root; PROGRAM: leaselock_postgres_chaos
#
# LEASELOCK_CHAOS_KEEP=DIR keeps a copy of the logs there (the checker runs again on
# them with `PROGRAM check --dir DIR --cut-host h3`).
#
# Three test hosts, each a network namespace with a veth link to a bridge in the root
# namespace (a private /24, on this machine only), run three workers each; all share ONE
# PostgreSQL server of this test's own (tools/postgres_cluster.sh), listening on the
# bridge. For SECONDS (default 24) the driver terminates random client sessions
# (pg_terminate_backend), restarts the server once (pg_ctl restart -m fast) at a quarter
# of the run, and at half of it cuts host h3 off (its link down) for 4 s — longer than
# any TTL — then brings it back. The checker then reads every worker's log (server
# times) and fails on any exclusive overlap, repeated or out-of-order fence, or a host
# that did no work (h3: before and after its cut; every host: after the restart).
# Namespaces, links and the server are removed on exit, on failure and on interruption,
# and what a killed earlier run left behind is removed at the start.
set -euo pipefail

program=${1:-}
seconds=${2:-24}
if [ -z "$program" ] || [ ! -x "$program" ] || ! [ "$seconds" -ge 12 ] 2>/dev/null; then
  echo "usage: $0 PROGRAM [SECONDS >= 12]" >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
  echo "chaos.sh: FAILED: the test hosts are network namespaces: run as root" >&2
  exit 1
fi
command -v ip >/dev/null || { echo "chaos.sh: FAILED: ip (iproute2) is missing" >&2; exit 1; }

hosts=(h1 h2 h3)
cut_host=h3
workers_per_host=3
cut_seconds=4

tag=llc$$                     # every name this run makes starts with it
work=/tmp/leaselock-chaos-$$  # /tmp: reachable by the server's user
subnet_prefix=10.$((200 + $$ % 50)).$((($$ / 50) % 250))
server_ip=$subnet_prefix.1
worker_pids=()

# Removes the namespaces (with the veth ends in them), the bridge and the server of the
# run `$1` (a pid).
remove_run() {
  local run=$1 ns
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^llc${run}h" || true); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  ip link del "llc${run}b" 2>/dev/null || true
  if [ -d "/tmp/leaselock-chaos-$run" ]; then
    "$root/tools/postgres_cluster.sh" stop "/tmp/leaselock-chaos-$run/pg" || true
    rm -rf "/tmp/leaselock-chaos-$run"
  fi
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM HUP
  for pid in "${worker_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${worker_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" -ne 0 ] && [ -d "$work/logs" ]; then
    echo "chaos.sh: logs of the failed run:" >&2
    grep -h '^error' "$work"/logs/*.log 2>/dev/null | sort | uniq -c | sort -rn | head -n 10 >&2 || true
    tail -n 20 "$work/pg/server.log" >&2 2>/dev/null || true
  fi
  if [ -n "${LEASELOCK_CHAOS_KEEP:-}" ] && [ -d "$work/logs" ]; then
    mkdir -p "$LEASELOCK_CHAOS_KEEP" && cp "$work"/logs/* "$LEASELOCK_CHAOS_KEEP"/ || true
  fi
  remove_run $$
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# What an earlier run killed before its clean-up left behind.
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | sed -n 's/^llc\([0-9]*\)h[0-9]*$/\1/p' | sort -u); do
  kill -0 "$ns" 2>/dev/null || remove_run "$ns"
done
for dir in /tmp/leaselock-chaos-*; do
  run=${dir##*-}
  [ -d "$dir" ] && [ "$run" != $$ ] && ! kill -0 "$run" 2>/dev/null && remove_run "$run"
done

if ip -o -4 addr show | grep -q " inet $subnet_prefix\."; then
  echo "chaos.sh: FAILED: $subnet_prefix.0/24 is in use on this machine" >&2
  exit 1
fi

# --- The network: a bridge in the root namespace, one namespace per test host. ---------
ip link add "${tag}b" type bridge
ip addr add "$server_ip/24" dev "${tag}b"
ip link set "${tag}b" up
n=1
for host in "${hosts[@]}"; do
  n=$((n + 1))
  ns=${tag}${host}
  ip netns add "$ns"
  ip link add "${tag}v$n" type veth peer name eth0 netns "$ns"
  ip link set "${tag}v$n" master "${tag}b" up
  ip -n "$ns" addr add "$subnet_prefix.$n/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
done

# --- The server: this test's own, on the bridge too. ------------------------------------
mkdir -p "$work/logs"
unset LEASELOCK_TEST_POSTGRES LEASELOCK_TEST_POSTGRES_CTL  # never the suite's shared server
cluster_env=$("$root/tools/postgres_cluster.sh" start "$work/pg" --listen "127.0.0.1,$server_ip" \
  --allow "$subnet_prefix.0/24")
eval "$cluster_env"
admin=$LEASELOCK_TEST_POSTGRES
remote=${admin/host=127.0.0.1/host=$server_ip}
psql=("$(dirname "$LEASELOCK_TEST_POSTGRES_CTL")/psql" -XAtq -v ON_ERROR_STOP=1)
server_now() {
  "${psql[@]}" "$admin" -c \
    "SELECT (extract(epoch from clock_timestamp()) * 1000000)::bigint * 1000"
}
event() { echo "event $1 $(server_now)" >>"$work/logs/events"; }
schema=chaos

# --- The workers. -------------------------------------------------------------------------
run_seconds=$((seconds + 20))  # they also stop by themselves if this script is killed
for host in "${hosts[@]}"; do
  for w in $(seq 1 "$workers_per_host"); do
    ip netns exec "${tag}${host}" "$program" worker --conninfo "$remote" --schema "$schema" \
      --host "$host" --name "${host}_$w" --seconds "$run_seconds" \
      --log "$work/logs/${host}_$w.log" &
    worker_pids+=($!)
  done
done
# Until every host has held something.
for _ in $(seq 1 150); do
  busy=0
  for host in "${hosts[@]}"; do
    grep -qs '^lease' "$work"/logs/"${host}"_*.log && busy=$((busy + 1))
  done
  [ "$busy" -eq ${#hosts[@]} ] && break
  sleep 0.1
done

# --- The chaos. ---------------------------------------------------------------------------
kill_some() {
  local killed
  killed=$("${psql[@]}" "$admin" -c "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) AS t
      FROM pg_stat_activity WHERE application_name LIKE 'chaos%'
      ORDER BY random() LIMIT 1 + (random() * 2)::int) s WHERE t" 2>/dev/null) || return 0
  echo "kill sessions $killed" >>"$work/logs/events"
}
start=$SECONDS
restart_at=$((seconds / 4))
cut_at=$((seconds / 2))
restarted=0
cut=0
while [ $((SECONDS - start)) -lt "$seconds" ]; do
  elapsed=$((SECONDS - start))
  if [ "$restarted" -eq 0 ] && [ "$elapsed" -ge "$restart_at" ]; then
    event restart_begin
    "$root/tools/postgres_cluster.sh" restart "$work/pg"
    event restart_end
    restarted=1
  elif [ "$cut" -eq 0 ] && [ "$elapsed" -ge "$cut_at" ]; then
    event cut_begin
    ip -n "${tag}${cut_host}" link set eth0 down
    sleep "$cut_seconds"
    ip -n "${tag}${cut_host}" link set eth0 up
    event cut_end
    cut=1
  else
    kill_some
  fi
  sleep "0.$((3 + RANDOM % 7))"
done
for pid in "${worker_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
failed_workers=0
for pid in "${worker_pids[@]}"; do wait "$pid" || failed_workers=$((failed_workers + 1)); done
worker_pids=()

checked=0
"$program" check --dir "$work/logs" --cut-host "$cut_host" || checked=$?
if [ "$failed_workers" -ne 0 ]; then
  echo "FAILED: $failed_workers workers did not exit cleanly (their messages are above)"
  exit 1
fi
exit "$checked"
