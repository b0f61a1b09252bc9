// Hook mode: containers wired by `tsrun hook` (runc with tsrun's hooks in config.json) are served
// by the resolver like any other: their names resolve for their neighbours and theirs do for
// them. Their /etc/resolv.conf is the runtime's business (docs/dns.md), so queries name the
// gateway explicitly here, as `--dns GATEWAY` would.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { waitFor } from '../harness/sandbox.js';
import { HookHost } from './hook/helpers.js';

let hh: HookHost;
const GATEWAY = '10.124.0.1';

beforeAll(async () => {
  hh = await HookHost.create('hookdns');
  const r = hh.tsrun(['network', 'create', 'hdns', '--subnet', '10.124.0.0/24']);
  expect(r.stderr).toBe('');
});
afterAll(() => hh.destroy());
afterEach(() => {
  expect(hh.takeLeaks()).toEqual([]);
});

describe('DNS for hooked containers', () => {
  it('a hooked container is resolved by its neighbours, and resolves them', async () => {
    const server = hh.newId('hs', 'hdns');
    const client = hh.newId('hc', 'hdns');
    const created = hh.runcDetached(server, hh.bundle({ annotations: { 'io.tsrun.network': 'hdns', 'io.tsrun.ip': '10.124.0.50' }, args: ['sleep', '600'] }));
    expect(created.stderr).toBe('');
    try {
      const r = hh.runc(['run', '-b', hh.bundle({ annotations: { 'io.tsrun.network': 'hdns' }, args: ['sh', '-c', `nslookup ${server} ${GATEWAY}; nslookup ${client} ${GATEWAY}`] }), client]);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`Name:\\s+${server}\\nAddress: 10\\.124\\.0\\.50`));
      expect(r.stdout).toMatch(new RegExp(`Name:\\s+${client}\\nAddress: 10\\.124\\.0\\.\\d+`));
    } finally {
      hh.runc(['kill', server, 'KILL']);
      await waitFor(`${server} to stop`, () => JSON.parse(hh.runc(['state', server]).stdout || '{}').status === 'stopped');
      hh.runc(['delete', server]);
    }
  });
});
