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
# headless Chromium renders trace-verify plan's --html page in its test
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# node_modules as `npm ci` left it for this lock file and this Node: nothing to do (CI restores
# a cached copy; a second run of this script is quick)
stamp="$(sha256sum package-lock.json | cut -c1-64) $(node --version) $(uname -m)"
if [ -f node_modules/.buildtrace-stamp ] && [ "$(cat node_modules/.buildtrace-stamp)" = "$stamp" ]; then
  echo "setup: node_modules is up to date for package-lock.json and node $(node --version)" >&2
else
  echo "setup: npm ci (better-sqlite3 is built from source)" >&2
  npm ci --no-audit --no-fund
  echo "$stamp" > node_modules/.buildtrace-stamp
fi
npm run build
echo "setup: done ($(nix --version), node $(node --version))" >&2
