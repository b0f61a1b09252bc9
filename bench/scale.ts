// The 200-attach growth measurement: how much more an attach costs with 200 containers on the
// network than with 1, beside how much more the kernel's own part of it costs (the veth request an
// attach makes, onto the same bridge). Two probe processes (bench/scale-probe.ts), each in a
// network namespace of its own, one holding 1 container and one holding 200; each round probes
// them A B B A, so drift on the machine (another process waking up, the CPU's clock) and the
// order hit both sizes alike, and each round's ratio compares attaches made milliseconds apart
// (each side's faster of its two). The verdict is taken on the median of those per-round ratios.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import path from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { benchEnv, median } from './lib.js';
import type { ProbeAnswer, ProbeCommand, ProbeNetwork, SetupAnswer } from './scale-probe.js';

const PROBE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'scale-probe.js');

/** One probe process: commands out, one answer each back. */
class ProbeProcess {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: Interface;
  private readonly waiting: ((line: string) => void)[] = [];
  private stderr = '';

  constructor() {
    this.child = spawn('unshare', ['--net', process.execPath, PROBE], { env: benchEnv({ TSRUN_SCALE_PARENT_NETNS: readlinkSync('/proc/self/ns/net') }), stdio: 'pipe' });
    this.child.stderr.on('data', (d: Buffer) => void (this.stderr += d.toString()));
    this.lines = createInterface({ input: this.child.stdout });
    this.lines.on('line', (l) => this.waiting.shift()?.(l));
    this.child.on('exit', () => {
      for (const w of this.waiting.splice(0)) w(JSON.stringify({ ok: false, error: `probe process exited: ${this.stderr.trim()}` }));
    });
  }

  async send<T>(c: ProbeCommand): Promise<T> {
    const line = await new Promise<string>((resolve) => {
      this.waiting.push(resolve);
      this.child.stdin.write(`${JSON.stringify(c)}\n`);
    });
    const a = JSON.parse(line) as { ok: boolean; value?: T; error?: string };
    if (!a.ok) throw new Error(`scale probe ${c.cmd}: ${a.error}`);
    return a.value as T;
  }

  /** Detaches everything and waits for the process to end. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const ended = new Promise<void>((r) => this.child.once('exit', () => r()));
    await this.send({ cmd: 'close' }).catch(() => undefined);
    this.child.stdin.end();
    await ended;
  }
}

export interface ScaleResult {
  /** Attach times of the 200 in a row (the large side's setup), in order. */
  sequence: number[];
  rulesAt1: number;
  rulesAtN: number;
  /** Two per round (A B B A): tsrun's probe attach at size 1 and at size N, the floor's likewise. */
  small: ProbeAnswer[];
  large: ProbeAnswer[];
  floorSmall: number[];
  floorLarge: number[];
}

/**
 * `rounds` rounds of A B B A, where each letter is one probe (attach, detach, floor) on that side (A:
 * 1 container, B: `size`): the order cancels within a round, and so does a drift that is linear
 * over it. The first round warms up and is dropped.
 */
export async function measureScale(size: number, rounds: number, network?: ProbeNetwork): Promise<ScaleResult> {
  const a = new ProbeProcess();
  const b = new ProbeProcess();
  try {
    const [sa, sb] = [await a.send<SetupAnswer>({ cmd: 'setup', size: 1, ...(network ? { network } : {}) }), await b.send<SetupAnswer>({ cmd: 'setup', size, ...(network ? { network } : {}) })];
    const r: ScaleResult = { sequence: sb.times, rulesAt1: sa.rulesAtFirst, rulesAtN: sb.rulesAtLast, small: [], large: [], floorSmall: [], floorLarge: [] };
    for (let i = 0; i <= rounds; i++) {
      for (const p of [a, b, b, a]) {
        const probe = await p.send<ProbeAnswer>({ cmd: 'probe' });
        if (i === 0) continue;
        (p === a ? r.small : r.large).push(probe);
        (p === a ? r.floorSmall : r.floorLarge).push(probe.floorMs);
      }
    }
    return r;
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}

/**
 * The median over rounds of (the round's fastest `large`) / (its fastest `small`): `perRound`
 * consecutive samples of each side make a round (2 with A B B A). On a busy machine a sample's
 * noise is one-sided (the process waited for a CPU), so the faster of a side's two is the better
 * measure of its cost, and A B B A still gives both sides the same places in the round. Three
 * runs on a loaded machine spread 0.06 and 0.01 this way, 0.16 and 0.08 with the rounds' sums.
 */
export function pairedRatio(small: number[], large: number[], perRound = ROUND): number {
  const ratios: number[] = [];
  for (let i = 0; i + perRound <= small.length && i + perRound <= large.length; i += perRound) {
    const fastest = (xs: number[]) => Math.min(...xs.slice(i, i + perRound));
    ratios.push(fastest(large) / fastest(small));
  }
  return median(ratios);
}

/** Samples of each side per round (A B B A). */
export const ROUND = 2;

/** The target for an attach at 200 containers against one at 1. */
export const GROWTH_TARGET = 1.05;

/**
 * The rule beside the target: where the kernel's own growth (measured in the same run)
 * exceeds the target, tsrun's growth must be within 10 % of it. Below the target the floor sets
 * nothing (no target on the row: the target above stands alone).
 */
export function growthFloorTarget(floor: number, target = GROWTH_TARGET): { target?: string; note: string } {
  if (floor > target) return { target: '≤ 1.1', note: `the kernel's own growth, ${floor.toFixed(2)}×, exceeds ${target}` };
  return { note: `no floor: the kernel's own growth, ${floor.toFixed(2)}×, is within ${target}` };
}
