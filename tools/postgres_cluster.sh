#!/usr/bin/env bash
# tools/postgres_cluster.sh — a throwaway PostgreSQL cluster on loopback for the tests.
#
#   eval "$(tools/postgres_cluster.sh start DIR [--listen ADDRESSES] [--allow CIDR]...)"
#   tools/postgres_cluster.sh restart DIR    # pg_ctl restart -m fast
#   tools/postgres_cluster.sh crash DIR      # pg_ctl stop -m immediate (the server stays down)
#   tools/postgres_cluster.sh recover DIR    # start it again after a crash (crash recovery)
#   tools/postgres_cluster.sh stop DIR
#
# `start` runs initdb into DIR (which must not exist) as an unprivileged user (the
# caller, or `nobody` when run as root), starts the server on a free loopback port with
# password authentication, creates the database `leaselock_test`, a role
# `leaselock_app` that owns only the schema `leaselock_app`, and prints:
#   LEASELOCK_TEST_POSTGRES        conninfo of the superuser (tests create schemas freely)
#   LEASELOCK_TEST_POSTGRES_APP    conninfo of the role that owns only its schema
#   LEASELOCK_TEST_POSTGRES_DIR    DIR; LEASELOCK_TEST_POSTGRES_CTL the pg_ctl to use
# --listen: the server's listen_addresses (default 127.0.0.1; the conninfo printed stays
# on 127.0.0.1, which must be among them). --allow CIDR: password logins from that
# subnet too (one pg_hba.conf line each), e.g. test hosts in network namespaces.
# The server's own binaries come from /usr/lib/postgresql/<newest>/bin.
set -euo pipefail

usage() {
  echo "usage: $0 start DIR [--listen ADDRESSES] [--allow CIDR]... | restart|crash|recover|stop DIR" >&2
  exit 2
}
command=${1:-}
dir=${2:-}
[ -n "$command" ] && [ -n "$dir" ] || usage
shift 2
listen=127.0.0.1
allow=()
while [ $# -gt 0 ]; do
  case "$1" in
    --listen) [ $# -ge 2 ] || usage; listen=$2; shift 2 ;;
    --allow) [ $# -ge 2 ] || usage; allow+=("$2"); shift 2 ;;
    *) usage ;;
  esac
done
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "postgres_cluster.sh: no PostgreSQL server found (apt-get install postgresql)" >&2
  exit 2
fi

source "$(dirname "$0")/as_owner.sh"

case "$command" in
  start)
    if [ -e "$dir" ]; then
      echo "postgres_cluster.sh: $dir already exists" >&2
      exit 2
    fi
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown nobody "$dir"
    chmod 700 "$dir"
    password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    printf '%s\n' "$password" >"$dir/pwfile"
    [ "$(id -u)" -eq 0 ] && chown nobody "$dir/pwfile"
    as_owner "$bin/initdb" -D "$dir/data" -U leaselock_admin --pwfile="$dir/pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    # A free port: ask the kernel for one, then let the server take it.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
      echo $((20000 + RANDOM % 20000)))
    # In the configuration file, so that a restart by hand (pg_ctl -D DIR/data start)
    # comes back the same.
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '$listen'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
CONF
    for cidr in "${allow[@]}"; do
      printf 'host all all %s scram-sha-256\n' "$cidr" >>"$dir/data/pg_hba.conf"
    done
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
      { cat "$dir/server.log" >&2; exit 1; }
    psql=("$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U leaselock_admin)
    as_owner "${psql[@]}" -d postgres -c "CREATE DATABASE leaselock_test" >/dev/null
    as_owner "${psql[@]}" -d leaselock_test >/dev/null <<SQL
CREATE ROLE leaselock_app LOGIN PASSWORD '$password';
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
CREATE SCHEMA leaselock_app AUTHORIZATION leaselock_app;
SQL
    echo "export LEASELOCK_TEST_POSTGRES='host=127.0.0.1 port=$port dbname=leaselock_test user=leaselock_admin password=$password'"
    echo "export LEASELOCK_TEST_POSTGRES_APP='host=127.0.0.1 port=$port dbname=leaselock_test user=leaselock_app password=$password'"
    echo "export LEASELOCK_TEST_POSTGRES_DIR='$dir'"
    echo "export LEASELOCK_TEST_POSTGRES_CTL='$bin/pg_ctl'"
    ;;
  restart)
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 60 restart >/dev/null ||
      { tail -n 20 "$dir/server.log" >&2; exit 1; }
    ;;
  crash)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null ||
      { tail -n 20 "$dir/server.log" >&2; exit 1; }
    ;;
  recover)
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
      { tail -n 20 "$dir/server.log" >&2; exit 1; }
    ;;
  stop)
    if [ -d "$dir/data" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 ||
        as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *) usage ;;
esac
