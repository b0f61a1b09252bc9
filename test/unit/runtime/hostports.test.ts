import { describe, expect, it } from '@jest/globals';
import { ConflictError } from '../../../config/errors.js';
import type { PortMapping } from '../../../config/ports.js';
import { holdsPort, releasePort, reservePort } from '../../../runtime/hostports.js';
import { MemoryStore } from '../../../runtime/store/memory.js';

const port = (hostIp?: string, protocol: 'tcp' | 'udp' = 'tcp'): PortMapping => ({ ...(hostIp ? { hostIp } : {}), hostPort: 8080, containerPort: 80, protocol });

describe('host port reservations follow the one wildcard rule', () => {
  it.each([
    [undefined, '10.0.0.1'],
    ['10.0.0.1', undefined],
    ['0.0.0.0', '10.0.0.1'],
    ['10.0.0.1', '0.0.0.0'],
    ['::', 'fd00::1'],
    ['10.0.0.1', '10.0.0.1'],
  ])('%s then %s: refused', async (first, second) => {
    const store = new MemoryStore();
    await reservePort(store, port(first), 'a');
    await expect(reservePort(store, port(second), 'b')).rejects.toThrow(ConflictError);
    await expect(reservePort(store, port(second), 'b')).rejects.toThrow(/is already published by container a/);
  });

  it.each([
    ['10.0.0.1', '10.0.0.2'],
    ['0.0.0.0', '::'],
    ['0.0.0.0', 'fd00::1'],
  ])('%s then %s: both held', async (first, second) => {
    const store = new MemoryStore();
    await reservePort(store, port(first), 'a');
    await reservePort(store, port(second), 'b');
    expect(await holdsPort(store, port(second), 'b')).toBe(true);
  });

  it('keeps protocols apart and frees a port on release', async () => {
    const store = new MemoryStore();
    await reservePort(store, port(undefined, 'tcp'), 'a');
    await reservePort(store, port(undefined, 'udp'), 'b');
    await releasePort(store, port(undefined, 'tcp'), 'a');
    await reservePort(store, port('10.0.0.1', 'tcp'), 'c');
    expect(await holdsPort(store, port('10.0.0.1'), 'c')).toBe(true);
  });
});
