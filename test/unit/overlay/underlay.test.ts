// The VXLAN source filter's two sets, from the registered hosts (runtime/overlay/host.ts): what
// the agent programs and what a firewall rebuild restores must be the same split.
import { describe, expect, it } from '@jest/globals';
import { splitUnderlay } from '../../../runtime/overlay/host.js';

describe('splitUnderlay', () => {
  it("puts this host's address in local and every other host's, once and sorted, in peers", () => {
    const hosts = [
      { hostId: 'b', address: '10.0.0.9' },
      { hostId: 'me', address: '10.0.0.5' },
      { hostId: 'c', address: '10.0.0.2' },
      { hostId: 'd', address: '10.0.0.9' }, // two ids on one address (a re-registered host)
    ];
    expect(splitUnderlay(hosts, 'me')).toEqual({ local: ['10.0.0.5'], peers: ['10.0.0.2', '10.0.0.9'] });
  });

  it('has no local address for a host not (yet) registered', () => {
    expect(splitUnderlay([{ hostId: 'b', address: '10.0.0.9' }], 'me')).toEqual({ local: [], peers: ['10.0.0.9'] });
  });
});
