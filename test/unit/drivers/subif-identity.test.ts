// containerNetnsPath: the namespace of a late macvlan/ipvlan detach is proven by the record's
// holder or pin, never by dev:inode alone (the kernel reuses a freed namespace's inode).
import { describe, expect, it } from '@jest/globals';
import { containerNetnsPath } from '../../../runtime/drivers/subif.js';
import { netnsId } from '../../../runtime/netns/netns.js';
import type { EndpointRecord } from '../../../runtime/records.js';

const here = `/proc/${process.pid}/ns/net`;
const base = { containerId: 'c', network: 'n', driver: 'macvlan', ifname: 'eth0', hostIfname: '', mac: '', ports: [], hostNetns: 'x', created: '' } as unknown as EndpointRecord;

describe('containerNetnsPath', () => {
  it('uses the holder\'s namespace while that very process lives', () => {
    const rec = { ...base, netnsPath: here, containerNetns: netnsId(here), netnsHolder: { pid: process.pid, start: 's' } };
    expect(containerNetnsPath(rec, () => true)).toBe(here);
  });

  it('refuses a namespace with the recorded identity when the holder is gone (inode reuse)', () => {
    const rec = { ...base, netnsPath: '/proc/999999/ns/net', containerNetns: netnsId(here), netnsHolder: { pid: 999999, start: 's' } };
    expect(containerNetnsPath(rec, () => false)).toBeUndefined();
  });

  it('refuses a holder whose process is now in another namespace', () => {
    const rec = { ...base, netnsPath: here, containerNetns: '0:1', netnsHolder: { pid: process.pid, start: 's' } };
    expect(containerNetnsPath(rec, () => true)).toBeUndefined();
  });

  it('refuses a /proc path without a holder, and accepts a pin that still names the identity', () => {
    expect(containerNetnsPath({ ...base, netnsPath: here, containerNetns: netnsId(here) })).toBeUndefined();
    expect(containerNetnsPath({ ...base, netnsPath: '/proc/thread-self/ns/net', containerNetns: netnsId(here) })).toBeUndefined();
    expect(containerNetnsPath({ ...base, netnsPath: '/nonexistent/pin', containerNetns: netnsId(here) })).toBeUndefined();
  });
});
