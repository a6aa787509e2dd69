#!/usr/bin/env bash
# Runs built test files one at a time (node --test, spec reporter) and sums them up, so that a
# file that did not run is seen: one line per file, then the totals in node's own summary form
# (the last "ℹ pass N" / "ℹ fail N" / "ℹ skipped N" lines are the run's).
#   scripts/run-tests.sh [FILE...]        default: every dist/test/*.test.js
#   scripts/run-tests.sh --nix            the files marked `// ci: nix` (see below)
# A file counts as failed when it is missing, reports no test at all, or its process fails
# (a crash at import is reported by node as a failing test). Skipped tests are counted and
# listed; a test that must not skip where a tool is expected fails instead (BUILDTRACE_REQUIRE,
# test/helpers.ts requireOrSkip). A file still running after BUILDTRACE_TEST_FILE_TIMEOUT seconds
# (default 1200; the slowest file took 249 s in a chroot under load) is killed and counted as
# failed: a wait for an event that never comes fails the run instead of hanging it.
#
# Nix-touching test files carry the line `// ci: nix` near their top: they run on the host
# (Nix 2.8) and in the trixie and sid chroots (scripts/ci-suite.sh). Adding a file to the
# chroot stages is adding that line.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --nix ]; then
  shift
  set -- $(grep -lE -m1 '^// ci: nix( |$)' test/*.test.ts | sed 's|^test/\(.*\)\.ts$|dist/test/\1.js|' | sort)
fi
[ $# -gt 0 ] || set -- dist/test/*.test.js

summary=$(mktemp)
out=$(mktemp)
trap 'rm -f "$summary" "$out"' EXIT
tp=0; tf=0; ts=0; tn=0; bad=()
for f in "$@"; do
  name=$(basename "$f" .test.js)
  if [ ! -f "$f" ]; then
    echo "run-tests: $name: MISSING ($f)" >> "$summary"
    bad+=("$name"); tf=$((tf + 1)); continue
  fi
  t0=$(date +%s)
  limit=${BUILDTRACE_TEST_FILE_TIMEOUT:-1200}
  timeout --kill-after=30 "$limit" node --test --test-concurrency=1 --test-reporter=spec "$f" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  get() { sed -n "s/^ℹ $1 \([0-9]*\)$/\1/p" "$out" | tail -n 1; }
  n=$(get tests); p=$(get pass); x=$(get fail); s=$(get skipped); c=$(get cancelled)
  n=${n:-0}; p=${p:-0}; x=${x:-0}; s=${s:-0}; c=${c:-0}
  x=$((x + c))
  note=""
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    note=" TIMED OUT after $limit s"; x=$((x + 1))
  elif [ "$n" = 0 ]; then
    note=" NOT RUN (no test reported)"; x=$((x + 1))
  elif [ "$rc" != 0 ] && [ "$x" = 0 ]; then
    note=" FAILED (exit $rc with no failing test)"; x=1
  fi
  [ "$x" = 0 ] || bad+=("$name")
  [ "$s" = 0 ] || note="$note (skipped: $(sed -n 's/^ *﹣ \(.*\) ([0-9.]*ms) # \(.*\)$/\1: \2/p' "$out" | paste -sd';' -))"
  echo "run-tests: $name: $p passed, $x failed, $s skipped ($(($(date +%s) - t0)) s)$note" >> "$summary"
  tp=$((tp + p)); tf=$((tf + x)); ts=$((ts + s)); tn=$((tn + n))
done
echo
cat "$summary"
[ ${#bad[@]} = 0 ] || echo "run-tests: failed or not run: ${bad[*]}"
echo "ℹ tests $tn"
echo "ℹ pass $tp"
echo "ℹ fail $tf"
echo "ℹ skipped $ts"
[ "$tf" = 0 ]
