#!/usr/bin/env bash
# systemd-unit.sh: etc/escalatord.service passes "systemd-analyze
# verify" (with the binaries and man pages it names stood in for, since
# they need not be installed) and keeps its sandbox: an exposure of at
# most 3.0 by "systemd-analyze security". Skips (77) without
# systemd-analyze.
set -euo pipefail

src=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
command -v systemd-analyze >/dev/null || { echo "skip: no systemd-analyze"; exit 77; }

work=$(mktemp -d /tmp/escalator-unit.XXXXXX)
trap 'rm -rf "$work"' EXIT
sed -e 's|/usr/sbin/escalatord|/bin/true|' \
    -e 's|/usr/bin/escalatorctl|/bin/true|' \
    -e '/^Documentation=/d' \
    "$src/etc/escalatord.service" > "$work/escalatord.service"

if ! systemd-analyze verify "$work/escalatord.service" > "$work/verify" 2>&1 ||
    [ -s "$work/verify" ]; then
	echo "not ok - systemd-analyze verify:"; cat "$work/verify"; exit 1
fi
echo "ok - systemd-analyze verify"

exposure=$(systemd-analyze security --offline=yes \
    "$work/escalatord.service" 2>/dev/null |
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
if [ -z "$exposure" ] || ! awk -v e="$exposure" 'BEGIN { exit !(e <= 3.0) }'; then
	echo "not ok - exposure ${exposure:-unknown}, want at most 3.0"; exit 1
fi
echo "ok - exposure $exposure"
