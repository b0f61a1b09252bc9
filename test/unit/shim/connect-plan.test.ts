import { describe, expect, it } from '@jest/globals';
import { configuredNetworks, modeRefusal, nextIfname, withConnection, withoutNetwork } from '../../../shim/connect-plan.js';
import type { RunOptions } from '../../../shim/run.js';

const base: RunOptions = {
  bundle: '/b',
  args: [],
  env: [],
  net: { kind: 'network', network: 'a' },
  publish: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
  ip: '10.1.0.5',
  networkAliases: ['web'],
  resources: {},
};

describe('network connect: which containers can be connected', () => {
  it('refuses host, none and container:<id> with one line each, and lets networks through', () => {
    expect(modeRefusal({ kind: 'host' }, 'c1', 'connect')).toMatch(/^container c1 uses the host's network \(--net host\)/);
    expect(modeRefusal({ kind: 'none' }, 'c1', 'connect')).toMatch(/cannot be connected to a network/);
    expect(modeRefusal({ kind: 'none' }, 'c1', 'disconnect')).toMatch(/cannot be disconnected from a network/);
    expect(modeRefusal({ kind: 'container', containerId: 'x' }, 'c1', 'connect')).toBe('container c1 shares the network namespace of container x (--net container:x): connect that container instead');
    expect(modeRefusal({ kind: 'network', network: 'a' }, 'c1', 'connect')).toBeUndefined();
    for (const m of [{ kind: 'host' }, { kind: 'none' }, { kind: 'container', containerId: 'x' }] as const) expect(modeRefusal(m, 'c1', 'connect')).not.toContain('\n');
  });
});

describe('network connect: the next interface name', () => {
  it('takes the lowest free ethN from 1, skipping names the namespace already has', () => {
    expect(nextIfname(['lo', 'eth0'])).toBe('eth1');
    expect(nextIfname(['eth0', 'eth1', 'eth3'])).toBe('eth2');
    expect(nextIfname(['eth1'])).toBe('eth2'); // eth0 is never a connection's
    expect(nextIfname([])).toBe('eth1');
  });
});

describe('network connect: the configuration a restart creates the container from', () => {
  it('appends connections in order, and lists every network (its own first)', () => {
    const o = withConnection(withConnection(base, { network: 'b' }), { network: 'c', ip: '10.3.0.9', aliases: ['x'] });
    expect(o.connections).toEqual([{ network: 'b' }, { network: 'c', ip: '10.3.0.9', aliases: ['x'] }]);
    expect(configuredNetworks(o)).toEqual(['a', 'b', 'c']);
    expect(base.connections).toBeUndefined(); // not changed in place
  });

  it('drops a connection; the last one gone leaves no empty list', () => {
    const o = withConnection(withConnection(base, { network: 'b' }), { network: 'c' });
    expect(withoutNetwork(o, 'b', 'c1').connections).toEqual([{ network: 'c' }]);
    expect('connections' in withoutNetwork(withConnection(base, { network: 'b' }), 'b', 'c1')).toBe(false);
  });

  it('giving up its own network promotes the first connection (its address, MAC, aliases; no published ports)', () => {
    const o = withConnection(withConnection(base, { network: 'b', ip: '10.2.0.7', mac: '02:00:00:00:00:07', aliases: ['bee'] }), { network: 'c' });
    const n = withoutNetwork(o, 'a', 'c1');
    expect(n.net).toEqual({ kind: 'network', network: 'b' });
    expect(n).toMatchObject({ ip: '10.2.0.7', mac: '02:00:00:00:00:07', networkAliases: ['bee'], publish: [], connections: [{ network: 'c' }] });
    expect(n.ip6).toBeUndefined();
  });

  it('refuses its last network and one it is not on, with one line', () => {
    expect(() => withoutNetwork(base, 'a', 'c1')).toThrow('container c1: network a is its only network (connect it to another first, or stop it)');
    expect(() => withoutNetwork(withConnection(base, { network: 'b' }), 'z', 'c1')).toThrow('container c1 is not connected to network z');
  });
});
