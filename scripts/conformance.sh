#!/usr/bin/env bash
# npm run conformance [-- --subset]
#
# Scores tsrun-runc with the OCI runtime-tools validation suite (built offline from Debian sources
# by ../shared/tools/conformance/build-runtime-tools.sh, cached in $CONFORMANCE_BIN), against runc
# on the same machine in the same run, three ways:
#   runc                  the reference
#   tsrun-runc            no tsrun annotations: must be runc exactly
#   tsrun-runc-bridge     every bundle with a network namespace annotated io.tsrun.network=conf
#                         (a bridge network), so every such container is wired at create and torn
#                         down at delete
# Everything runs inside a network namespace of its own (never the machine's), each runtime with a
# private runc --root and tsrun with a private TSRUN_ROOT. Prints each score ("N passed, N failed,
# N skipped") and the failures that runc does not have; exits 1 if there is any.
#
# --subset runs the fixed CI subset (SUBSET below, ~3 min for all three) instead of all 58
# programs (~9 min for the three on a quiet machine).
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

# The lifecycle, the state and its bundle, hooks (which tsrun-runc must leave to runc), pid files,
# kill, namespaces (ns_path: joining an existing one), and process set-up.
SUBSET="create start state kill delete delete_only_create_resources pidfile hooks poststop prestart linux_ns_path linux_ns_nopath process misc_props"

tools=${CONFORMANCE_TOOLS:-$repo/../shared/tools/conformance}
export CONFORMANCE_WORK=${CONFORMANCE_WORK:-/tmp/tsrun-conformance/work}
BIN=${CONFORMANCE_BIN:-/tmp/tsrun-conformance/bin}
RESULTS=${CONFORMANCE_RESULTS:-/tmp/tsrun-conformance/results/$(date +%Y%m%d-%H%M%S)}
case "${1:-}" in
  --subset) export TESTS=$SUBSET ;;
  "") ;;
  *) echo "conformance: unknown option $1 (use --subset or nothing)" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "conformance: must run as root (containers, namespaces)" >&2; exit 2; }
[ -d "$tools" ] || { echo "conformance: $tools not found (the shared tools directory beside the repository)" >&2; exit 2; }
[ -x dist/bundle/tsrun-runc ] || { echo "conformance: dist/bundle/tsrun-runc missing: npm run build" >&2; exit 2; }

if [ ! -x "$BIN/runtimetest" ] || [ ! -f "$BIN/rootfs-amd64.tar.gz" ] || [ ! -d "$BIN/validation" ]; then
  bash "$tools/build-runtime-tools.sh" "$BIN" || { echo "conformance: building the suite failed" >&2; exit 1; }
fi
export CONFORMANCE_BIN=$BIN

work=$(mktemp -d /tmp/tsrun-conformance-run.XXXXXX)
unshare --net sleep infinity &
pin=$!
cleanup() {
  kill "$pin" 2>/dev/null
  for root in "$work"/roots/*; do
    [ -d "$root" ] || continue
    for id in $(runc --root "$root" list -q 2>/dev/null); do runc --root "$root" delete --force "$id" >/dev/null 2>&1; done
  done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do [ "$(readlink /proc/$pin/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break; sleep 0.02; done
ns() { nsenter --net=/proc/$pin/ns/net -- "$@"; }
ns ip link set lo up

mkdir -p "$work/bin" "$work/roots" "$RESULTS"
export TSRUN_ROOT=$work/tsrun
# The runtimes the suite is handed: runc and tsrun-runc, each with a runc root of its own.
cat > "$work/bin/runc" <<EOF
#!/bin/sh
exec runc --root '$work/roots/runc' "\$@"
EOF
node dist/bundle/tsrun.cjs oci-runtime install --path "$work/bin/tsrun-runc-registered" >/dev/null || exit 1
cat > "$work/bin/tsrun-runc" <<EOF
#!/bin/sh
exec '$work/bin/tsrun-runc-registered' --root '$work/roots/tsrun-runc' "\$@"
EOF
# The bridge variant annotates the bundle of every create/run whose spec gives the container a
# network namespace (a container without one has nothing tsrun could wire), then runs tsrun-runc.
cat > "$work/bin/tsrun-runc-bridge" <<EOF
#!/bin/sh
bundle=. next= cmd=
for a do
  if [ "\$next" = bundle ]; then bundle=\$a; next=; continue; fi
  case \$a in
    create|run) [ -z "\$cmd" ] && cmd=\$a ;;
    -b|--bundle) next=bundle ;;
    --bundle=*|-b=*) bundle=\${a#*=} ;;
  esac
done
if [ -n "\$cmd" ] && [ -f "\$bundle/config.json" ]; then
  node -e '
    const fs = require("fs"); const f = process.argv[1]; const s = JSON.parse(fs.readFileSync(f, "utf8"));
    const ns = (s.linux && s.linux.namespaces) || [];
    if (ns.some((n) => n.type === "network")) {
      s.annotations = { ...(s.annotations || {}), "io.tsrun.network": "conf" };
      fs.writeFileSync(f, JSON.stringify(s));
      fs.appendFileSync(process.argv[2], "annotated\n");
    } else fs.appendFileSync(process.argv[2], "no network namespace\n");
  ' "\$bundle/config.json" '$work/annotated.log'
fi
exec '$work/bin/tsrun-runc-registered' --root '$work/roots/tsrun-runc-bridge' "\$@"
EOF
chmod 755 "$work/bin/"*
ns node dist/bundle/tsrun.cjs network create conf --subnet 10.199.0.0/16 >/dev/null || exit 1

RUNTIMES=${CONFORMANCE_RUNTIMES:-runc tsrun-runc tsrun-runc-bridge}
for rt in $RUNTIMES; do
  echo "== $rt"
  ns bash "$tools/run-runtime-tools.sh" "$work/bin/$rt" "$RESULTS/$rt" | tail -n 1
done
[ -f "$work/annotated.log" ] && echo "bridge variant: $(grep -c '^annotated' "$work/annotated.log") bundles annotated, $(grep -c '^no network' "$work/annotated.log") without a network namespace left alone"

# tsrun's own leftovers after the bridge run: endpoints, leases (the suite deletes every container).
left=$(cd "$TSRUN_ROOT/lib/store/endpoints" 2>/dev/null && find . -type f | sed 's|^\./||')
leftovers=$(printf '%s' "$left" | grep -c . || true)
echo "tsrun endpoints left after the runs: $leftovers${left:+ (}$(echo $left)${left:+)}"

# A program that fails more for tsrun-runc than for runc is run again (at most twice), for that runtime: the
# suite has fixed waits (killsig gives a killed process 5 s to stop) that a loaded machine can
# miss. A failure that does not come back is reported as flaky, not counted as new.
compare() { # $1: results dir; prints "RUNTIME TEST" for each program worse than runc
  node -e '
    const fs = require("fs"); const dir = process.argv[1];
    const read = (rt) => new Map(fs.readFileSync(`${dir}/${rt}/summary.tsv`, "utf8").trim().split("\n").slice(1).map((l) => l.split("\t")).map(([t, p, f]) => [t, +f]));
    if (!fs.existsSync(`${dir}/runc/summary.tsv`)) process.exit(0);
    const runc = read("runc");
    for (const rt of ["tsrun-runc", "tsrun-runc-bridge"]) {
      if (!fs.existsSync(`${dir}/${rt}/summary.tsv`)) continue;
      for (const [t, f] of read(rt)) if (f > (runc.get(t) ?? 0)) console.log(rt, t);
    }' "$1"
}
# Some programs race in runc itself (pidfile kills a container running `true` after start): runc
# is run again beside each retry, and a failure runc also has in a retry is runc's, not tsrun's.
compare "$RESULTS" | while read -r rt t; do
  for try in 1 2; do
    echo "== $rt: $t again ($try), and runc beside it"
    TESTS=$t ns bash "$tools/run-runtime-tools.sh" "$work/bin/$rt" "$RESULTS/retry$try-$rt-$t" | tail -n 1
    [ -d "$RESULTS/retry$try-runc-$t" ] || TESTS=$t ns bash "$tools/run-runtime-tools.sh" "$work/bin/runc" "$RESULTS/retry$try-runc-$t" | tail -n 1
    runc_fail=$( { awk -F'\t' -v t="$t" '$1 == t { print $3 }' "$RESULTS/runc/summary.tsv" "$RESULTS"/retry[12]-runc-"$t"/summary.tsv; echo 0; } | sort -n | tail -n 1)
    this_fail=$(awk -F'\t' -v t="$t" '$1 == t { print $3 }' "$RESULTS/retry$try-$rt-$t/summary.tsv")
    [ "${this_fail:-1}" -le "${runc_fail:-0}" ] && break
  done
done

node - "$RESULTS" "$leftovers" <<'EOF'
const fs = require('fs');
const [dir, leftovers] = process.argv.slice(2);
const read = (d) => {
  const rows = fs.readFileSync(`${d}/summary.tsv`, 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t'));
  return new Map(rows.map(([test, pass, fail, skip]) => [test, { pass: +pass, fail: +fail, skip: +skip }]));
};
const runc = fs.existsSync(`${dir}/runc/summary.tsv`) ? read(`${dir}/runc`) : new Map();
let bad = Number(leftovers) > 0;
// The bridge variant's harness writes io.tsrun.network into config.json, and hooks_stdin checks
// that the state a hook gets carries exactly the annotations the test wrote: a failing point
// whose only complaint is that one extra annotation is the harness's doing, not the runtime's.
const onlyOurAnnotation = (yaml) => {
  let err;
  try {
    err = JSON.parse(yaml).error;
  } catch {
    return false;
  }
  if (typeof err !== 'string') return false;
  const items = err.split('\n\t* ').slice(1).map((e) => e.trim());
  return items.length > 0 && items.every((e) => {
    const m = /^wrong annotations "map\[(.*)\]" in the stdin of \w+ hook, expected "map\[(.*)\]"$/.exec(e);
    return m !== null && m[1].replace(/io\.tsrun\.network:conf ?/, '').trim() === m[2].trim();
  });
};
const artefacts = (rtDir, test) => {
  const file = `${rtDir}/${test}.tap`;
  if (!fs.existsSync(file)) return 0;
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  let n = 0;
  for (let i = 0; i < lines.length; i++) {
    if (!/^not ok \d+/.test(lines[i]) || lines[i + 1]?.trim() !== '---') continue;
    const end = lines.indexOf('  ...', i + 2);
    if (end > 0 && onlyOurAnnotation(lines.slice(i + 2, end).join('\n'))) n++;
  }
  return n;
};
for (const rt of ['runc', 'tsrun-runc', 'tsrun-runc-bridge'].filter((r) => fs.existsSync(`${dir}/${r}/summary.tsv`))) {
  const m = read(`${dir}/${rt}`);
  const t = [...m.values()].reduce((a, r) => ({ pass: a.pass + r.pass, fail: a.fail + r.fail, skip: a.skip + r.skip }), { pass: 0, fail: 0, skip: 0 });
  const worse = [];
  const flaky = [];
  let harness = 0;
  for (const [test, r] of m) {
    // runc's own count: its first run, or a retry beside tsrun's where it failed too (a race in runc).
    const runcRetries = [1, 2].map((n) => `${dir}/retry${n}-runc-${test}`).filter((d) => fs.existsSync(`${d}/summary.tsv`));
    const ref = Math.max(runc.get(test)?.fail ?? 0, ...runcRetries.map((d) => read(d).get(test)?.fail ?? 0));
    if (rt === 'tsrun-runc-bridge') {
      const a = artefacts(`${dir}/${rt}`, test);
      harness += a;
      if (r.fail - a <= ref) continue;
    }
    if (r.fail <= ref) continue;
    const retried = [1, 2].map((n) => `${dir}/retry${n}-${rt}-${test}`).filter((d) => fs.existsSync(`${d}/summary.tsv`));
    if (retried.some((d) => (read(d).get(test)?.fail ?? Infinity) <= ref)) flaky.push(test);
    else worse.push(`${test} (${r.fail} vs runc ${ref})`);
  }
  const notes = rt === 'runc' ? '' : `; new failures vs runc: ${worse.length === 0 ? 'none' : worse.join(', ')}${flaky.length ? ` (flaky, passed when run again: ${flaky.join(', ')})` : ''}${harness ? `; ${harness} failed only because the harness's io.tsrun.network annotation is in the hook's state (hooks_stdin compares annotations)` : ''}`;
  console.log(`${rt.padEnd(18)} ${t.pass} passed, ${t.fail} failed, ${t.skip} skipped${notes}`);
  if (worse.length > 0) bad = true;
}
console.log(`results: ${dir}`);
process.exit(bad ? 1 : 0);
EOF
