# leaselock run over PostgreSQL: 3 concurrent loops x 30 read-modify-writes of one file,
# each in its own `leaselock run` process: none lost. The command's environment names
# the same storage, so its own leaselock calls see its lease.
source "$(dirname "$0")/lib.sh"

increment='n=$(cat "$1"); sleep 0.005; echo $((n + 1)) > "$1"'
echo 0 >"$WORK/counter"
for loop in 1 2 3; do
  (for _ in $(seq 30); do
    "$LEASELOCK" run --postgres "$PG" counter -- sh -c "$increment" sh "$WORK/counter" ||
      echo "exit $?" >>"$WORK/errors"
  done) &
done
wait
check "3 x 30 increments under leaselock run end at exactly 90 (got $(cat "$WORK/counter"))" \
  test "$(cat "$WORK/counter")" -eq 90
check "no leaselock run failed ($(cat "$WORK/errors" 2>/dev/null))" test ! -e "$WORK/errors"
check "the key is free after the last run" \
  test "$(ll status --postgres "$PG" --json counter | json .locked)" = false

# --- The command's environment: the storage, not the lock directory.
LEASELOCK_DIR="$WORK/locks" ll run --postgres "$PG_URL" envkey -- sh -c \
  'echo "${LEASELOCK_DIR-unset} $LEASELOCK_POSTGRES"; "$0" status --json envkey' "$LEASELOCK" \
  >"$WORK/child" 2>&1
check "run exits with its command's status" test $? -eq 0
check "the command gets LEASELOCK_POSTGRES (and no LEASELOCK_DIR)" \
  test "$(head -n 1 "$WORK/child")" = "unset $PG_URL"
check "the command's own leaselock status sees its lease held" \
  test "$(sed -n 2p "$WORK/child" | json .locked)" = true

# --- Busy: -n gives the busy code (75, or -E CODE) without running the command.
holder=$(ll acquire --postgres "$PG" --ttl 1m busy)
ll run --postgres "$PG" -n busy -- touch "$WORK/ran" 2>"$WORK/busy"
code=$?
check "run -n on a held key exits 75 (got $code)" test $code -eq 75
check "and does not run the command" test ! -e "$WORK/ran"
check "and says who holds it" test -n "$(grep -F "'busy' is held exclusive by" "$WORK/busy")"
check "the busy message never prints the holder's token" test -z "$(grep -F "$holder" "$WORK/busy")"
ll run --postgres "$PG" -n -E 3 busy -- true 2>/dev/null
check "-E 3 changes the busy code (got $?)" test $? -eq 3
finish
