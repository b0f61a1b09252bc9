// The overlay's key layout and names: what the driver writes, the agent parses, inspect reads.
import { describe, expect, it } from '@jest/globals';
import {
  endpointKey, hostEndpointsPrefix, hostKey, networkEndpointsPrefix, parseHostRecord, parseOverlayEndpoint, parseOverlayKey, vniKey,
  vtepMacOf, vxlanName,
} from '../../../runtime/overlay/keys.js';
import { checkKey, checkPrefix } from '../../../runtime/store/keys.js';
import { isClusterKey } from '../../../runtime/store/scoped.js';
import { normalizeNetworkInput } from '../../../config/networks.js';

describe('overlay key layout', () => {
  it('builds keys every store accepts, all in the cluster', () => {
    const keys = [hostKey('0a1b2c3d4e5f'), endpointKey('web', '0a1b2c3d4e5f', 'ctr-1.a_b'), vniKey(4096)];
    for (const k of keys) {
      expect(checkKey(k)).toBe(k);
      expect(isClusterKey(k)).toBe(true);
    }
    expect(checkPrefix(networkEndpointsPrefix('web'))).toBe('overlay/endpoints/web/');
    expect(endpointKey('web', 'h1', 'c1').startsWith(hostEndpointsPrefix('web', 'h1'))).toBe(true);
    expect(endpointKey('web', 'h1', 'c1').startsWith(networkEndpointsPrefix('web'))).toBe(true);
    expect(networkEndpointsPrefix('we')).not.toBe(networkEndpointsPrefix('web').slice(0, -2));
  });

  it('parses its own keys back, and nothing else', () => {
    expect(parseOverlayKey('overlay/hosts/h1')).toEqual({ kind: 'host', hostId: 'h1' });
    expect(parseOverlayKey('overlay/endpoints/web/h1/c1')).toEqual({ kind: 'endpoint', network: 'web', hostId: 'h1', containerId: 'c1' });
    expect(parseOverlayKey('overlay/vni/4097')).toEqual({ kind: 'vni', vni: 4097 });
    for (const k of ['overlay/hosts', 'overlay/endpoints/web/h1', 'overlay/endpoints/web/h1/c1/x', 'overlay/vni/x', 'networks/web', 'overlay/other/a']) {
      expect(parseOverlayKey(k)).toBeUndefined();
    }
  });

  it('puts host-local keys (endpoint records, host ports, the agent identity) in the local store', () => {
    for (const k of ['endpoints/c1/web', 'hostports/tcp/80/any', 'host/sysctls/net.ipv4.ip_forward', 'agent/host-id']) expect(isClusterKey(k)).toBe(false);
    for (const k of ['networks/web', 'ipam/web/10.0.0.2', 'overlay/hosts/h']) expect(isClusterKey(k)).toBe(true);
  });

  it('refuses malformed records', () => {
    expect(parseHostRecord('{"hostId":"h","address":"192.0.2.1","leaseId":"7"}')).toMatchObject({ hostId: 'h' });
    for (const t of [undefined, '', 'nope', '[]', '{"hostId":"h"}']) expect(parseHostRecord(t)).toBeUndefined();
    expect(parseOverlayEndpoint('{"containerId":"c","hostId":"h","mac":"02:00:00:00:00:01","ipv4":"10.0.0.2"}')).toMatchObject({ containerId: 'c' });
    expect(parseOverlayEndpoint('{"containerId":"c","hostId":"h"}')).toBeUndefined();
  });
});

describe('overlay names', () => {
  it('names the VXLAN device by its id, within 15 bytes', () => {
    expect(vxlanName(4096)).toBe('tsvx4096');
    expect(vxlanName(16777215).length).toBeLessThanOrEqual(15);
  });

  it('derives VTEP MACs from host ids (unicast, locally administered)', () => {
    const vtep = vtepMacOf('0a1b2c3d4e5f');
    expect(vtep).toBe('0e:0a:1b:2c:3d:4e');
    expect(parseInt(vtep.slice(0, 2), 16) & 0b11).toBe(0b10);
  });
});

describe('overlay network input', () => {
  it('takes --vni for overlay only, in range', () => {
    expect(normalizeNetworkInput({ name: 'ov', driver: 'overlay', vni: '42' })).toMatchObject({ driver: 'overlay', vni: 42, bridge: 'ts-ov' });
    expect(normalizeNetworkInput({ name: 'ov', driver: 'overlay' }).vni).toBeUndefined();
    expect(() => normalizeNetworkInput({ name: 'br', vni: '42' })).toThrow('--vni is for --driver overlay');
    for (const v of ['0', '16777216', 'x', '-1']) expect(() => normalizeNetworkInput({ name: 'ov', driver: 'overlay', vni: v })).toThrow(/invalid --vni/);
  });

  it('refuses what an overlay cannot honour across hosts', () => {
    expect(() => normalizeNetworkInput({ name: 'ov', driver: 'overlay', ipv6Subnet: 'fd00::/64' })).toThrow(/IPv4-only/);
    expect(() => normalizeNetworkInput({ name: 'ov', driver: 'overlay', opts: ['icc=false'] })).toThrow(/icc=false/);
  });
});
