// The README's headline table: issue 16's targets, each named by the bench row that carries it
// (section prefix + row name) and, where the kernel or Node's start-up sets a floor below the
// target, the row that holds tsrun within 10 % of that floor. bench/readme-table.ts renders it.
import type { Headline } from './readme-table.js';

const STARTUP = 'start-up: tsrun run --net none vs runc run';
const HOOK = 'hook: tsrun hook createRuntime + poststop vs CNI bridge';
const ATTACH = 'attach+detach of one container';
const SCALE = "scale: one attach with 1 vs 200 containers on tsrun's default network";
const SCALE_DNS = 'scale: one attach with 1 vs 200 containers on a network with DNS';
const PODMAN = 'podman run --network bridge -p 8080:80 vs tsrun run';
const THROUGHPUT = 'throughput on one host';
const OVERLAY = 'overlay: two hosts over VXLAN';
const CONCURRENT = '50 containers attached at once';

/** The scale section's growth row, beside the kernel's growth and tsrun's growth above it. */
function scaleHeadline(label: string, section: string): Headline {
  return {
    label,
    target: { section, name: 'tsrun: attach at 200 / at 1' },
    detail: [{ section, name: "floor: an attach grown by the kernel's part only, 200 / 1" }],
    floor: { section, name: "tsrun's growth / the floor's" },
  };
}

export const HEADLINES: Headline[] = [
  {
    label: 'in-process wiring of one bridge attach',
    target: { section: ATTACH, name: 'in-process wiring of one attach (record.wiringMs)' },
    detail: [{ section: ATTACH, name: 'floor: its netlink requests and nft batch, raw (no tsrun)' }],
    floor: { section: ATTACH, name: 'in-process wiring / floor' },
  },
  {
    label: '`tsrun run --net none` / (cold Node + runc) floor',
    // Floor C carries the target since session 5 (bench/suites/startup.ts, docs/benchmarks.md "The
    // floor of run"); floor A stays in the suite for information only.
    target: { section: STARTUP, name: 'tsrun / floor C' },
    detail: [
      { section: STARTUP, name: 'tsrun run --net none' },
      { section: STARTUP, name: 'floor C: one cold node -e: cgroup warm-up, runc run, wait (the faster of its two warm-ups)' },
      { section: STARTUP, name: 'runc run right after node -e 0' },
      { section: STARTUP, name: 'node -e 0 (a cold Node process)' },
    ],
  },
  {
    label: 'hook createRuntime+poststop vs CNI bridge+portmap ADD+DEL',
    target: { section: HOOK, name: 'hook / CNI, one published port' },
    detail: [
      { section: HOOK, name: 'tsrun hook createRuntime + poststop (2 processes, 1 port)' },
      { section: HOOK, name: 'CNI bridge + portmap ADD, portmap + bridge DEL' },
    ],
    floor: { section: HOOK, name: 'floor A: 2 × node -e 0 + that work; hook / floor A' },
  },
  {
    label: 'engine attach+detach vs CNI bridge ADD+DEL',
    target: { section: ATTACH, name: 'tsrun attach+detach / CNI ADD+DEL' },
  },
  {
    label: '`tsrun run -p` vs `podman run --network bridge -p`',
    target: { section: PODMAN, name: 'tsrun / podman (bridge, one port)' },
  },
  {
    label: 'overlay / underlay TCP throughput',
    target: { section: OVERLAY, name: 'overlay / underlay' },
    detail: [{ section: OVERLAY, name: 'the kernel floor: bare VXLAN / underlay' }],
    floor: { section: OVERLAY, name: 'tsrun overlay / the floor' },
  },
  {
    label: 'bridge / bare veth TCP throughput',
    target: { section: THROUGHPUT, name: 'tsrun bridge / bare veth' },
    detail: [{ section: THROUGHPUT, name: 'the kernel floor: bare bridge with conntrack / bare veth' }],
    floor: { section: THROUGHPUT, name: 'tsrun bridge / the floor' },
  },
  scaleHeadline('200 attaches: an attach at 200 containers / at 1', SCALE),
  scaleHeadline('the same on a network with DNS', SCALE_DNS),
  {
    label: '50 concurrent attaches on one network vs CNI `-P 8`',
    target: { section: CONCURRENT, name: 'tsrun engine / CNI bridge -P 8' },
  },
];
