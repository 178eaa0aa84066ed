# tools/packages.sh — installs what a tools/ script needs, quietly. Sourced by
# tools/test.sh, tools/demo.sh and tools/bench_file.sh (not a command of its own).
#
#   require PACKAGE CHECK...   PACKAGE (Debian/Ubuntu) is needed unless one CHECK holds: a
#                              command on PATH, or a file pattern (it has a /) that matches
#   install_packages PACKAGE...
#                              apt-get install, without recommended packages, as root or
#                              through sudo; its output goes to build/apt-get.log and is
#                              shown only if it fails (then the status is non-zero)
#   install_required           install_packages on every package `require` found missing
#
# The log's place can be changed with LEASELOCK_APT_LOG.

required_packages=()

require() {
  local package=$1 check
  shift
  for check in "$@"; do
    if [[ $check == */* ]]; then
      compgen -G "$check" >/dev/null && return 0
    else
      command -v "$check" >/dev/null 2>&1 && return 0
    fi
  done
  required_packages+=("$package")
}

apt_log=${LEASELOCK_APT_LOG:-build/apt-get.log}
apt_updated=0

install_packages() {
  local as_root=()
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get here; please install: $*" >&2
    return 2
  fi
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "not root and no sudo; please install: $*" >&2
      return 2
    fi
    as_root=(sudo)
  fi
  mkdir -p "$(dirname "$apt_log")"
  echo "==> Installing $* (apt-get; log: $apt_log)"
  if {
    { [ "$apt_updated" -eq 1 ] || "${as_root[@]}" apt-get update -q; } &&
      "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "$@"
  } >"$apt_log" 2>&1; then
    apt_updated=1
    return 0
  fi
  echo "apt-get install $* failed; its output ($apt_log):" >&2
  cat "$apt_log" >&2
  return 1
}

install_required() {
  [ ${#required_packages[@]} -eq 0 ] || install_packages "${required_packages[@]}"
}
