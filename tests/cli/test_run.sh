# leaselock run: mutual exclusion, the child's environment and exit status, busy codes
# in the time asked, signals passed on, and a lost lease stopping the command.
source "$(dirname "$0")/lib.sh"

# --- 400 read-modify-writes of one file by 4 concurrent loops: none lost with the lease.
# Without it the same loops lose some (the sleep widens the race), which shows the
# counter can detect a lost update.
increment='n=$(cat "$1"); sleep 0.005; echo $((n + 1)) > "$1"'
loops() { # FILE WRAPPER...: 4 loops x 100 increments of FILE, each through WRAPPER
  local file=$1 i
  shift
  echo 0 >"$file"
  for i in 1 2 3 4; do
    (for _ in $(seq 100); do "$@" sh -c "$increment" sh "$file" || echo "exit $?" >>"$file.err"; done) &
  done
  wait
}
loops "$WORK/with" "$LEASELOCK" run counter --
loops "$WORK/without" env
check "4 x 100 increments under leaselock run end at exactly 400 (got $(cat "$WORK/with"))" \
  test "$(cat "$WORK/with")" -eq 400
check "no leaselock run failed ($(cat "$WORK/with.err" 2>/dev/null))" test ! -e "$WORK/with.err"
check "without the lease some increments are lost (got $(cat "$WORK/without"))" \
  test "$(cat "$WORK/without")" -lt 400

# --- The child's environment and exit status.
out=$(ll run envkey -- sh -c 'echo "$LEASELOCK_KEY $LEASELOCK_FENCE ${#LEASELOCK_TOKEN} $LEASELOCK_DIR"')
set -- $out
check "LEASELOCK_KEY is the key" test "$1" = envkey
check "LEASELOCK_FENCE is a positive number" test "$2" -ge 1
check "LEASELOCK_TOKEN is 32 hex digits" test "$3" = 32
check "LEASELOCK_DIR is the lock directory" test "$4" = "$LEASELOCK_DIR"
ll run k -- sh -c 'exit 3'
check "run exits with the command's status" test $? -eq 3
ll run k -c 'kill -9 $$'
check "run exits 128 + signal when the command was killed" test $? -eq 137
check "-c STRING runs sh -c STRING" test "$(ll run k -c 'echo a; echo "$0"')" = "a
/bin/sh"
expect_run 127 "leaselock run: cannot run 'no-such-command-here': No such file or directory" \
  run k -- no-such-command-here
expect_run 126 "leaselock run: cannot run '$WORK': Permission denied" run k -- "$WORK"
check "the lease is released after the command" \
  test "$(ll status --json k | json .locked)" = false

# --- Busy: -n at once, -w after the wait, both with the busy code (or -E's).
"$LEASELOCK" run busy -- sh -c "touch '$WORK/holding'; exec sleep 30" &
holder=$!
check "the holder started" wait_until 10 test -e "$WORK/holding"
start=$(now_ms)
ll run -n busy -- true 2>/dev/null
code=$?
elapsed=$(($(now_ms) - start))
check "run -n on a held key exits 75 (got $code)" test $code -eq 75
check "run -n answers at once (took ${elapsed} ms, allowed 2000)" test $elapsed -lt 2000
start=$(now_ms)
ll run -w 0.5 busy -- true 2>/dev/null
code=$?
elapsed=$(($(now_ms) - start))
check "run -w 0.5 on a held key exits 75 (got $code)" test $code -eq 75
check "run -w 0.5 waits about 0.5 s (took ${elapsed} ms, allowed 450-3000)" \
  test $elapsed -ge 450 -a $elapsed -lt 3000
ll run -E 9 -w 100ms busy -- true 2>/dev/null
check "-E 9 changes the busy code" test $? -eq 9
message=$(ll run -n busy -- true 2>&1)
case "$message" in
  "leaselock run: 'busy' is held exclusive by "*"(fence "*", expires in "*) ;;
  *) fail "busy message: $message" ;;
esac
busy=$(ll run -n --json busy -- true)
check "run -n --json on a busy key exits 75" test $? -eq 75
check "run -n --json on a busy key says acquired false" test "$(echo "$busy" | json .acquired)" = false
check "run -n --json on a busy key shows its holder" test -n "$(echo "$busy" | json '.holders[0].owner')"
check "the busy message names no token" test -z "$(echo "$message" | grep -E '[0-9a-f]{32}')"

# status and list show the held key, but never its token (the command has it).
"$LEASELOCK" run --owner agent-3 secret -- sh -c "echo \$LEASELOCK_TOKEN > '$WORK/secret'; exec sleep 30" &
secret_holder=$!
check "the secret holder started" wait_until 10 test -s "$WORK/secret"
token=$(cat "$WORK/secret")
for view in "status secret" "status --json secret" "list" "list --json" "list sec"; do
  out=$(ll $view 2>&1)
  check "'leaselock $view' shows the held key" test -n "$(echo "$out" | grep -F secret)"
  check "'leaselock $view' shows the owner" test -n "$(echo "$out" | grep -F agent-3)"
  check "'leaselock $view' never prints the token" test -z "$(echo "$out" | grep -F "$token")"
done
status=$(ll status --json secret)
check "status --json: locked" test "$(echo "$status" | json .locked)" = true
check "status --json: no token field" test -z "$(echo "$status" | grep -F '"token"')"
check "status --json: expires in at most the TTL" \
  test "$(echo "$status" | json '.holders[0].expires_in_ms')" -le 30000
kill -TERM $secret_holder
wait $secret_holder

# --- SIGTERM to run reaches the command, and the lease is released.
kill -TERM $holder
wait $holder
code=$?
check "run exits 143 after SIGTERM killed its command (got $code)" test $code -eq 143
check "the lease is free once run has exited" ll run -n busy -- true

# A command that catches SIGTERM and exits 0: run exits 0.
"$LEASELOCK" run sig -- sh -c "trap 'echo caught > \"$WORK/caught\"; exit 0' TERM; touch '$WORK/sig-started'; while :; do sleep 0.05; done" &
runner=$!
check "the trapping command started" wait_until 10 test -e "$WORK/sig-started"
kill -TERM $runner
wait $runner
code=$?
check "run exits with the command's 0 after it handled SIGTERM (got $code)" test $code -eq 0
check "the command caught the SIGTERM sent to run" test -e "$WORK/caught"

# SIGHUP and SIGINT are passed on too.
for signal in HUP INT; do
  rm -f "$WORK/started"
  # (env: a background job starts with SIGINT ignored, which run would respect)
  env --default-signal=$signal "$LEASELOCK" run "sig$signal" -- sh -c "trap 'exit 7' $signal; touch '$WORK/started'; while :; do sleep 0.05; done" &
  runner=$!
  check "the command for SIG$signal started" wait_until 10 test -e "$WORK/started"
  kill -$signal $runner
  wait $runner
  code=$?
  check "SIG$signal reached the command, whose exit code run returns (got $code)" test $code -eq 7
done

# A signal run was started ignoring stays ignored by the command (nohup).
out=$(nohup "$LEASELOCK" run nohup -- sh -c "kill -HUP \$PPID; sleep 0.2; echo survived" 2>/dev/null)
check "under nohup the command ignores SIGHUP sent to run (got '$out')" test "$out" = survived

# --- The lease lost while the command runs: released by its token from elsewhere.
"$LEASELOCK" run --ttl 600ms lost -- sh -c "echo \$LEASELOCK_TOKEN > '$WORK/token'; trap 'echo term > \"$WORK/term\"; exit 0' TERM; while :; do sleep 0.05; done" &
runner=$!
check "the command started" wait_until 10 test -s "$WORK/token"
check "releasing its lease by token from another process works" \
  test "$(ll release --json lost "$(cat "$WORK/token")" | json .released)" = true
wait $runner
code=$?
check "run exits 76 when its lease was lost (got $code)" test $code -eq 76
check "the command got SIGTERM when the lease was lost" test -e "$WORK/term"

# --- The lease lost because run was stopped (SIGSTOP) past its TTL; the command ignores
# SIGTERM, so it gets SIGKILL after the grace.
rm -f "$WORK/token"
"$LEASELOCK" run --ttl 400ms stopped -- sh -c "trap '' TERM; echo \$\$ > '$WORK/pid'; while :; do sleep 0.05; done" \
  2>/dev/null &
runner=$!
check "the stubborn command started" wait_until 10 test -s "$WORK/pid"
kill -STOP $runner
sleep 1
check "a stopped holder's lease expires at its TTL" ll run -n stopped -- true
kill -CONT $runner
wait $runner
code=$?
check "run exits 76 when its lease ran out while it was stopped (got $code)" test $code -eq 76
child=$(cat "$WORK/pid")
check "the command that ignored SIGTERM was killed" \
  test ! -e "/proc/$child" -o "$(awk '{print $3}' "/proc/$child/stat" 2>/dev/null)" = Z

# --- run killed with SIGKILL: its command gets SIGTERM (the lease is reclaimed at once).
"$LEASELOCK" run killed -- sh -c "echo \$\$ > '$WORK/kpid'; trap 'echo term > \"$WORK/kterm\"; exit 0' TERM; while :; do sleep 0.05; done" &
runner=$!
check "the command started" wait_until 10 test -s "$WORK/kpid"
kill -KILL $runner
wait $runner 2>/dev/null
check "the command of a killed run gets SIGTERM" wait_until 10 test -e "$WORK/kterm"
check "the killed run's lease is reclaimed at once" ll run -n killed -- true
finish
