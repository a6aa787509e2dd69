#!/usr/bin/env bash
# A Debian chroot with that suite's Nix and Node, made with mmdebstrap from Debian's packages
# and cached between runs: /var/cache/buildtrace-ci/<suite>-<hash of suite + packages>.
# Prints the chroot's directory on stdout; everything else goes to stderr.
#   scripts/ci-chroot.sh trixie|sid
set -euo pipefail
suite=${1:?usage: ci-chroot.sh SUITE}
cache=${BUILDTRACE_CI_CACHE:-/var/cache/buildtrace-ci}
mirror=${BUILDTRACE_CI_MIRROR:-http://deb.debian.org/debian}

# Everything the quick start and the Nix-dependent suites need. better-sqlite3 compiles from
# source (build-essential, python3): no prebuilt binary can be downloaded here.
packages=(nix-bin nodejs npm nginx-light libnginx-mod-http-lua busybox-static build-essential python3
  ca-certificates git mount util-linux bsdutils procps xz-utils
  # GNU time: test/hostile-cache.test.ts measures each hostile run's peak RSS with /usr/bin/time
  time
  # cosign: Sigstore's own client verifies our bundles; moto: an S3 server that checks SigV4 and
  # conditional writes (neither is in bookworm)
  cosign python3-moto python3-flask python3-flask-cors)
IFS=, ; list="${packages[*]}"; unset IFS
key=$(printf '%s\n' "$suite" "$list" "$mirror" v1 | sha256sum | cut -c1-12)
root="$cache/$suite-$key"

if [ -e "$root/.buildtrace-ready" ]; then
  echo "ci-chroot: $suite: cached $root" >&2
  echo "$root"
  exit 0
fi

command -v mmdebstrap >/dev/null || {
  echo "ci-chroot: installing mmdebstrap" >&2
  for i in 1 2 3; do
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null) && break
    [ "$i" = 3 ] && { echo "ci-chroot: cannot install mmdebstrap" >&2; exit 1; }
    sleep $((i * 10))
  done
}

mkdir -p "$cache"
tmp="$cache/.tmp-$suite-$key-$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
for i in 1 2 3; do
  # sid's Release files can be past Valid-Until on a mirror snapshot; retries cover flaky downloads
  if mmdebstrap --variant=apt --include="$list" \
      --aptopt='Acquire::Retries "5"' --aptopt='Acquire::Check-Valid-Until "false"' \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      "$suite" "$tmp" "$mirror" >&2; then
    break
  fi
  [ "$i" = 3 ] && { echo "ci-chroot: mmdebstrap $suite failed 3 times" >&2; exit 1; }
  echo "ci-chroot: mmdebstrap $suite failed, retrying" >&2
  rm -rf "$tmp"
  sleep $((i * 15))
done
# npm behind a TLS-intercepting proxy needs the host's CA bundle
cp /etc/ssl/certs/ca-certificates.crt "$tmp/etc/ssl/certs/buildtrace-host-ca.crt"
touch "$tmp/.buildtrace-ready"
rm -rf "$root"
mv "$tmp" "$root"
trap - EXIT
echo "ci-chroot: $suite: made $root in $(($(date +%s) - start)) s" >&2
echo "$root"
