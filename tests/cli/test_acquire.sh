# leaselock acquire / status / list / release / renew across processes: a lease that
# outlives the command that took it, ended by its token, its TTL, or its bound process.
# status and list never print a token.
source "$(dirname "$0")/lib.sh"

# --- acquire in one process, status in another, release in a third.
token=$(ll acquire --ttl 5m --owner agent-7 repo/main.c)
check "acquire prints a 32-hex-digit token alone" test "$(echo "$token" | grep -cE '^[0-9a-f]{32}$')" = 1
check_held "$(ll status --json repo/main.c)" agent-7 300000

# Nothing anyone may run prints the token.
for view in "status repo/main.c" "status --json repo/main.c" "list" "list --json" "list repo/"; do
  out=$(ll $view 2>&1)
  check "'leaselock $view' shows the key" test -n "$(echo "$out" | grep -F repo/main.c)"
  check "'leaselock $view' never prints the token" test -z "$(echo "$out" | grep -F "$token")"
done
busy=$(ll acquire -n --json --ttl 1m repo/main.c)
check "a busy acquire exits 75" test $? -eq 75
check "a busy acquire says acquired false" test "$(echo "$busy" | json .acquired)" = false
check "a busy acquire shows the holder" test "$(echo "$busy" | json '.holders[0].owner')" = agent-7
check "a busy acquire never prints the holder's token" test -z "$(echo "$busy" | grep -F "$token")"
message=$(ll acquire -n --ttl 1m repo/main.c 2>&1 >/dev/null)
check "a busy acquire's message never prints the token" test -z "$(echo "$message" | grep -F "$token")"

# A wrong token releases nothing; the right one renews and releases.
check_token_cycle repo/main.c "$token"

# --- A lease bound to no process ends at its TTL.
ll acquire --ttl 700ms short >/dev/null
ll acquire -n --ttl 1s short >/dev/null 2>&1
check "the short lease is held after acquire exited (got $?)" test $? -eq 75
sleep 1
check "the short lease ended at its TTL" quiet ll acquire -n --ttl 1s short

# --- --bind-pid: the lease ends as soon as that process has ended.
sleep 60 &
agent=$!
ll acquire --ttl 5m --bind-pid $agent bound >/dev/null
check "a lease bound to a live process is held" \
  test "$(ll status --json bound | json .locked)" = true
check "its owner defaults to the bound pid" \
  test "$(ll status --json bound | json '.holders[0].owner' | cut -d@ -f1)" = $agent
kill $agent
wait $agent 2>/dev/null
start=$(now_ms)
check "after the bound process is killed, acquire -n succeeds at once" \
  quiet ll acquire -n --ttl 1m bound
elapsed=$(($(now_ms) - start))
check "and fast (took ${elapsed} ms, allowed 2000)" test $elapsed -lt 2000

# --- -n and -w on a held key: the busy code in the time asked.
ll acquire --ttl 5m held >/dev/null
start=$(now_ms)
ll acquire -n --ttl 1m held 2>/dev/null
code=$?
elapsed=$(($(now_ms) - start))
check "acquire -n on a held key exits 75 (got $code)" test $code -eq 75
check "acquire -n answers at once (took ${elapsed} ms, allowed 2000)" test $elapsed -lt 2000
start=$(now_ms)
ll acquire -w 700ms --ttl 1m held 2>/dev/null
code=$?
elapsed=$(($(now_ms) - start))
check "acquire -w 700ms on a held key exits 75 (got $code)" test $code -eq 75
check "acquire -w 700ms waits about 0.7 s (took ${elapsed} ms, allowed 650-3500)" \
  test $elapsed -ge 650 -a $elapsed -lt 3500

# --- Shared leases: many shared holders, no exclusive one meanwhile.
ll acquire -s --ttl 5m docs >/dev/null
check "a second shared acquire succeeds" quiet ll acquire -s -n --ttl 5m docs
check "status shows both shared holders" \
  test "$(ll status --json docs | json .holders | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 2
ll acquire -x -n --ttl 5m docs 2>/dev/null
check "an exclusive acquire on a shared key is busy" test $? -eq 75

# --- Bad input to acquire: exit 64, nothing taken.
expect_run 64 "leaselock acquire: acquire needs --ttl DUR (e.g. --ttl 5m) (see 'leaselock acquire --help')" \
  acquire fresh
expect_run 64 "leaselock acquire: --bind-pid needs a process id > 0 (e.g. --bind-pid \$\$), got 'abc'" \
  acquire --ttl 1m --bind-pid abc fresh
expect_run 64 "leaselock acquire: --bind-pid needs a process id > 0 (e.g. --bind-pid \$\$), got '0'" \
  acquire --ttl 1m --bind-pid 0 fresh
sleep 0.01 &
gone=$!
wait $gone
expect_run 64 "leaselock acquire: --bind-pid $gone: no such process (give the pid of a running process, e.g. \$\$)" \
  acquire --ttl 1m --bind-pid $gone fresh
check "refused acquires took nothing" test "$(ll status --json fresh | json .locked)" = false
finish
