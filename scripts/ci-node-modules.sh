#!/usr/bin/env bash
# CI's cache of node_modules between runs on one machine (better-sqlite3 takes minutes to
# compile on 2 cores): keyed by package-lock.json and a label naming the Node it was built for.
#   scripts/ci-node-modules.sh restore|save REPO LABEL
# restore: unpacks a cached copy into REPO when there is one (scripts/setup.sh then finds it
# up to date and skips npm ci); save: stores REPO/node_modules after a successful setup.
set -euo pipefail
op=${1:?}; repo=${2:?}; label=${3:?}
cache=${BUILDTRACE_CI_CACHE:-/var/cache/buildtrace-ci}
key=$(cat "$repo/package-lock.json" | sha256sum | cut -c1-12)
tarball="$cache/node_modules-$label-$key.tar"
case "$op" in
  restore)
    if [ -f "$tarball" ] && [ ! -e "$repo/node_modules" ]; then
      tar -xf "$tarball" -C "$repo" && echo "ci: node_modules from $tarball" >&2
    fi ;;
  save)
    if [ ! -f "$tarball" ] && [ -f "$repo/node_modules/.buildtrace-stamp" ]; then
      mkdir -p "$cache"
      tar -cf "$tarball.tmp.$$" -C "$repo" node_modules && mv "$tarball.tmp.$$" "$tarball"
    fi ;;
  *) echo "usage: ci-node-modules.sh restore|save REPO LABEL" >&2; exit 2 ;;
esac
