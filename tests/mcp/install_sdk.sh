#!/usr/bin/env bash
# tests/mcp/install_sdk.sh DIR — installs the MCP TypeScript SDK (the client the tests
# drive the server with) into DIR/node_modules, quietly, unless it is there already.
# Fails loudly when node or npm is missing: the MCP tests cannot run without them.
set -euo pipefail
dir=${1:?usage: install_sdk.sh DIR}
version=1.32.2
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install_sdk.sh: $tool is missing; the MCP tests need node (>= 18) and npm" \
      "(Debian/Ubuntu: apt-get install nodejs npm)" >&2
    exit 1
  fi
done
package="$dir/node_modules/@modelcontextprotocol/sdk/package.json"
if [ -f "$package" ] && grep -q "\"version\": \"$version\"" "$package"; then exit 0; fi
mkdir -p "$dir"
[ -f "$dir/package.json" ] || echo '{"private": true}' >"$dir/package.json"
if ! npm install --prefix "$dir" --no-audit --no-fund --no-progress --loglevel=error \
  "@modelcontextprotocol/sdk@$version" >"$dir/npm-install.log" 2>&1; then
  cat "$dir/npm-install.log" >&2
  echo "install_sdk.sh: npm install @modelcontextprotocol/sdk@$version failed" >&2
  exit 1
fi
