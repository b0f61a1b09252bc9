#!/usr/bin/env bash
# Builds an OCI bundle (rootfs + config.json) from Debian's busybox-static, for the tests, the
# quickstart and the benchmarks. Nothing binary is committed: the bundle is built into a cache
# directory and rebuilt only when busybox changes.
#
#   build-busybox.sh [DEST]     default DEST: rootfs-fixtures/.cache/busybox
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-$here/.cache/busybox}
busybox=/bin/busybox

if [ ! -x "$busybox" ] || ! "$busybox" --list >/dev/null 2>&1; then
  echo "build-busybox: $busybox missing or not static: run scripts/setup-host.sh (busybox-static)" >&2
  exit 1
fi
command -v runc >/dev/null || { echo "build-busybox: runc missing: run scripts/setup-host.sh" >&2; exit 1; }

stamp="$(cat "$busybox" "$0" | sha256sum | cut -c1-16)"
if [ -f "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "$stamp" ]; then
  exit 0
fi

mkdir -p "$(dirname "$dest")"
tmp=$(mktemp -d "${dest%/}.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
rootfs=$tmp/rootfs
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,var/www,run}
chmod 1777 "$rootfs/tmp"
cp "$busybox" "$rootfs/bin/busybox"

# Every applet, at the path busybox itself reports (bin/sh, sbin/ip, usr/bin/nc, …).
"$busybox" --list-full | while read -r applet; do
  [ "$applet" = "bin/busybox" ] && continue
  mkdir -p "$rootfs/$(dirname "$applet")"
  ln -sf /bin/busybox "$rootfs/$applet"
done

cat > "$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$rootfs/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
cat > "$rootfs/etc/hosts" <<'HOSTS'
127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
HOSTS
# Containers in tests never resolve names beyond the machine; a loopback resolver keeps any
# accidental lookup on the host.
echo "nameserver 127.0.0.1" > "$rootfs/etc/resolv.conf"
echo "tsrun busybox fixture" > "$rootfs/var/www/index.html"

# runc's default spec, made non-interactive; tsrun and the tests rewrite what they need.
(cd "$tmp" && runc spec)
node -e '
  const fs = require("fs");
  const file = process.argv[1];
  const spec = JSON.parse(fs.readFileSync(file, "utf8"));
  spec.process.terminal = false;
  spec.process.args = ["sh", "-c", "ip -o addr; ip route"];
  spec.hostname = "busybox";
  // The Docker default capability set, so ping (CAP_NET_RAW) and servers work as users expect.
  const caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL", "CAP_AUDIT_WRITE"];
  for (const set of ["bounding", "effective", "permitted"]) spec.process.capabilities[set] = caps;
  delete spec.process.capabilities.ambient;
  fs.writeFileSync(file, JSON.stringify(spec, null, 2) + "\n");
' "$tmp/config.json"

echo "$stamp" > "$tmp/.stamp"
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mv "$tmp" "$dest"
trap - EXIT
echo "build-busybox: bundle ready at $dest"
