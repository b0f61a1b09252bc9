// Allocation cost must not grow with the number of leases in a subnet: the hint makes the first
// candidate free in a sparse pool. Measured on LocalStore (fsync on, the default), 1st vs 200th
// allocation, against a control run whose hint is deleted before every allocation.
import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseSubnet } from '../../../runtime/ipam/address.js';
import { Ipam, keyLayout } from '../../../runtime/ipam/ipam.js';
import { LocalStore } from '../../../runtime/store/local.js';

const RUNS = 7;
const N = 200;
const net = { name: 'timing', subnet: '10.44.0.0/16' };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Per-allocation times (ms) for N sequential allocations in a fresh store, RUNS times. */
async function measure(opts: { fsync: boolean; hint: boolean }): Promise<number[][]> {
  const runs: number[][] = [];
  for (let r = 0; r < RUNS; r++) {
    const dir = await mkdtemp('/tmp/tsC-timing-');
    const store = new LocalStore(path.join(dir, 'store'), { fsync: opts.fsync });
    const ipam = new Ipam(store);
    const hintKey = keyLayout.hint(net.name, parseSubnet(net.subnet));
    const times: number[] = [];
    for (let i = 0; i < N; i++) {
      if (!opts.hint) await store.deleteIf(hintKey);
      const t = performance.now();
      await ipam.allocate(net, `c${i}`);
      times.push(performance.now() - t);
    }
    runs.push(times);
    await rm(dir, { recursive: true, force: true });
  }
  return runs;
}

function summarize(runs: number[][]) {
  const at = (i: number) => median(runs.map((t) => t[i] as number));
  const window = (from: number, to: number) => median(runs.flatMap((t) => t.slice(from, to)));
  return { first: at(0), second: at(1), last: at(N - 1), early: window(1, 11), late: window(N - 10, N) };
}

describe('allocation time on LocalStore', () => {
  const results: Record<string, ReturnType<typeof summarize>> = {};
  afterAll(async () => {
    const round = (x: number) => Math.round(x * 1000) / 1000;
    const table = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Object.fromEntries(Object.entries(v).map(([f, x]) => [f, round(x)]))]));
    console.log(`median allocate time in ms (${RUNS} runs of ${N}; first = 1st allocation, last = ${N}th, early = 2nd-11th, late = ${N - 9}th-${N}th):\n${JSON.stringify(table, null, 1)}`);
    await writeFile('/tmp/tsC-ipam-timing.json', JSON.stringify(table, null, 2));
  });

  it(`stays flat from the 1st to the ${N}th allocation (hint, fsync on)`, async () => {
    results.hint_fsync = summarize(await measure({ fsync: true, hint: true }));
    const r = results.hint_fsync!;
    expect(r.late).toBeLessThan(3 * r.early + 1);
    expect(r.last).toBeLessThan(3 * Math.max(r.first, r.early) + 1);
  }, 120_000);

  it('compares: hint with fsync off, and no hint (control)', async () => {
    results.hint_nofsync = summarize(await measure({ fsync: false, hint: true }));
    results.nohint_fsync = summarize(await measure({ fsync: true, hint: false }));
    // Control: without the hint the walk re-probes every taken address, so its cost grows.
    expect(results.nohint_fsync.late).toBeGreaterThan(results.nohint_fsync.early);
  }, 120_000);
});
