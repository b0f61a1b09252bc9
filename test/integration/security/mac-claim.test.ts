// A MAC chosen by the caller (--mac, the hook's io.tsrun.mac annotation, CNI's mac) that another
// endpoint of the network has, or will have, takes that endpoint's traffic: the bridge learns the
// MAC at the newest port that sent from it (attach announces a chosen MAC at once: GARP/NA), so
// frames for the other container go to this one. tsrun's MACs follow from the IPv4 address
// (02:42 + its four bytes), so a chosen MAC is refused when a live endpoint of the network has it,
// or when it is the MAC of another address of the network's subnet (the container that gets that
// address later would share it). Its own address's MAC stays allowed.
import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import { BridgeWorld } from '../../harness/bridge-world.js';
import { macFromIpv4 } from '../../../runtime/drivers/mac.js';

let w: BridgeWorld;
beforeAll(async () => {
  w = await BridgeWorld.create('macc');
});
afterAll(async () => {
  await w?.destroy();
});
afterEach(async () => {
  await w.stopAll();
  expect(w.leaks()).toEqual([]);
});

it('refuses a chosen MAC another endpoint of the network has or would get; allows its own address\'s', async () => {
  const victim = await w.start([], 'sleep 600');
  const taken = macFromIpv4(w.ip(victim.id));
  const steal = w.run(['--mac', taken], ['true']);
  expect({ status: steal.status, lines: steal.stderr.trim().split('\n').length }).toEqual({ status: 125, lines: 1 });
  expect(steal.stderr).toContain(taken);

  const preclaim = w.run(['--mac', macFromIpv4('10.88.0.200')], ['true']);
  expect(preclaim.status).toBe(125);

  const own = w.run(['--ip', '10.88.0.201', '--mac', macFromIpv4('10.88.0.201')], ['cat', '/sys/class/net/eth0/address']);
  expect({ status: own.status, stdout: own.stdout.trim() }).toEqual({ status: 0, stdout: macFromIpv4('10.88.0.201') });
  const elsewhere = w.run(['--mac', '02:aa:00:00:00:07'], ['true']);
  expect(elsewhere.status).toBe(0);
});
