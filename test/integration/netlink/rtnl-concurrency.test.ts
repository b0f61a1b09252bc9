// One Rtnl stays correct under concurrency. Inside a scratch "host" namespace: a bridge, then per
// container a pinned namespace, a veth created with its peer inside it (enslaved and up in the
// same request), the peer up, v4 and v6 addresses and default routes, all at once while another
// task dumps links and FDB on the same socket. What this wiring costs is measured by
// `npm run bench parts`, not here.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { closeSync, rmSync } from 'node:fs';
import { createPinnedNetns, deletePinnedNetns, openNetnsFd } from '../../../runtime/netns/netns.js';
import { Rtnl } from '../../../runtime/netlink/rtnl.js';
import { scratchNetns, type ScratchNetns } from '../../harness/sandbox.js';

const PIN_DIR = `/tmp/tsA-cost-${process.pid}`;
const N = 50;

let host: ScratchNetns;
let hostNl: Rtnl;
let bridge: number;

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

/** The netlink part of a bridge attach; returns the container's Rtnl (caller closes). */
async function attach(i: number, pin: string): Promise<Rtnl> {
  const ctrNl = Rtnl.open(pin);
  const fd = openNetnsFd(pin);
  try {
    await hostNl.createVeth({ name: `tsAh${i}`, peerName: 'eth0', peerNsFd: fd, master: bridge, up: true });
  } finally {
    closeSync(fd);
  }
  const eth0 = (await ctrNl.getLink('eth0'))!.index;
  await ctrNl.setUp(eth0);
  await ctrNl.addAddress(eth0, `10.77.${i >> 8}.${(i & 0xff) + 2}/16`);
  await ctrNl.addAddress(eth0, `fd77::${(i + 2).toString(16)}/64`);
  await ctrNl.addRoute({ dst: 'default', gateway: '10.77.0.1' });
  await ctrNl.addRoute({ dst: 'default', gateway: 'fd77::1' });
  return ctrNl;
}

describe('one host socket under concurrency', () => {
  it(`stays correct with ${N} concurrent attaches on one host socket while dumping`, async () => {
    const pins = Array.from({ length: N }, (_, i) => `${PIN_DIR}/p${i}`);
    for (const p of pins) createPinnedNetns(p);
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
    dumping = false;
    expect(await dumps).toBeGreaterThan(0);

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
