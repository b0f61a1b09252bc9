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

// Concurrent attaches choosing the same MAC: the check reads the records, which are saved only at
// the end of an attach, so it runs under a lock of the network's chosen-MAC attaches (engine
// withChosenMacLock). Exactly one of them gets the MAC; the others exit 125 with one line.
it('of concurrent attaches choosing the same MAC, exactly one gets it', async () => {
  const mac = '02:aa:00:00:00:31';
  const kids = [0, 1, 2, 3].map(() => {
    const id = `cm${Math.random().toString(36).slice(2, 8)}`;
    w.ids.push(id);
    const child = w.host.spawnTsrun(['run', '--name', id, '--mac', mac, w.bundle, '--', 'sh', '-c', 'trap "exit 0" TERM; echo started; sleep 600 & wait']);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { child, exited, out: () => out };
  });
  try {
    // Each either runs (says "started") or is refused (exits).
    const outcome = await Promise.all(
      kids.map(async (k) => {
        for (;;) {
          if (k.out().includes('started')) return 'started';
          const code = await Promise.race([k.exited, new Promise<'wait'>((r) => setTimeout(() => r('wait'), 50))]);
          if (code !== 'wait') return code;
        }
      }),
    );
    expect(outcome.filter((o) => o === 'started')).toHaveLength(1);
    expect(outcome.filter((o) => o === 125)).toHaveLength(3);
    for (const k of kids) if (!k.out().includes('started')) expect(k.out()).toContain(`--mac ${mac} is already used`);
  } finally {
    for (const k of kids) k.child.kill('SIGTERM');
    await Promise.all(kids.map((k) => k.exited));
  }
}, 60_000);
