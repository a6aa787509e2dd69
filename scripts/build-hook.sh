#!/bin/sh
# Writes the installed trace-hook from the template hook/trace-hook.
#   scripts/build-hook.sh OUT [BUSYBOX] [SPOOL]
# With a busybox (default /bin/busybox) whose shell runs applets without looking at PATH
# (FEATURE_SH_STANDALONE), the hook runs under that shell and `mv` is the applet: no exec
# per build. Otherwise it stays a /bin/sh script calling busybox's mv, or else /bin/mv.
set -eu
out=$1
busybox=${2:-/bin/busybox}
spool=${3:-/var/spool/buildtrace}
src=$(dirname "$0")/../hook/trace-hook

shell=/bin/sh mv=/bin/mv
# PATH points nowhere, so only a built-in applet can answer
if [ -x "$busybox" ] && env -i PATH=/nonexistent "$busybox" sh -c 'mv --help' >/dev/null 2>&1; then
  shell="$busybox sh" mv=mv
elif [ -x "$busybox" ]; then
  mv="$busybox mv"  # still static: starts faster than coreutils' mv
fi
mkdir -p "$(dirname "$out")"
sed -e "1s|^#!/bin/sh\$|#!$shell|" -e "s|^mv=@mv@\$|mv=$mv|" -e "s|:-@spool@}|:-$spool}|" "$src" > "$out.tmp"
chmod 755 "$out.tmp"
mv -f "$out.tmp" "$out"
echo "build-hook: $out runs under $shell, mv is $mv" >&2
