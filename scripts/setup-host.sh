#!/usr/bin/env bash
# Installs the system packages tsrun needs on Debian/Ubuntu, only the missing ones. Idempotent.
#
#   setup-host.sh quickstart   what running one container needs (npm run quickstart)
#   setup-host.sh [test]       that plus everything the tests, the VM lane and the benchmarks use
#
# When everything is present it only says so: no apt, no root needed (the fast path of every
# `npm test`). Installing needs root.
set -euo pipefail

want=${1:-test}
case "$want" in
  quickstart | test) ;;
  *) echo "setup-host: unknown set \"$want\" (quickstart or test)" >&2; exit 1 ;;
esac

# One entry per line, "CHECK=PACKAGE": CHECK is a command looked up on PATH, or an absolute path
# that must exist. To add a dependency, add a line to the set that needs it.
QUICKSTART=(
  runc=runc
  nft=nftables
  ip=iproute2
  /bin/busybox=busybox-static  # the demo and test rootfs
  nsenter=util-linux
  conmon=conmon                # the monitor of detached containers
  tini-static=tini             # tsrun run --init (a static init, bind-mounted as PID 1)
)
TEST=(
  etcd=etcd-server                                 # overlay networks
  etcdctl=etcd-client
  iperf3=iperf3                                    # throughput benchmark
  iptables=iptables                                # the CNI reference plugins in the benchmark
  /usr/lib/cni/bridge=containernetworking-plugins
  podman=podman                                    # conformance tests and benchmark
  qemu-system-x86_64=qemu-system-x86               # the VM test lane
  /sbin/depmod=kmod
  dot=graphviz                                     # tsrun topology --format svg
  script=bsdutils                                  # detached -t tests run under a pty
  containerd=containerd                            # tsrun-runc under containerd (ctr)
  dockerd=docker.io                                # tsrun-runc under Docker
  go=golang-go                                     # the OCI runtime-tools conformance suite
  dnsperf=dnsperf                                  # the dns benchmark
  /usr/lib/podman/aardvark-dns=aardvark-dns        # its peer in the dns benchmark
  catatonit=catatonit                              # tsrun run --init, the other init it accepts
)

entries=("${QUICKSTART[@]}")
[ "$want" = test ] && entries+=("${TEST[@]}")

missing=()
for entry in "${entries[@]}"; do
  what=${entry%%=*} pkg=${entry#*=}
  if [[ "$what" == /* ]]; then
    [ -e "$what" ] || missing+=("$pkg")
  else
    command -v "$what" >/dev/null 2>&1 || missing+=("$pkg")
  fi
done
# busybox-static ships /bin/busybox; a dynamic busybox package would satisfy the path check but
# cannot run inside a bare rootfs, so insist on the static one.
# libnftables (tsrun applies nftables batches through it in-process; nft is the fallback).
compgen -G '/usr/lib/*/libnftables.so.1' >/dev/null || missing+=(libnftables1)
if [ -e /bin/busybox ] && ! dpkg -s busybox-static >/dev/null 2>&1; then missing+=(busybox-static); fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-host: all system packages for \"$want\" present"
  exit 0
fi

mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-host: missing ${missing[*]}: run as root to install them (tsrun needs root anyway)" >&2
  exit 1
fi

# Debian's postinst scripts start a package's services (docker.io and containerd would start
# daemons on the machine's default sockets). A policy-rc.d answering 101 ("action forbidden")
# stops invoke-rc.d and deb-systemd-invoke from doing so. Only ours is removed afterwards.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# temporary, from tsrun scripts/setup-host.sh: start no services while installing\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi

echo "setup-host: installing for \"$want\": ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends keeps podman from pulling in a second network stack we do not use.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup-host: done"
