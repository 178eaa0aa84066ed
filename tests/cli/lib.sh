# tests/cli/lib.sh — what every test of the leaselock command shares. Sourced by each
# tests/cli/test_*.sh, which ctest runs as: bash test_X.sh PATH/TO/leaselock
#
# Each test gets a fresh lock directory ($LEASELOCK_DIR) and scratch directory ($WORK),
# removed at exit. check/expect_* count failures; finish exits 1 if any failed.
set -u -o pipefail

LEASELOCK=${1:?usage: bash $0 PATH/TO/leaselock}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/leaselock-cli-test.XXXXXX")
export LEASELOCK_DIR="$WORK/locks"
unset LEASELOCK_POSTGRES LEASELOCK_OWNER
failures=0
checks=0
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"' EXIT

ll() { "$LEASELOCK" "$@"; }
quiet() { "$@" >/dev/null; } # for a check whose command prints a token

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# check DESCRIPTION COMMAND...: the command must succeed.
check() {
  local what=$1
  shift
  checks=$((checks + 1))
  if ! "$@"; then fail "$what"; fi
}

# expect_run CODE STDERR_LINE ARGS...: leaselock ARGS exits CODE and prints exactly
# STDERR_LINE (one line) on stderr, nothing on stdout.
expect_run() {
  local code=$1 message=$2
  shift 2
  checks=$((checks + 1))
  local out err status
  out=$("$LEASELOCK" "$@" 2>"$WORK/stderr")
  status=$?
  err=$(cat "$WORK/stderr")
  if [ "$status" -ne "$code" ]; then
    fail "leaselock $*: exit $status, expected $code (stderr: $err)"
  elif [ "$err" != "$message" ]; then
    fail "leaselock $*: stderr"$'\n'"  got:      $err"$'\n'"  expected: $message"
  elif [ -n "$out" ]; then
    fail "leaselock $*: printed on stdout: $out"
  fi
}

# json FIELD: reads one JSON object on stdin, prints FIELD (a jq-like path: .a.b[0].c).
json() {
  python3 -c '
import json, sys
value = json.load(sys.stdin)
for part in sys.argv[1].replace("[", ".[").split(".")[1:]:
    value = value[int(part[1:-1])] if part.startswith("[") else value[part]
print(json.dumps(value) if isinstance(value, (dict, list)) or value is None else
      (str(value).lower() if isinstance(value, bool) else value))' "$1"
}

# check_held STATUS OWNER TTL_MS: STATUS (status --json's object, from another process)
# shows its key held exclusive by OWNER, with a fence, about TTL_MS left, and RFC 3339 UTC
# times.
check_held() {
  local status=$1 owner=$2 ttl=$3 left
  check "status in another process shows the lease held" test "$(echo "$status" | json .locked)" = true
  check "status shows the mode" test "$(echo "$status" | json .mode)" = exclusive
  check "status shows the owner" test "$(echo "$status" | json '.holders[0].owner')" = "$owner"
  check "status shows the fence" test "$(echo "$status" | json '.holders[0].fence')" -ge 1
  left=$(echo "$status" | json '.holders[0].expires_in_ms')
  check "status shows the time left (${left} ms of $ttl)" \
    test "$left" -gt $((ttl - 10000)) -a "$left" -le "$ttl"
  check "status shows RFC 3339 UTC times" test -n "$(echo "$status" | json '.holders[0].expires_at' |
    grep -E '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$')"
}

# check_token_cycle KEY TOKEN: TOKEN holds KEY (exclusive, for minutes) in the storage
# `ll` uses: a wrong token neither releases nor renews it; TOKEN renews it (10 min) and
# releases it; after that TOKEN does neither.
check_token_cycle() {
  local key=$1 token=$2 wrong=0123456789abcdef0123456789abcdef renewed left
  check "release with a wrong token exits 0" quiet ll release "$key" $wrong
  check "release with a wrong token says released false" \
    test "$(ll release --json "$key" $wrong | json .released)" = false
  check "the lease is still held after a wrong release" \
    test "$(ll status --json "$key" | json .locked)" = true
  expect_run 76 "leaselock renew: not renewed: that token no longer holds the key (expired or released); take it again with 'leaselock acquire'" \
    renew --ttl 1m "$key" $wrong
  renewed=$(ll renew --json --ttl 10m "$key" "$token")
  check "renew with the token renews" test "$(echo "$renewed" | json .renewed)" = true
  left=$(echo "$renewed" | json .expires_in_ms)
  check "renew extends to the new TTL (${left} ms of 600000)" test "$left" -gt 590000
  check "release with the token says released true" \
    test "$(ll release --json "$key" "$token" | json .released)" = true
  check "the key is free after the release" test "$(ll status --json "$key" | json .locked)" = false
  check "a second release of the same token exits 0" quiet ll release "$key" "$token"
  check "and says it held nothing" \
    test "$(ll release "$key" "$token")" = "not held by that token (already released or expired)"
  expect_run 76 "leaselock renew: not renewed: that token no longer holds the key (expired or released); take it again with 'leaselock acquire'" \
    renew --ttl 1m "$key" "$token"
}

# now_ms: milliseconds on the monotonic clock (for wide-margin timing checks).
now_ms() { python3 -c 'import time; print(int(time.monotonic() * 1000))'; }

# wait_until SECONDS COMMAND...: retries COMMAND every 20 ms until it succeeds; false
# if it never did within SECONDS.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -le "$deadline" ] || return 1
    sleep 0.02
  done
}

finish() {
  if [ "$failures" -ne 0 ]; then
    echo "$failures of $checks checks failed" >&2
    exit 1
  fi
  echo "all $checks checks passed"
  exit 0
}
