# The leaselock command over PostgreSQL storage it cannot use: an unreachable server, a
# wrong password, a database that does not exist, a URL libpq cannot parse, a role that
# may not create the schema. Each gets one line on stderr with libpq's reason and exit 69,
# runs nothing, and never shows the password; conflicting storage options are usage
# errors (64).
source "$(dirname "$0")/lib.sh"

host=$(conninfo_field host)
port=$(conninfo_field port)
user=$(conninfo_field user)
hint='(check the URL given with --postgres or $LEASELOCK_POSTGRES)'
# expect_storage_error URL MESSAGE SUBCOMMAND ARGS...: exit 69, MESSAGE after
# "leaselock SUBCOMMAND: " and before the hint, and no password in any output.
expect_storage_error() {
  local url=$1 message=$2 command=$3
  shift 3
  expect_run 69 "leaselock $command: $message $hint" "$command" --postgres "$url" "$@"
  no_password "leaselock $command's error" "$WORK/stderr"
}

unreachable="postgresql://$user:$PG_PASSWORD@127.0.0.1:1/$PG_DATABASE"
refused="PostgreSQL at 127.0.0.1:1/$PG_DATABASE: could not connect: connection to server at \"127.0.0.1\", port 1 failed: Connection refused; Is the server running on that host and accepting TCP/IP connections?"
token=0123456789abcdef0123456789abcdef
expect_storage_error "$unreachable" "$refused" status key
expect_storage_error "$unreachable" "$refused" list
expect_storage_error "$unreachable" "$refused" acquire --ttl 1m key
expect_storage_error "$unreachable" "$refused" release key $token
expect_storage_error "$unreachable" "$refused" renew --ttl 1m key $token
expect_storage_error "$unreachable" "$refused" run key -- touch "$WORK/ran"
check "run did not run its command on unreachable storage" test ! -e "$WORK/ran"
expect_run 69 "leaselock mcp: $refused $hint" mcp --postgres "$unreachable" </dev/null
no_password "leaselock mcp's error" "$WORK/stderr"
out=$(LEASELOCK_POSTGRES=$unreachable ll status key 2>&1)
check "\$LEASELOCK_POSTGRES is used, and reported the same way (got: $out)" \
  test "$out" = "leaselock status: $refused $hint"

wrong_password="not-the-password-$$"
expect_storage_error "postgresql://$user:$wrong_password@$host:$port/$PG_DATABASE" \
  "PostgreSQL at $host:$port/$PG_DATABASE: could not connect: connection to server at \"$host\", port $port failed: FATAL:  password authentication failed for user \"$user\"" \
  status key
check "the wrong password is not shown either" test -z "$(grep -F -- "$wrong_password" "$WORK/stderr")"

expect_storage_error "postgresql://$user:$PG_PASSWORD@$host:$port/no_such_database_$$" \
  "PostgreSQL at $host:$port/no_such_database_$$: could not connect: connection to server at \"$host\", port $port failed: FATAL:  database \"no_such_database_$$\" does not exist" \
  acquire --ttl 1m key

# libpq repeats a string it cannot parse in its message: the password is masked there.
expect_storage_error "postgresql://$user:$PG_PASSWORD@[::1" \
  "PostgreSQL at localhost: could not connect: end of string reached when looking for matching \"]\" in IPv6 host address in URI: \"postgresql://$user:********@[::1\"" \
  status key
expect_storage_error "$user:$PG_PASSWORD@$host" \
  "PostgreSQL at localhost: could not connect: missing \"=\" after \"$user:********@$host\" in connection info string" \
  status key

# Reached, but refused: a role that may not create the schema in this database.
if [ -n "${LEASELOCK_TEST_POSTGRES_APP:-}" ]; then
  app_user=$(echo " $LEASELOCK_TEST_POSTGRES_APP" | sed -n 's/.* user=\([^ ]*\).*/\1/p')
  expect_storage_error "$LEASELOCK_TEST_POSTGRES_APP dbname=$PG_DATABASE" \
    "PostgreSQL at $host:$port/$PG_DATABASE: permission denied for database $PG_DATABASE [SQLSTATE 42501]" \
    acquire --ttl 1m key
else
  fail "LEASELOCK_TEST_POSTGRES_APP is not set (tools/postgres_cluster.sh exports it)"
fi

# Nothing was taken by any of the refused commands.
check "the refused commands took nothing" \
  test "$(ll status --postgres "$PG" --json key | json .locked)" = false

# Two storages named at once: a usage error, nothing opened.
expect_run 64 "leaselock status: --dir and --postgres both given; choose one storage" \
  status --dir "$WORK/locks" --postgres "$PG" key
LEASELOCK_DIR="$WORK/locks" LEASELOCK_POSTGRES="$PG" expect_run 64 \
  "leaselock status: LEASELOCK_DIR and LEASELOCK_POSTGRES are both set; unset one, or pass --dir or --postgres" \
  status key
check "with both set, --postgres chooses" \
  test "$(LEASELOCK_DIR="$WORK/locks" LEASELOCK_POSTGRES="$unreachable" ll status --json --postgres "$PG" key | json .locked)" = false
expect_run 64 "leaselock status: --postgres needs a connection URL (e.g. postgresql://user@host/db)" \
  status --postgres= key
finish
