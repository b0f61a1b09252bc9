#!/usr/bin/env bash
# Fetches Debian's stock kernel for the VM test lane and unpacks it into a cache directory, never
# installing it: the package is downloaded with `apt-get download`, extracted with `dpkg-deb -x`
# and given a module index with `depmod -b`. Idempotent: a finished cache (marked by .ready) is
# reused as is. Prints the cache directory on stdout (the kernel is DIR/boot/vmlinuz-VERSION, the
# modules DIR/lib/modules/VERSION, the version in DIR/version).
#
# Usage: scripts/vm/prepare-kernel.sh   (TSRUN_VM_KERNEL_PKG=linux-image-… to pin a package)
set -euo pipefail
cd "$(dirname "$0")/../.."

cache_root=rootfs-fixtures/.cache/vm
mkdir -p "$cache_root"
log() { echo "prepare-kernel: $*" >&2; }

# The metapackage names the current ABI's image package (e.g. linux-image-6.1.0-56-amd64). Asking
# apt, rather than hard-coding it, follows Debian's security updates, which retire old ABIs.
pkg=${TSRUN_VM_KERNEL_PKG:-}
if [ -z "$pkg" ]; then
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1)
  if [ -z "$pkg" ]; then
    # A machine that never ran `apt-get update` knows no package lists yet.
    log "refreshing apt's package lists"
    apt-get update -qq >&2
    pkg=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1)
  fi
fi
if [ -z "$pkg" ]; then
  # No fresh lists at all (offline machine): fall back to any kernel already unpacked.
  ready=$(ls -d "$cache_root"/linux-image-*/.ready 2>/dev/null | sort -V | tail -n1 || true)
  if [ -n "$ready" ]; then
    log "apt names no kernel package; reusing $(dirname "$ready")"
    realpath "$(dirname "$ready")"
    exit 0
  fi
  log "cannot tell which linux-image package to use (apt-cache depends linux-image-amd64 named none)"
  exit 1
fi
version=${pkg#linux-image-}
dir=$cache_root/$pkg

if [ -f "$dir/.ready" ]; then
  realpath "$dir"
  exit 0
fi

log "fetching $pkg (extracted into $dir, not installed)"
work=$(mktemp -d "$cache_root/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
# apt-get download writes into the current directory; as root it warns that the sandboxed _apt
# user cannot write there, which is harmless, so it runs in a subshell inside the work dir.
(cd "$work" && apt-get download -q "$pkg" >&2 2> >(grep -v 'unsandboxed as root' >&2))
deb=$(ls "$work"/*.deb)
mkdir -p "$work/tree"
dpkg-deb -x "$deb" "$work/tree"
# Debian bookworm ships the modules under /lib; later releases under /usr/lib. depmod -b wants
# BASE/lib/modules/VERSION, so make sure that path exists either way.
if [ ! -d "$work/tree/lib/modules/$version" ] && [ -d "$work/tree/usr/lib/modules/$version" ]; then
  mkdir -p "$work/tree/lib/modules"
  ln -s "../../usr/lib/modules/$version" "$work/tree/lib/modules/$version"
fi
[ -f "$work/tree/boot/vmlinuz-$version" ] || { log "$deb has no boot/vmlinuz-$version"; exit 1; }
[ -d "$work/tree/lib/modules/$version/kernel" ] || { log "$deb has no lib/modules/$version/kernel"; exit 1; }
depmod -b "$work/tree" "$version"
echo "$version" >"$work/tree/version"
touch "$work/tree/.ready"

# Publish atomically: a concurrent or interrupted run never leaves a half-made directory behind
# under the final name.
rm -rf "$dir"
mv "$work/tree" "$dir"
# Older kernels' trees are of no further use; keep only the current one.
for old in "$cache_root"/linux-image-*; do
  [ "$old" = "$dir" ] || rm -rf "$old"
done
log "ready: $(du -sh "$dir" | cut -f1) in $dir"
realpath "$dir"
