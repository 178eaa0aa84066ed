# tests/cli/postgres/lib.sh — what the tests of the leaselock command over PostgreSQL
# share. Sourced by each tests/cli/postgres/test_*.sh, run as: bash test_X.sh PATH/TO/leaselock
#
# Everything of tests/cli/lib.sh, plus a database of the test's own on the server
# $LEASELOCK_TEST_POSTGRES names (tools/postgres_cluster.sh starts one; without it the
# test fails, it never skips), dropped at exit:
#   PG          its conninfo ("host=... dbname=..."), as --postgres takes it
#   PG_URL      the same as a postgresql:// URL, password included
#   PG_PASSWORD the password both carry (no output may show it)
# LEASELOCK_POSTGRES is $PG (so `ll` works over it) and LEASELOCK_DIR is unset.
source "$(dirname "$0")/../lib.sh"

if [ -z "${LEASELOCK_TEST_POSTGRES:-}" ]; then
  echo "FAIL: LEASELOCK_TEST_POSTGRES is not set: these tests need a PostgreSQL server" \
    "(run tools/test.sh, or eval \"\$(tools/postgres_cluster.sh start DIR)\")" >&2
  exit 1
fi
PSQL=$(command -v psql || ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -n 1)
if [ -z "$PSQL" ]; then
  echo "FAIL: no psql found (apt-get install postgresql-client)" >&2
  exit 1
fi
unset LEASELOCK_DIR
# conninfo_field NAME: NAME's value in $LEASELOCK_TEST_POSTGRES (keyword=value form).
conninfo_field() { echo " $LEASELOCK_TEST_POSTGRES" | sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
PG_DATABASE="cli_$(basename "$0" .sh | tr -c 'a-z0-9\n' _)_$$"
sql() { "$PSQL" -X -q -v ON_ERROR_STOP=1 -At "$LEASELOCK_TEST_POSTGRES" -c "$1"; }
if ! sql "CREATE DATABASE $PG_DATABASE" >/dev/null; then
  echo "FAIL: cannot create database $PG_DATABASE on the test server" >&2
  exit 1
fi
trap 'kill $(jobs -p) 2>/dev/null; sql "DROP DATABASE IF EXISTS $PG_DATABASE WITH (FORCE)" >/dev/null; rm -rf "$WORK"' EXIT
PG="$LEASELOCK_TEST_POSTGRES dbname=$PG_DATABASE"
PG_PASSWORD=$(conninfo_field password)
PG_URL="postgresql://$(conninfo_field user):$PG_PASSWORD@$(conninfo_field host):$(conninfo_field port)/$PG_DATABASE"
export LEASELOCK_POSTGRES=$PG
if [ -z "$PG_PASSWORD" ]; then
  echo "FAIL: LEASELOCK_TEST_POSTGRES has no password= (the tests check it is never shown)" >&2
  exit 1
fi

# no_password DESCRIPTION FILE...: none of the files shows the password.
no_password() {
  local what=$1
  shift
  check "$what never shows the password" test -z "$(cat "$@" | grep -F -- "$PG_PASSWORD")"
}
