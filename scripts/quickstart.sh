#!/usr/bin/env bash
# The README's first command ends here: run a busybox container through `tsrun run` with bridge
# networking; it prints its interfaces and routes and exits 0.
#
# By default the demo runs inside a throwaway network namespace that plays the host, so trying
# tsrun never changes this machine's own network (its bridge, nftables table and routes live and
# die with that namespace). TSRUN_QUICKSTART_ON_HOST=1 runs it on the real host instead.
set -euo pipefail
cd "$(dirname "$0")/.."

bundle=rootfs-fixtures/.cache/busybox
tsrun=(dist/bundle/tsrun)

if [ "${TSRUN_QUICKSTART_ON_HOST:-0}" = 1 ]; then
  exec "${tsrun[@]}" run --net bridge "$bundle" -- sh -c 'echo "== inside a tsrun container"; ip addr; ip route'
fi

root=$(mktemp -d /tmp/tsrun-quickstart.XXXXXX)
unshare --net sleep infinity &
pin=$!
cleanup() { kill "$pin" 2>/dev/null || true; wait "$pin" 2>/dev/null || true; rm -rf "$root"; }
trap cleanup EXIT
# Wait for the throwaway namespace; if it never appears, stop: running on would change this
# machine's own network.
own=$(readlink /proc/self/ns/net)
ready=0
for _ in $(seq 300); do
  ns=$(readlink /proc/$pin/ns/net 2>/dev/null || true)
  exe=$(readlink /proc/$pin/exe 2>/dev/null || true)
  if [ -n "$ns" ] && [ "$ns" != "$own" ] && [ "${exe##*/}" = sleep ]; then ready=1; break; fi
  kill -0 "$pin" 2>/dev/null || break
  sleep 0.01
done
if [ "$ready" != 1 ]; then
  echo "quickstart: the demo network namespace did not come up (unshare --net failed?); not running on this machine's own network" >&2
  exit 1
fi
nsenter --net=/proc/$pin/ns/net ip link set lo up

echo "== tsrun run --net bridge $bundle (demo host: a throwaway network namespace)"
TSRUN_ROOT=$root nsenter --net=/proc/$pin/ns/net "${tsrun[@]}" run --net bridge "$bundle" -- \
  sh -c 'echo "== inside a tsrun container"; ip addr; ip route; ping -c1 -W2 "$(ip route | awk "/default/ {print \$3}")" >/dev/null && echo "== the gateway answers"'
