// Whoever can set a pod or container annotation must not capture traffic meant for an address the
// host does not have: the io.tsrun.ports annotation gets the same refusal as `-p`, through runc
// and the hook, with one line and nothing left behind.
import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import { HookHost, expectOneLineFailure } from '../hook/helpers.js';

let hh: HookHost;
beforeAll(async () => {
  hh = await HookHost.create('i10ann');
  expect(hh.tsrun(['network', 'create', 'web', '--subnet', '10.127.0.0/24']).status).toBe(0);
});
afterAll(() => hh.destroy());
afterEach(() => {
  expect(hh.takeLeaks()).toEqual([]);
});

it('io.tsrun.ports on a non-local address is refused by the hook, and the container does not start', () => {
  const id = hh.newId('ann', 'web');
  const bundle = hh.bundle({ annotations: { 'io.tsrun.network': 'web', 'io.tsrun.ports': '10.77.0.1:8080:80' }, args: ['echo', 'STARTED'] });
  const r = hh.runc(['run', '-b', bundle, id]);
  expect(r.stdout).not.toContain('STARTED');
  expect(hh.host.runcList()).not.toContain(id);
  expectOneLineFailure(r, /^tsrun: hook createRuntime: cannot publish 10\.77\.0\.1:8080: 10\.77\.0\.1 is not an address of this host/);
  expect(hh.leaksOf([{ id, network: 'web' }])).toEqual([]);
});
