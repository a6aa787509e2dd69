#!/usr/bin/env bash
# Runs the quick start and the Nix-dependent test suites inside a Debian chroot (made or taken
# from the cache by scripts/ci-chroot.sh) with that suite's Nix and Node, on a fresh Nix store.
#   scripts/ci-suite.sh SUITE LOGDIR
# Writes LOGDIR/<suite>.log (everything) and LOGDIR/<suite>.result (one line:
# "nix=… node=… pass=N fail=N quickstart=ok|failed seconds=N"). Exit 0 when all passed.
set -euo pipefail
suite=${1:?usage: ci-suite.sh SUITE LOGDIR}
logdir=${2:?usage: ci-suite.sh SUITE LOGDIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$logdir"
log="$logdir/$suite.log"
result="$logdir/$suite.result"
: > "$log"
start=$(date +%s)
# The Nix-dependent suites (those present are run; a missing one is not an error).
TEST_FILES=${BUILDTRACE_CI_TESTS:-"nix-formats hook daemon daemon-redteam nix-versions crash publish verify"}

fail_result() {
  echo "nix=? node=? pass=0 fail=1 quickstart=not-run seconds=$(($(date +%s) - start)) note=$1" > "$result"
  echo "ci-suite: $suite: $1 (see $log)" >&2
  exit 1
}

root=$(bash "$repo/scripts/ci-chroot.sh" "$suite" 2>>"$log") || fail_result "making the chroot failed"
echo "ci-suite: $suite: chroot $root ($(($(date +%s) - start)) s)" >&2

# Per-run state on the host, bound into the chroot: a fresh /nix, the repository's files as a
# fresh clone would have them (tracked and untracked-but-not-ignored), a fresh /tmp.
run=$(mktemp -d "/var/tmp/buildtrace-ci-$suite.XXXXXX")
cleanup() { rm -rf "$run"; }
trap cleanup EXIT
mkdir -p "$run/nix" "$run/src" "$run/tmp" "${BUILDTRACE_CI_CACHE:-/var/cache/buildtrace-ci}/npm-$suite"
chmod 1777 "$run/tmp"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done | tar --null -T - -cf -) | tar -xf - -C "$run/src"
bash "$repo/scripts/ci-node-modules.sh" restore "$run/src" "$(basename "$root")" 2>>"$log"

inner=$(cat <<'INNER'
set -uo pipefail
cd /buildtrace
echo "== versions: $(nix --version), node $(node --version), npm $(npm --version)"
t0=$(date +%s)
qs=failed
if bash scripts/setup.sh && bash scripts/demo.sh; then qs=ok; fi
echo "== quick start: $qs ($(($(date +%s) - t0)) s)"
files=()
for t in $TEST_FILES; do [ -f "dist/test/$t.test.js" ] && files+=("dist/test/$t.test.js"); done
echo "== tests: ${files[*]}"
t1=$(date +%s)
node --test --test-concurrency=1 --test-reporter=spec "${files[@]}" 2>&1 | tee /tmp/tests.out
echo "== tests done ($(($(date +%s) - t1)) s)"
pass=$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' /tmp/tests.out | tail -n 1)
fail=$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' /tmp/tests.out | tail -n 1)
nixv=$(nix --version | sed 's/^nix (\(.*\)) /\1-/;s/^Nix-//')
echo "RESULT nix=$nixv node=$(node --version) pass=${pass:-0} fail=${fail:-1} quickstart=$qs"
INNER
)

# A private mount namespace: every mount below disappears with it, however this script ends.
# at most 45 minutes: a hung test fails the suite instead of eating CI's time
timeout --kill-after=30 2700 unshare --mount --propagation private -- bash -euc '
  root=$1; run=$2; inner=$3; tests=$4
  mkdir -p "$root/nix" "$root/buildtrace" "$root/root/.npm"
  mount --bind "$run/nix" "$root/nix"
  mount --bind "$run/src" "$root/buildtrace"
  mount --bind "$run/tmp" "$root/tmp"
  mount --bind "$5" "$root/root/.npm"
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount --rbind /sys "$root/sys"
  exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 CI=true TEST_FILES="$tests" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/buildtrace-host-ca.crt \
    /bin/bash -c "$inner"
' ci-suite "$root" "$run" "$inner" "$TEST_FILES" "${BUILDTRACE_CI_CACHE:-/var/cache/buildtrace-ci}/npm-$suite" >>"$log" 2>&1 || true

bash "$repo/scripts/ci-node-modules.sh" save "$run/src" "$(basename "$root")" 2>>"$log" || true
line=$(sed -n 's/^RESULT //p' "$log" | tail -n 1)
[ -n "$line" ] || fail_result "the chroot run ended early"
echo "$line seconds=$(($(date +%s) - start))" > "$result"
echo "ci-suite: $suite: $(cat "$result")" >&2
case "$line" in *" fail=0 quickstart=ok"*) exit 0 ;; *) exit 1 ;; esac
