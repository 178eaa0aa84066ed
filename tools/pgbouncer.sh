#!/usr/bin/env bash
# tools/pgbouncer.sh — a throwaway PgBouncer on loopback in front of the test server.
#
#   eval "$(tools/pgbouncer.sh start DIR [PID])"   # prints the exports for the tests
#   tools/pgbouncer.sh stop DIR
#
# `start` writes a configuration into DIR (which must not exist) for the server that
# $LEASELOCK_TEST_POSTGRES names (tools/postgres_cluster.sh prints it), starts pgbouncer
# on a free loopback port as an unprivileged user (the caller, or `nobody` when run as
# root), waits until it accepts connections and prints:
#   LEASELOCK_TEST_PGBOUNCER_SESSION      conninfo of the pooled database
#                                         leaselock_session (pool_mode = session)
#   LEASELOCK_TEST_PGBOUNCER_TRANSACTION  conninfo of leaselock_transaction
#                                         (pool_mode = transaction, ONE server connection,
#                                         so every client shares it)
#   LEASELOCK_TEST_PGBOUNCER_DIR          DIR
# Both lead to the server's database as its user. With PID, pgbouncer is also stopped
# and DIR removed once process PID has ended (a test that crashes leaves nothing behind).
set -euo pipefail

command=${1:-}
dir=${2:-}
watch=${3:-}
if [ -z "$command" ] || [ -z "$dir" ]; then
  echo "usage: $0 start DIR [PID] | stop DIR" >&2
  exit 2
fi
pgbouncer=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"

source "$(dirname "$0")/as_owner.sh"

case "$command" in
  start)
    if [ ! -x "$pgbouncer" ]; then
      echo "pgbouncer.sh: pgbouncer not found (apt-get install pgbouncer)" >&2
      exit 2
    fi
    if [ -z "${LEASELOCK_TEST_POSTGRES:-}" ]; then
      echo "pgbouncer.sh: LEASELOCK_TEST_POSTGRES is not set (tools/postgres_cluster.sh start DIR)" >&2
      exit 2
    fi
    if [ -e "$dir" ]; then
      echo "pgbouncer.sh: $dir already exists" >&2
      exit 2
    fi
    host=127.0.0.1 server_port=5432 dbname='' user='' password=''
    for pair in $LEASELOCK_TEST_POSTGRES; do  # key=value pairs without spaces or quotes
      case "$pair" in
        host=*) host=${pair#host=} ;;
        port=*) server_port=${pair#port=} ;;
        dbname=*) dbname=${pair#dbname=} ;;
        user=*) user=${pair#user=} ;;
        password=*) password=${pair#password=} ;;
      esac
    done
    if [ -z "$dbname" ] || [ -z "$user" ] || [ -z "$password" ]; then
      echo "pgbouncer.sh: LEASELOCK_TEST_POSTGRES needs dbname, user and password" >&2
      exit 2
    fi
    mkdir -p "$dir"
    chmod 700 "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
      echo $((20000 + RANDOM % 20000)))
    server="host=$host port=$server_port dbname=$dbname"
    cat >"$dir/pgbouncer.ini" <<CONF
[databases]
leaselock_session = $server pool_mode=session
leaselock_transaction = $server pool_mode=transaction pool_size=1
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
CONF
    printf '"%s" "%s"\n' "$user" "$password" >"$dir/userlist.txt"
    [ "$(id -u)" -eq 0 ] && chown -R nobody "$dir"
    as_owner "$pgbouncer" -d "$dir/pgbouncer.ini" </dev/null >/dev/null 2>"$dir/start.log" ||
      { cat "$dir/start.log" "$dir/pgbouncer.log" >&2 2>/dev/null; rm -rf "$dir"; exit 1; }
    if [ -n "$watch" ]; then
      setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; "$2" stop "$3"' \
        watch "$watch" "$self" "$dir" </dev/null >/dev/null 2>&1 &
    fi
    for _ in $(seq 100); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
      sleep 0.1
    done
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "pgbouncer.sh: pgbouncer did not listen on 127.0.0.1:$port within 10 s" >&2
      cat "$dir/pgbouncer.log" >&2 2>/dev/null || true
      "$self" stop "$dir"
      exit 1
    fi
    for db in session transaction; do
      name=$(echo "$db" | tr a-z A-Z)
      echo "export LEASELOCK_TEST_PGBOUNCER_$name='host=127.0.0.1 port=$port dbname=leaselock_$db user=$user password=$password'"
    done
    echo "export LEASELOCK_TEST_PGBOUNCER_DIR='$dir'"
    ;;
  stop)
    # SIGTERM: pgbouncer closes every connection at once and exits within about a second.
    if [ -f "$dir/pgbouncer.pid" ]; then kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true; fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start DIR [PID] | stop DIR" >&2
    exit 2
    ;;
esac
