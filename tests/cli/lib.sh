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
