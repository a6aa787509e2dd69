#!/usr/bin/env bash
# Installs everything buildtrace needs on Debian 12 (run as root) and builds it.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v nix-build >/dev/null 2>&1 || need_apt+=(nix-bin)
command -v nginx >/dev/null 2>&1 || need_apt+=(nginx-light)
[ -e /usr/lib/nginx/modules/ngx_http_lua_module.so ] || need_apt+=(libnginx-mod-http-lua)
# the built trace-hook runs under busybox's static shell, whose mv applet needs no exec
[ -x /bin/busybox ] || need_apt+=(busybox-static)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

echo "setup: npm ci (better-sqlite3 is built from source)" >&2
npm ci --no-audit --no-fund
npm run build
echo "setup: done ($(nix --version), node $(node --version))" >&2
