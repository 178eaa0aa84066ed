# tools/as_owner.sh — sourced by the scripts that run a test server (postgres_cluster.sh,
# pgbouncer.sh): as_owner CMD [ARG...] runs CMD as `nobody` when called as root (the
# servers refuse to run as root), as the caller otherwise.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u nobody -- "$@"
  else
    "$@"
  fi
}
