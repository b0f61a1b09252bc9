import { afterAll, describe, expect, it } from '@jest/globals';
import { bridgeAlias, bridgeOwner, foreignBridgeError, setBridgeRoot, staleBridgeNetwork } from '../../../runtime/drivers/linux-bridge.js';

const bridge = (alias: string | undefined) => ({ index: 7, name: 'ts-x', kind: 'bridge', mtu: 1500, mac: '', up: true, ...(alias !== undefined ? { alias } : {}) });

describe('bridges named by their tsrun root', () => {
  afterAll(() => setBridgeRoot('/var/lib/tsrun'));

  it("tags with the root's lib directory, and tells own, another root's and old bridges apart", () => {
    setBridgeRoot('/tmp/a/lib');
    expect(bridgeAlias('web')).toBe('tsrun-net:web@/tmp/a/lib');
    expect(bridgeOwner(bridge('tsrun-net:web@/tmp/a/lib'))).toEqual({ network: 'web', root: '/tmp/a/lib', own: true });
    expect(bridgeOwner(bridge('tsrun-net:web@/tmp/b/lib'))).toEqual({ network: 'web', root: '/tmp/b/lib', own: false });
    expect(bridgeOwner(bridge('tsrun-net:web'))).toEqual({ network: 'web', own: false });
    expect(bridgeOwner(bridge('something else'))).toBeUndefined();
    expect(bridgeOwner(bridge(undefined))).toBeUndefined();
  });

  it('calls only its own root\'s bridges stale', () => {
    setBridgeRoot('/tmp/a/lib');
    const none = new Set<string>();
    expect(staleBridgeNetwork(bridge('tsrun-net:gone@/tmp/a/lib'), none)).toBe('gone');
    expect(staleBridgeNetwork(bridge('tsrun-net:gone@/tmp/a/lib'), new Set(['gone']))).toBeUndefined();
    expect(staleBridgeNetwork(bridge('tsrun-net:gone@/tmp/b/lib'), none)).toBeUndefined();
    expect(staleBridgeNetwork(bridge('tsrun-net:gone'), none)).toBeUndefined();
  });

  it('hashes a root too long for the alias (255 bytes)', () => {
    const long = `/tmp/${'d'.repeat(240)}/lib`;
    setBridgeRoot(long);
    expect(bridgeAlias('web')).toMatch(/^tsrun-net:web@sha256:[0-9a-f]{32}$/);
    expect(bridgeOwner(bridge(bridgeAlias('web')))?.own).toBe(true);
  });

  it("advises --bridge only for a network that can take one: the default network is made without options", () => {
    const owner = { network: 'tsrun', root: '/tmp/a/lib', own: false };
    expect(foreignBridgeError('tsrun0', owner, 'tsrun').message).not.toContain('--bridge)');
    expect(foreignBridgeError('tsrun0', owner, 'tsrun').message).toContain('tsrun network create --bridge NAME');
    expect(foreignBridgeError('ts-web', { ...owner, network: 'web' }, 'web').message).toContain('give network web another bridge (--bridge)');
  });
});
