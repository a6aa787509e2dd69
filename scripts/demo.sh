#!/usr/bin/env bash
# The main job, end to end on this machine: a signing key made by Nix, trace-daemon
# running, real Nix builds (input-addressed, content-addressed, fixed-output) with
# trace-hook as post-build-hook, then status, list, show and signature checks.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d /tmp/buildtrace-demo.XXXXXX)
echo "demo: working in $work"

export NIX_CONFIG="sandbox = false
build-users-group =
substituters =
experimental-features = nix-command ca-derivations
post-build-hook = $root/dist/trace-hook"
export BUILDTRACE_SPOOL=$work/spool
mkdir -p "$work/spool"

nix key generate-secret --key-name demo-builder-1 > "$work/key.sec"
chmod 600 "$work/key.sec"
nix key convert-secret-to-public < "$work/key.sec" > "$work/key.pub"
cat > "$work/config.json" <<JSON
{ "signingKeyFile": "$work/key.sec", "spoolDir": "$work/spool", "stateDir": "$work/state", "socket": "$work/daemon.sock",
  "caches": [ { "url": "file://$work/cache" } ], "uploadOutputs": true }
JSON

daemon() { node "$root/dist/daemon/cli.js" "$@" --socket "$work/daemon.sock"; }
node "$root/dist/daemon/cli.js" run --config "$work/config.json" 2> "$work/daemon.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do daemon status --json >/dev/null 2>&1 && break; sleep 0.1; done

salt=$(date +%s%N)
fod_hash=$(printf 'fixed-%s\n' "$salt" | sha256sum | cut -d' ' -f1)
echo "demo: building the fixture closure (salt $salt)"
outs=$(nix-build --no-out-link "$root/test/fixtures/scope.nix" --argstr salt "$salt" --argstr fodHash "$fod_hash" \
  -A ia3 -A deferred -A multi -A uses-dev -A fod)
echo "$outs"

daemon push --wait
echo; echo "== trace-daemon status"; daemon status
echo; echo "== trace-daemon list"; daemon list
drv=$(nix-instantiate "$root/test/fixtures/scope.nix" --argstr salt "$salt" --argstr fodHash "$fod_hash" -A deferred 2>/dev/null)
echo; echo "== trace-daemon show $drv"; daemon show "$drv"

echo; echo "== checking every bundle against $(cat "$work/key.pub")"
node "$root/dist/verify/cli.js" bundles --db "$work/state/buildtrace.db" --key "$work/key.pub"

cat > "$work/policy.json" <<JSON
{ "keys": { "demo": { "publicKey": "$(cat "$work/key.pub")" } }, "trust": "demo" }
JSON
echo; echo "== the binary cache $work/cache: narinfo, NARs and traces beside them"
echo "$(ls "$work/cache"/*.narinfo | wc -l) narinfo files, $(ls "$work/cache/traces" | wc -l) trace objects"
# shellcheck disable=SC2086
nix path-info --store "file://$work/cache" $outs >/dev/null && echo "stock Nix reads all $(echo "$outs" | wc -l) outputs back from the cache"
echo; echo "== trace-verify $drv (the whole closure, from the cache, under $work/policy.json)"
node "$root/dist/verify/cli.js" "$drv" --policy "$work/policy.json" --cache "file://$work/cache"

kill -TERM $pid; wait $pid || true
trap - EXIT
echo; echo "demo: ok ($work)"
