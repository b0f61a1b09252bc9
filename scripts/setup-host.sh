#!/usr/bin/env bash
# Installs the system packages tsrun needs on Debian/Ubuntu, only when missing. Idempotent.
# Runs as root (tsrun manages namespaces, cgroups and nftables, which needs root anyway).
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-host: must run as root (tsrun manages namespaces, cgroups and nftables)" >&2
  exit 1
fi

# command-or-file → Debian package that provides it
declare -A NEEDED=(
  [runc]=runc
  [nft]=nftables
  [ip]=iproute2
  [/bin/busybox]=busybox-static
  [nsenter]=util-linux
  [etcd]=etcd-server
  [etcdctl]=etcd-client
  [iperf3]=iperf3
  [iptables]=iptables
  [/usr/lib/cni/bridge]=containernetworking-plugins
  [podman]=podman
  [qemu-system-x86_64]=qemu-system-x86
  [/sbin/depmod]=kmod
)

missing=()
for what in "${!NEEDED[@]}"; do
  if [[ "$what" == /* ]]; then
    [ -e "$what" ] || missing+=("${NEEDED[$what]}")
  else
    command -v "$what" >/dev/null 2>&1 || missing+=("${NEEDED[$what]}")
  fi
done
# busybox-static ships /bin/busybox; a dynamic busybox package would satisfy the path check but
# cannot run inside a bare rootfs, so insist on the static one.
if [ -e /bin/busybox ] && ! dpkg -s busybox-static >/dev/null 2>&1; then missing+=(busybox-static); fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-host: all system packages present"
  exit 0
fi

mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "setup-host: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends keeps podman from pulling in a second network stack we do not use.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup-host: done"
