# leaselock acquire / status / list / renew / release over PostgreSQL, each in its own
# process: a lease outlives the command that took it and is ended by its token or its
# TTL. status and list never print a token; --bind-pid is refused (a PostgreSQL lease has
# no process). The storage is $LEASELOCK_POSTGRES (lib.sh), or --postgres where named.
source "$(dirname "$0")/lib.sh"

# --- acquire in one process; status, list, renew, release in others.
token=$(ll acquire --postgres "$PG" --ttl 5m --owner agent-7 repo/main.c)
check "acquire exits 0" test $? -eq 0
check "acquire prints a 32-hex-digit token alone" test "$(echo "$token" | grep -cE '^[0-9a-f]{32}$')" = 1
check_held "$(ll status --postgres "$PG" --json repo/main.c)" agent-7 300000
check "list --json shows the key" \
  test "$(ll list --json | json '.locks[0].key')" = repo/main.c

for view in "status repo/main.c" "status --json repo/main.c" "list" "list --json" "list repo/"; do
  ll $view >"$WORK/view" 2>&1
  check "'leaselock $view' shows the key" test -n "$(grep -F repo/main.c "$WORK/view")"
  check "'leaselock $view' never prints the token" test -z "$(grep -F "$token" "$WORK/view")"
  no_password "'leaselock $view'" "$WORK/view"
done
busy=$(ll acquire -n --json --ttl 1m repo/main.c)
check "a busy acquire exits 75" test $? -eq 75
check "a busy acquire shows the holder" test "$(echo "$busy" | json '.holders[0].owner')" = agent-7
check "a busy acquire never prints the holder's token" test -z "$(echo "$busy" | grep -F "$token")"

check_token_cycle repo/main.c "$token"

# --- Fences increase across processes; a lease ends at its TTL.
first=$(ll acquire --json --ttl 2s short | json .fence)
ll acquire -n --ttl 1s short >/dev/null 2>&1
check "the short lease is held after acquire exited (got $?)" test $? -eq 75
take_short() { ll acquire -n --ttl 1m short >/dev/null 2>&1; }
check "the short lease ends at its TTL" wait_until 10 take_short
second=$(ll status --json short | json '.holders[0].fence')
check "the next lease has a higher fence ($first < $second)" test "$second" -gt "$first"

# --- -w waits for the holder's release in another process.
holder=$(ll acquire --ttl 1m handoff)
(sleep 0.3 && ll release handoff "$holder" >/dev/null) &
start=$(now_ms)
check "acquire -w 10s gets the key once the holder releases it" quiet ll acquire -w 10s --ttl 1m handoff
elapsed=$(($(now_ms) - start))
check "and not before the release (took ${elapsed} ms, allowed 250-5000)" \
  test $elapsed -ge 250 -a $elapsed -lt 5000
wait

# --- Shared leases.
quiet ll acquire -s --ttl 5m docs
check "a second shared acquire succeeds" quiet ll acquire -s -n --ttl 5m docs
ll acquire -x -n --ttl 5m docs 2>/dev/null
check "an exclusive acquire on a shared key is busy" test $? -eq 75

# --- The URL form, and $LEASELOCK_POSTGRES.
url_token=$("$LEASELOCK" acquire --postgres "$PG_URL" --ttl 1m url-key)
check "a postgresql:// URL works as the conninfo does" \
  test "$(ll status --json url-key | json .locked)" = true
check "\$LEASELOCK_POSTGRES names the storage" \
  test "$(LEASELOCK_POSTGRES=$PG_URL ll status --json url-key | json .locked)" = true
check "--dir wins over \$LEASELOCK_POSTGRES" \
  test "$(LEASELOCK_POSTGRES=$PG_URL ll status --json --dir "$WORK/locks" url-key | json .locked)" = false
check "the lease taken through the URL is released through \$LEASELOCK_POSTGRES" \
  test "$(LEASELOCK_POSTGRES=$PG_URL ll release --json url-key "$url_token" | json .released)" = true

# --- --bind-pid has no meaning over PostgreSQL: refused, nothing taken.
expect_run 64 "leaselock acquire: --bind-pid is for a lock directory (--dir): a lease in PostgreSQL is not tied to a process of one machine and lasts until release or its TTL; leave --bind-pid out" \
  acquire --postgres "$PG" --ttl 1m --bind-pid $$ bound
check "the refused acquire took nothing" test "$(ll status --json bound | json .locked)" = false
finish
