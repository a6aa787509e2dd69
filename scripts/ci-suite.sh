#!/usr/bin/env bash
# Runs the quick start and the Nix-dependent test suites inside a Debian chroot (made or taken
# from the cache by scripts/ci-chroot.sh) with that suite's Nix and Node, on a fresh Nix store.
#   scripts/ci-suite.sh SUITE LOGDIR
# Writes LOGDIR/<suite>.log (everything), LOGDIR/<suite>.files (one line per test file: passed,
# failed, skipped) and LOGDIR/<suite>.result (one line:
# "nix=… node=… pass=N fail=N skip=N quickstart=ok|failed seconds=N"). Exit 0 when all passed.
# A marked test file that is missing or reports no test counts as failed (scripts/run-tests.sh).
set -euo pipefail
suite=${1:?usage: ci-suite.sh SUITE LOGDIR}
logdir=${2:?usage: ci-suite.sh SUITE LOGDIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$logdir"
log="$logdir/$suite.log"
result="$logdir/$suite.result"
: > "$log"
start=$(date +%s)
# The Nix-dependent suites: every test file marked `// ci: nix` (scripts/run-tests.sh --nix);
# BUILDTRACE_CI_TESTS="a b" narrows a run to test/a.test.ts and test/b.test.ts (to try CI itself).
TEST_FILES=${BUILDTRACE_CI_TESTS:-}
# Tools these chroots install for tests that skip without them on the host: here a missing one
# fails its test instead (test/helpers.ts requireOrSkip).
REQUIRE=${BUILDTRACE_CI_REQUIRE:-"moto cosign"}

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
# node_modules per suite, not per package list: setup.sh rebuilds it when the chroot's Node changed
bash "$repo/scripts/ci-node-modules.sh" restore "$run/src" "chroot-$suite" 2>>"$log"

inner=$(cat <<'INNER'
set -uo pipefail
cd /buildtrace
echo "== versions: $(nix --version), node $(node --version), npm $(npm --version)"
t0=$(date +%s)
qs=failed
if bash scripts/setup.sh && bash scripts/demo.sh; then qs=ok; fi
echo "== quick start: $qs ($(($(date +%s) - t0)) s)"
files=()
if [ -n "$TEST_FILES" ]; then
  for t in $TEST_FILES; do files+=("dist/test/$t.test.js"); done
else
  files=(--nix)
fi
echo "== tests: ${files[*]}"
t1=$(date +%s)
BUILDTRACE_REQUIRE="$REQUIRE" bash scripts/run-tests.sh "${files[@]}" 2>&1 | tee /tmp/tests.out
echo "== tests done ($(($(date +%s) - t1)) s)"
sed -n 's/^run-tests: /FILE /p' /tmp/tests.out
pass=$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' /tmp/tests.out | tail -n 1)
fail=$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' /tmp/tests.out | tail -n 1)
skip=$(sed -n 's/^ℹ skipped \([0-9]*\)$/\1/p' /tmp/tests.out | tail -n 1)
nixv=$(nix --version | sed 's/^nix (\(.*\)) /\1-/;s/^Nix-//')
echo "RESULT nix=$nixv node=$(node --version) pass=${pass:-0} fail=${fail:-1} skip=${skip:-0} quickstart=$qs"
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
  exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 CI=true TEST_FILES="$tests" REQUIRE="$6" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/buildtrace-host-ca.crt \
    /bin/bash -c "$inner"
' ci-suite "$root" "$run" "$inner" "$TEST_FILES" "${BUILDTRACE_CI_CACHE:-/var/cache/buildtrace-ci}/npm-$suite" "$REQUIRE" >>"$log" 2>&1 || true

bash "$repo/scripts/ci-node-modules.sh" save "$run/src" "chroot-$suite" 2>>"$log" || true
sed -n 's/^FILE //p' "$log" > "$logdir/$suite.files"
line=$(sed -n 's/^RESULT //p' "$log" | tail -n 1)
[ -n "$line" ] || fail_result "the chroot run ended early"
echo "$line seconds=$(($(date +%s) - start))" > "$result"
echo "ci-suite: $suite: $(cat "$result")" >&2
# skip=N sits between fail= and quickstart=
case "$line" in *" fail=0 "*quickstart=ok*) exit 0 ;; *) exit 1 ;; esac
