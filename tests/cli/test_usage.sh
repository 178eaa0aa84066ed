# Bad input: one line on stderr saying what is wrong and how to fix it, exit 64 (69 for
# storage), and nothing changed in the lock directory.
source "$(dirname "$0")/lib.sh"

token=0123456789abcdef0123456789abcdef
long_key=$(head -c 4097 /dev/zero | tr '\0' k)

expect_run 64 "leaselock: no subcommand given (try 'leaselock --help')"
expect_run 64 "leaselock: unknown subcommand 'frobnicate' (try 'leaselock --help')" frobnicate
expect_run 64 "leaselock status: unknown option '--bogus' (see 'leaselock status --help')" \
  status --bogus k
expect_run 64 "leaselock list: unknown option '-q' (see 'leaselock list --help')" list -q
expect_run 64 "leaselock status: status takes exactly one KEY (see 'leaselock status --help')" status
expect_run 64 "leaselock status: status takes exactly one KEY (see 'leaselock status --help')" \
  status a b
expect_run 64 "leaselock status: --dir needs a value (see 'leaselock status --help')" status k --dir
expect_run 64 "leaselock status: --json takes no value (see 'leaselock status --help')" \
  status --json=yes k
expect_run 64 "leaselock status: key is 4097 bytes, over the limit of 4096 (use a shorter key, e.g. a hash of it)" \
  status "$long_key"
expect_run 64 "leaselock status: the key is empty (give a non-empty KEY, e.g. a file path)" status ""
expect_run 64 "leaselock release: malformed token 'xyz' (expected the 32 hex digits that 'leaselock acquire' printed)" \
  release k xyz
expect_run 64 "leaselock release: release takes KEY and TOKEN (see 'leaselock release --help')" \
  release k
expect_run 64 "leaselock renew: renew needs --ttl DUR (e.g. --ttl 30s) (see 'leaselock renew --help')" \
  renew k $token
expect_run 64 "leaselock renew: bad duration '5x' for --ttl (write it like 250ms, 30s, 5m, 1h, or a number of seconds)" \
  renew --ttl 5x k $token
expect_run 64 "leaselock renew: bad duration '-1s' for --ttl (write it like 250ms, 30s, 5m, 1h, or a number of seconds)" \
  renew --ttl=-1s k $token
expect_run 64 "leaselock renew: --ttl must be more than 0 (e.g. --ttl 30s), got '0'" \
  renew --ttl 0 k $token
expect_run 64 "leaselock renew: --ttl must be more than 0 (e.g. --ttl 30s), got '0ms'" \
  renew --ttl 0ms k $token
expect_run 64 "leaselock status: --dir and --postgres both given; choose one storage" \
  status --dir "$WORK/d" --postgres postgresql://x/y k
long_owner=$(head -c 257 /dev/zero | tr '\0' o)
expect_run 64 "leaselock status: --owner is 257 bytes, over the limit of 256 (use a shorter name)" \
  status --owner "$long_owner" k

expect_run 64 "leaselock run: run needs a command: -- CMD [ARG...] or -c STRING (see 'leaselock run --help')" \
  run k
expect_run 64 "leaselock run: run needs a command: -- CMD [ARG...] or -c STRING (see 'leaselock run --help')" \
  run k --
expect_run 64 "leaselock run: give either -c STRING or -- CMD [ARG...], not both (see 'leaselock run --help')" \
  run k -c true -- true
expect_run 64 "leaselock run: run takes one KEY before the command (see 'leaselock run --help')" \
  run -- true
expect_run 64 "leaselock run: bad duration '2x' for -w (write it like 250ms, 30s, 5m, 1h, or a number of seconds)" \
  run -w 2x k -- true
expect_run 64 "leaselock run: --ttl must be more than 0 (e.g. --ttl 30s), got '0s'" \
  run --ttl 0s k -- true
expect_run 64 "leaselock run: -E needs an exit code from 0 to 255, got '256'" run -E 256 k -- true
expect_run 64 "leaselock run: unknown option '-q' (see 'leaselock run --help')" run -xq k -- true
expect_run 64 "leaselock run: key is 4097 bytes, over the limit of 4096 (use a shorter key, e.g. a hash of it)" \
  run "$long_key" -- true

# Storage: 69.
# PostgreSQL storage that cannot be reached (no server needed: nothing listens on port 1;
# tests/cli/postgres/ has the rest), with the password of the URL never shown.
expect_run 69 "leaselock status: PostgreSQL at 127.0.0.1:1/x: could not connect: connection to server at \"127.0.0.1\", port 1 failed: Connection refused; Is the server running on that host and accepting TCP/IP connections? (check the URL given with --postgres or \$LEASELOCK_POSTGRES)" \
  status --postgres postgresql://me:s3cret-pw@127.0.0.1:1/x k
expect_run 69 "leaselock status: PostgreSQL at localhost: could not connect: missing \"=\" after \"me:********@host\" in connection info string (check the URL given with --postgres or \$LEASELOCK_POSTGRES)" \
  status --postgres me:s3cret-pw@host k
LEASELOCK_POSTGRES=postgresql://localhost/x expect_run 64 \
  "leaselock status: LEASELOCK_DIR and LEASELOCK_POSTGRES are both set; unset one, or pass --dir or --postgres" \
  status k
expect_run 69 "leaselock status: cannot create lock directory '$WORK/missing/locks': No such file or directory (choose a usable lock directory with --dir DIR or \$LEASELOCK_DIR)" \
  status --dir "$WORK/missing/locks" k
mkdir -m 0777 "$WORK/open" && chmod 0777 "$WORK/open"
expect_run 69 "leaselock list: lock directory '$WORK/open' is writable by others; use a directory only its owner (or group) can write (choose a usable lock directory with --dir DIR or \$LEASELOCK_DIR)" \
  list --dir "$WORK/open"
ln -s "$WORK/open" "$WORK/link"
expect_run 69 "leaselock list: lock directory '$WORK/link' is a symbolic link; refusing to follow it (choose a usable lock directory with --dir DIR or \$LEASELOCK_DIR)" \
  list --dir "$WORK/link"

# None of the refused requests created anything.
check "the refused requests left no lock directory" test ! -e "$LEASELOCK_DIR"
check "the refused requests left no missing directory" test ! -e "$WORK/missing"
check "the refused requests left the open directory empty" test -z "$(ls -A "$WORK/open")"

# --help: usage on stdout, exit 0, for every subcommand.
for sub in run status list release renew; do
  checks=$((checks + 1))
  help=$(ll "$sub" --help) || fail "$sub --help exited $?"
  case "$help" in "usage: leaselock $sub "*) ;; *) fail "$sub --help: $help" ;; esac
done
finish
