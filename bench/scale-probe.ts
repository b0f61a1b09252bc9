// One side of the 200-attach growth measurement (bench/suites/bridge.ts, scale): a process in a
// network namespace of its own (started under `unshare --net`) holding `size` containers attached
// to tsrun's default network, which then answers probes on demand. Two of them run side by side,
// one with 1 container and one with 200, and the suite alternates its probes between them, so
// that whatever the machine does meanwhile hits both sizes alike (two windows taken one after the
// other, seconds apart, measured the machine's drift as much as tsrun's growth).
//
// Commands, one JSON line each on stdin; one JSON line answers each on stdout:
//   {"cmd":"setup","size":N}  attach N containers one after another (times of each, nft rules);
//                             with "network": {name, subnet, bridge}, to a network created with
//                             DNS on, rather than to the default network
//   {"cmd":"probe"}           attach one more container (timed, with its steps), detach it (timed
//                             too), then the kernel's part of that attach alone: the same veth
//                             request (peer born in the probe's namespace, this end on the
//                             network's bridge, up), timed
//   {"cmd":"close"}           detach everything, unpin, remove the state root, exit
import { closeSync, mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { resolveSettings } from '../config/settings.js';
import type { Logger } from '../runtime/log.js';
import { openEngine, type EngineHandle } from '../runtime/context.js';
import { createPinnedNetns, deletePinnedNetns, openNetnsFd } from '../runtime/netns/netns.js';
import { Rtnl } from '../runtime/netlink/rtnl.js';
import { countRules } from '../runtime/firewall/nft.js';
import { benchEnv } from './lib.js';

export type ProbeCommand = { cmd: 'setup'; size: number; network?: ProbeNetwork } | { cmd: 'probe' } | { cmd: 'close' };

/** A network of its own (with DNS: every attach waits for the resolver's reload) instead of
 * tsrun's default network (DNS off). */
export interface ProbeNetwork {
  name: string;
  subnet: string;
  bridge: string;
}

export interface SetupAnswer {
  /** Milliseconds of each of the `size` attaches, in order. */
  times: number[];
  /** Rules of table inet tsrun after the first attach and after the last. */
  rulesAtFirst: number;
  rulesAtLast: number;
}

export interface ProbeAnswer {
  /** Wall time of engine.attach. */
  ms: number;
  /** The record's wiringMs. */
  wiringMs: number;
  /** Wall time of engine.detach with the veth retired (DetachOptions.netnsGoing), as tsrun run's. */
  detachMs: number;
  /** The kernel's part alone: the attach's veth request, onto the same bridge, timed. */
  floorMs: number;
  /** The detach's kernel part alone: that veth taken off the bridge (the retire request). */
  floorDetachMs: number;
  /** Milliseconds of each named step of the attach (Transaction steps, nft batches). */
  steps: Record<string, number>;
  /** The same of the detach (its nft batches: runAll's steps are not timed). */
  detachSteps: Record<string, number>;
}

/** A logger that keeps the debug lines' step timings of the current probe. */
function stepRecorder(): { log: Logger; take(): Record<string, number> } {
  let steps: Record<string, number> = {};
  const note = (obj: object | string, msg?: string) => {
    if (typeof obj !== 'object') return;
    const o = obj as { step?: unknown; ms?: unknown };
    if (typeof o.step !== 'string' || typeof o.ms !== 'number') return;
    // Names that carry an address or a port would never add up across probes: their kind only.
    const name = `${msg === 'libnftables done' || msg === 'nf_tables batch done' ? 'nft: ' : ''}${o.step.replace(/\d+(\.\d+){3}|[0-9a-f:]*::[0-9a-f:]*|\d+\/(tcp|udp)|tsv[0-9a-f]{8}|scale-probe-\d+/g, '*')}`;
    steps[name] = (steps[name] ?? 0) + o.ms;
  };
  const nop = () => {};
  const log: Logger = { level: 'debug', trace: nop, debug: note, info: nop, warn: nop, error: nop, fatal: nop, isLevelEnabled: (l) => l !== 'trace', child: () => log };
  const take = () => {
    const s = steps;
    steps = {};
    return s;
  };
  return { log, take };
}

async function main(): Promise<void> {
  // Started by `unshare --net` from the suite, which names its own namespace: never act there.
  if (readlinkSync('/proc/self/ns/net') === process.env.TSRUN_SCALE_PARENT_NETNS || !process.env.TSRUN_SCALE_PARENT_NETNS) throw new Error('scale-probe: not in a network namespace of its own');
  const root = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-scale-'));
  const settings = resolveSettings(benchEnv({ TSRUN_ROOT: root }));
  const rec = stepRecorder();
  const handle: EngineHandle = await openEngine(settings, rec.log);
  const engine = handle.engine;
  const pins: string[] = [];
  const ids: string[] = [];
  let probes = 0;
  const host = Rtnl.open();
  const reply = (x: unknown) => process.stdout.write(`${JSON.stringify(x)}\n`);
  let network = 'tsrun';
  let bridgeName = 'tsrun0';

  const handlers = {
    setup: async (size: number, net?: ProbeNetwork): Promise<SetupAnswer> => {
      if (net) {
        await engine.createNetwork({ name: net.name, subnet: net.subnet, bridge: net.bridge, dns: true });
        [network, bridgeName] = [net.name, net.bridge];
      }
      const times: number[] = [];
      let rulesAtFirst = 0;
      for (let i = 0; i < size; i++) {
        const id = `scale-${i}`;
        const pin = path.join(settings.runDir, 'netns', id);
        createPinnedNetns(pin);
        pins.push(pin);
        const t0 = performance.now();
        await engine.attach({ containerId: id, netnsPath: pin, network, ports: [{ hostPort: 20000 + i, containerPort: 80, protocol: 'tcp' }] });
        times.push(performance.now() - t0);
        ids.push(id);
        if (i === 0) rulesAtFirst = await countRules({ nftBinary: settings.nft });
      }
      rec.take();
      return { times, rulesAtFirst, rulesAtLast: await countRules({ nftBinary: settings.nft }) };
    },
    probe: async (): Promise<ProbeAnswer> => {
      // Everything a probe makes stays until the end (a namespace per probe, its veths retired,
      // off the bridge): deleting a veth waits for an RCU grace period (~25 ms) and a namespace
      // unpinned dies in the kernel's background, under the next probe. Both sides keep as many.
      const n = probes++;
      const id = `scale-probe-${n}`;
      const pin = path.join(settings.runDir, 'netns', id);
      createPinnedNetns(pin);
      pins.push(pin);
      rec.take();
      const t0 = performance.now();
      const r = await engine.attach({ containerId: id, netnsPath: pin, network, ports: [{ hostPort: 29999, containerPort: 80, protocol: 'tcp' }] });
      const ms = performance.now() - t0;
      const steps = rec.take();
      // The detach as `tsrun run` makes it: the veth retired, left to the kernel.
      const t1 = performance.now();
      await engine.detach(id, { netnsGoing: true });
      const detachMs = performance.now() - t1;
      const detachSteps = rec.take();
      // The floor: the same veth request alone, onto the same bridge, into the same namespace.
      const bridge = await host.getLink(bridgeName);
      if (!bridge) throw new Error(`scale-probe: no bridge ${bridgeName} (setup first)`);
      const mtu = (await engine.networks.require(network)).mtu;
      const t2 = performance.now();
      const fd = openNetnsFd(pin);
      try {
        await host.createVeth({ name: `tsfl${n}`, peerName: 'eth1', peerNsFd: fd, mtu, master: bridge.index, up: true });
      } finally {
        closeSync(fd);
      }
      const floorMs = performance.now() - t2;
      // The detach's kernel part alone: that veth off the bridge, as a detach retires its own.
      const t3 = performance.now();
      await host.setMaster(`tsfl${n}`, 0);
      const floorDetachMs = performance.now() - t3;
      return { ms, wiringMs: r.wiringMs ?? ms, detachMs, floorMs, floorDetachMs, steps, detachSteps };
    },
  };

  const close = async () => {
    for (const id of ids) await engine.detach(id, { netnsGoing: true }).catch(() => 0);
    if (network !== 'tsrun') await engine.removeNetwork(network, true).catch(() => undefined);
    // The namespaces take their veths with them (the kernel's cleanup, in one batch).
    for (const p of pins) deletePinnedNetns(p);
    host.close();
    await handle.close();
    rmSync(root, { recursive: true, force: true });
  };

  // Interrupted (Ctrl-C reaches the whole process group) or orphaned: finish the command under
  // way, then tear everything down as for `close` (pins are mounts: they would outlive us).
  const lines = createInterface({ input: process.stdin });
  let interrupted = false;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => ((interrupted = true), lines.close()));
  process.stdout.on('error', () => undefined); // the suite gone: nobody to answer
  for await (const line of lines) {
    if (interrupted) break;
    if (line.trim() === '') continue;
    const c = JSON.parse(line) as ProbeCommand;
    try {
      if (c.cmd === 'close') break;
      reply({ ok: true, value: c.cmd === 'setup' ? await handlers.setup(c.size, c.network) : await handlers[c.cmd]() });
    } catch (err) {
      reply({ ok: false, error: (err as Error).stack ?? String(err) });
    }
  }
  await close();
  reply({ ok: true, value: 'closed' });
}

main().catch((err) => {
  process.stderr.write(`scale-probe: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
