// What wiring a container costs, and that one Rtnl stays correct under concurrency. Inside a
// scratch "host" namespace: a bridge, then per container a pinned namespace, a veth created with
// its peer inside it (enslaved and up in the same request), the peer up, v4 and v6 addresses and
// default routes. Medians are printed for the lead; the assertions are loose ceilings so a busy
// machine does not fail the suite.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { closeSync, rmSync } from 'node:fs';
import { createPinnedNetns, deletePinnedNetns, openNetnsFd } from '../../../runtime/netns/netns.js';
import { Rtnl } from '../../../runtime/netlink/rtnl.js';
import { scratchNetns, type ScratchNetns } from '../../harness/scratch-netns.js';

const PIN_DIR = `/tmp/tsA-cost-${process.pid}`;
const N = 50;

let host: ScratchNetns;
let hostNl: Rtnl;
let bridge: number;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const p90 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)]!;
const ms = (x: number): string => `${x.toFixed(2)} ms`;

beforeAll(async () => {
  host = await scratchNetns('tsA-cost');
  hostNl = Rtnl.open(host.path);
  await hostNl.createBridge({ name: 'tsAbr0', up: true });
  bridge = (await hostNl.getLink('tsAbr0'))!.index;
  await hostNl.addAddress(bridge, '10.77.0.1/16');
  await hostNl.addAddress(bridge, 'fd77::1/64');
});

afterAll(async () => {
  hostNl?.close();
  await host?.destroy();
  rmSync(PIN_DIR, { recursive: true, force: true });
});

type Steps = Record<string, number[]>;

/** The netlink part of a bridge attach; returns the container's Rtnl (caller closes). */
async function attach(i: number, pin: string, steps?: Steps): Promise<Rtnl> {
  let last = performance.now();
  const lap = (name: string): void => {
    const now = performance.now();
    if (steps) (steps[name] ??= []).push(now - last);
    last = now;
  };
  const ctrNl = Rtnl.open(pin);
  const fd = openNetnsFd(pin);
  lap('open container socket + ns fd');
  try {
    await hostNl.createVeth({ name: `tsAh${i}`, peerName: 'eth0', peerNsFd: fd, master: bridge, up: true });
  } finally {
    closeSync(fd);
  }
  lap('createVeth (peer in netns, master, up)');
  const eth0 = (await ctrNl.getLink('eth0'))!.index;
  lap('getLink eth0');
  await ctrNl.setUp(eth0);
  lap('setUp eth0');
  await ctrNl.addAddress(eth0, `10.77.${i >> 8}.${(i & 0xff) + 2}/16`);
  await ctrNl.addAddress(eth0, `fd77::${(i + 2).toString(16)}/64`);
  lap('2 addresses');
  await ctrNl.addRoute({ dst: 'default', gateway: '10.77.0.1' });
  await ctrNl.addRoute({ dst: 'default', gateway: 'fd77::1' });
  lap('2 default routes');
  return ctrNl;
}

describe('wiring cost', () => {
  it(`measures createPinnedNetns and a bridge attach's netlink part (${N} sequential)`, async () => {
    const create: number[] = [];
    const del: number[] = [];
    const delLink: number[] = [];
    const steps: Steps = {};
    for (let i = 0; i < N; i++) {
      const pin = `${PIN_DIR}/c${i}`;
      const t = performance.now();
      createPinnedNetns(pin);
      create.push(performance.now() - t);
      const ctrNl = await attach(i, pin, steps);
      ctrNl.close();
      const tl = performance.now();
      expect(await hostNl.deleteLink(`tsAh${i}`)).toBe(true);
      delLink.push(performance.now() - tl);
      const td = performance.now();
      deletePinnedNetns(pin);
      del.push(performance.now() - td);
    }
    const total = Array.from({ length: N }, (_, i) => Object.values(steps).reduce((sum, xs) => sum + xs[i]!, 0));
    const wire = Array.from({ length: N }, (_, i) => total[i]! - steps['open container socket + ns fd']![i]!);
    console.log([
      `createPinnedNetns: median ${ms(median(create))}, p90 ${ms(p90(create))} (first call, loading koffi: ${ms(create[0]!)})`,
      `deletePinnedNetns: median ${ms(median(del))}`,
      ...Object.entries(steps).map(([name, xs]) => `  ${name}: median ${ms(median(xs))}`),
      `attach netlink, 7 requests: median ${ms(median(wire))}, p90 ${ms(p90(wire))}`,
      `attach incl. opening the container socket: median ${ms(median(total))}, p90 ${ms(p90(total))}`,
      `detach: deleteLink of the host end: median ${ms(median(delLink))}`,
    ].join('\n'));
    expect(median(total)).toBeLessThan(20);
    expect(median(create)).toBeLessThan(20);
  });

  it(`stays correct with ${N} concurrent attaches on one host socket while dumping`, async () => {
    const pins = Array.from({ length: N }, (_, i) => `${PIN_DIR}/p${i}`);
    for (const p of pins) createPinnedNetns(p);
    const t = performance.now();
    let dumping = true;
    const dumps = (async () => {
      let n = 0;
      while (dumping) {
        await hostNl.listLinks();
        await hostNl.listFdb();
        n++;
      }
      return n;
    })();
    const ctrs = await Promise.all(pins.map((p, i) => attach(100 + i, p)));
    const wall = performance.now() - t;
    dumping = false;
    const rounds = await dumps;
    console.log(`${N} concurrent attaches: ${ms(wall)} wall (${ms(wall / N)} each), ${rounds} dump rounds meanwhile`);

    const ports = (await hostNl.listLinks()).filter((l) => l.master === bridge);
    expect(ports).toHaveLength(N);
    for (const [i, c] of ctrs.entries()) {
      expect((await c.listAddresses()).map((a) => a.cidr)).toEqual(expect.arrayContaining([`10.77.0.${i + 102}/16`]));
      c.close();
    }
    expect(host.exec('busybox', ['ping', '-c', '1', '-W', '2', '10.77.0.149']).status).toBe(0);
    await Promise.all(pins.map((_, i) => hostNl.deleteLink(`tsAh${100 + i}`)));
    for (const p of pins) deletePinnedNetns(p);
    expect((await hostNl.listLinks()).map((l) => l.name).sort()).toEqual(['lo', 'tsAbr0']);
  });
});
