#!/usr/bin/env bash
# The VM test lane: runs compiled jest test files inside a stock Debian kernel under qemu, for
# kernel features this machine's kernel lacks (ipvlan). The guest has no network device at all;
# it sees the host's / read-only over 9p (so it runs the host's own node, runc, ip, nft and this
# project's dist/) and writes only to a fresh results directory shared with it. Its console is
# streamed here prefixed "vm| "; then the jest report is judged by summarize.mjs. Exits non-zero
# when a test failed or was skipped inside the VM, when the guest did not boot or finish, or on
# timeout (qemu is killed).
#
# Usage: scripts/vm/run-tests.sh [--summary FILE] [TEST.js ...]
#   TEST.js     compiled test files (default: dist/test/integration/ipvlan.test.js and
#               dist/test/vm/kernel-features.test.js, whichever exist). Build first.
#   --summary   write "PASSED FAILED" to FILE (for .ci/run's totals), even on boot failure.
# Environment: TSRUN_VM_TIMEOUT (seconds, default 900), TSRUN_VM_MEM (MiB, default 2048),
#   TSRUN_VM_SMP (default 2), TSRUN_VM_KEEP=1 (keep the work directory for debugging).
set -euo pipefail
cd "$(dirname "$0")/../.."
project=$(pwd -P)

summary=
tests=()
while [ $# -gt 0 ]; do
  case "$1" in
    --summary) summary=${2:?--summary needs a file}; shift 2 ;;
    --summary=*) summary=${1#--summary=}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run-tests: unknown option $1" >&2; exit 2 ;;
    *) tests+=("$1"); shift ;;
  esac
done

log() { echo "vm: $*"; }
# Whatever ends the lane early still leaves .ci/run a count to add: one failure.
fail_early() {
  log "$*"
  [ -n "$summary" ] && echo "0 1" >"$summary"
  log "0 passed, 1 failed"
  exit 1
}

if [ ${#tests[@]} -eq 0 ]; then
  for t in dist/test/integration/ipvlan.test.js dist/test/vm/kernel-features.test.js; do
    [ -f "$t" ] && tests+=("$t")
  done
  [ ${#tests[@]} -gt 0 ] || fail_early "no compiled VM test files in dist/ (run npm run build first)"
fi
abs_tests=()
for t in "${tests[@]}"; do
  [ -f "$t" ] || fail_early "no such test file: $t (give compiled files under dist/, after npm run build)"
  abs=$(realpath "$t")
  # jest's rootDir in the guest is dist/, and the guest sees the host's /tmp only where it holds
  # the project: tests live in the project's dist/.
  [[ "$abs" == "$project/dist/"*.js ]] || fail_early "not a compiled test under $project/dist/: $t"
  abs_tests+=("$abs")
done
# The guest's init is busybox sh reading these from a sourced file: keep them to plain characters.
for p in "$project" "${abs_tests[@]}"; do
  [[ "$p" =~ ^[A-Za-z0-9._/+@,=:-]+$ ]] || fail_early "path with unsupported characters: $p"
done

for cmd in qemu-system-x86_64 modprobe; do
  command -v "$cmd" >/dev/null || fail_early "$cmd is missing (run npm run setup)"
done
[ -x /bin/busybox ] || fail_early "/bin/busybox is missing (run npm run setup)"

log "[1/4] preparing the guest kernel"
kdir=$(bash scripts/vm/prepare-kernel.sh) || fail_early "could not prepare the guest kernel"
kver=$(cat "$kdir/version")
[[ "$kdir" =~ ^[A-Za-z0-9._/+@,=:-]+$ ]] || fail_early "path with unsupported characters: $kdir"

work=$(mktemp -d /tmp/tsrun-vm.XXXXXX)
results=$work/results
mkdir -p "$results" "$work/initramfs"
qemu_pid() { cat "$work/qemu.pid" 2>/dev/null || true; }
cleanup() {
  local pid
  pid=$(qemu_pid)
  # Only our own qemu, by the pid it wrote itself, and only if it is still that qemu.
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = qemu-system-x86 ]; then
    kill -KILL "$pid" 2>/dev/null || true
    # Let the console pipeline drain before its directory goes.
    [ -n "${pipeline_pid:-}" ] && wait "$pipeline_pid" 2>/dev/null
  fi
  if [ "${TSRUN_VM_KEEP:-0}" = 1 ]; then
    log "kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'log "interrupted: stopping qemu"; exit 130' INT TERM

# --- initramfs: static busybox, the 9p/virtio modules (dependencies first), and init ---------
log "[2/4] building the initramfs"
root=$work/initramfs
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/modules"
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
: >"$root/modules/order"
while read -r verb ko _; do
  [ "$verb" = insmod ] || continue # "builtin MOD" lines need nothing
  name=$(basename "$ko")
  grep -qxF "$name" "$root/modules/order" && continue
  cp "$ko" "$root/modules/$name"
  echo "$name" >>"$root/modules/order"
done < <(modprobe -d "$kdir" -S "$kver" --show-depends -a 9p 9pnet_virtio virtio_pci)
install -m 755 scripts/vm/init "$root/init"
(cd "$root" && find . | /bin/busybox cpio -o -H newc 2>/dev/null) | gzip -1 >"$work/initrd.gz"

# --- what the guest is to run ---------------------------------------------------------------
{
  echo "TSRUN_VM_PROJECT='$project'"
  echo "TSRUN_VM_KDIR='$kdir'"
  echo "TSRUN_VM_KVER='$kver'"
} >"$results/vm.env"
printf '%s\n' "${abs_tests[@]}" >"$results/tests.list"

timeout_s=${TSRUN_VM_TIMEOUT:-900}
log "booting Debian kernel $kver under qemu (tcg, no network device), timeout ${timeout_s}s"
log "tests: ${tests[*]}"
started=$(date +%s)
# KVM hangs on this machine; TCG with -cpu max boots in seconds. panic=-1 with -no-reboot makes a
# guest panic end qemu at once instead of waiting out the timeout. The pipeline runs in the
# background so that `wait` (unlike a foreground command) lets a signal reach the traps at once.
{
  set +e
  timeout -k 10 "$timeout_s" qemu-system-x86_64 \
    -accel tcg -cpu max -m "${TSRUN_VM_MEM:-2048}" -smp "${TSRUN_VM_SMP:-2}" \
    -nographic -nic none -no-reboot \
    -kernel "$kdir/boot/vmlinuz-$kver" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs "local,path=$results,mount_tag=results,security_model=none,multidevs=remap" \
    -pidfile "$work/qemu.pid" \
    </dev/null 2>&1 |
    tee "$work/console.log" |
    node scripts/vm/progress.mjs rootfs-fixtures/.cache/vm/durations.json "${abs_tests[@]}"
  echo "${PIPESTATUS[0]}" >"$work/qemu.status"
} 2>/dev/null & # (qemu's own stderr is in the pipe; this hides only bash's "Killed" job notes)
pipeline_pid=$!
wait "$pipeline_pid" || true
qemu_status=$(cat "$work/qemu.status" 2>/dev/null || echo unknown)
elapsed=$(($(date +%s) - started))

if [ "$qemu_status" = 124 ] || { [ "$qemu_status" = 137 ] && [ "$elapsed" -ge "$timeout_s" ]; }; then
  fail_early "timed out after ${elapsed}s: qemu killed"
fi
if [ ! -f "$results/exit-status" ]; then
  fail_early "the guest stopped without finishing (qemu exit $qemu_status after ${elapsed}s): see its console above"
fi
guest_status=$(cat "$results/exit-status")
log "guest finished in ${elapsed}s (guest-run.sh exit $guest_status)"
if [ ! -f "$results/jest.json" ]; then
  fail_early "the guest wrote no jest report (guest-run.sh exit $guest_status)"
fi

log "[4/4] judging the jest report"
set +e
node scripts/vm/summarize.mjs "$results/jest.json" ${summary:+"$summary"}
verdict=$?
set -e
# jest's own exit status counts too (e.g. a failure outside any test, like an open-handle error).
if [ "$verdict" = 0 ] && [ "$guest_status" != 0 ]; then
  [ -n "$summary" ] && read -r p f <"$summary" && echo "$p $((f + 1))" >"$summary"
  log "jest exited $guest_status inside the VM although no test failed"
  exit 1
fi
exit "$verdict"
