import { describe, expect, it } from '@jest/globals';
import { ConflictError } from '../../../config/errors.js';
import type { PortMapping } from '../../../config/ports.js';
import { holdsPort, releasePort, reservePort } from '../../../runtime/hostports.js';
import { MemoryStore } from '../../../runtime/store/memory.js';
import { LocalStore } from '../../../runtime/store/local.js';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

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

  it.each(['', '\0\0\0\0'])('a reservation torn by a power loss (%j) names no container: it is taken over', async (torn) => {
    const store = new MemoryStore();
    await store.put('hostports/tcp/8080/any', torn);
    await store.put('hostports/tcp/8080/10.0.0.1', torn);
    await reservePort(store, port('10.0.0.2'), 'b');
    expect(await holdsPort(store, port('10.0.0.2'), 'b')).toBe(true);
    expect((await store.list('hostports/')).map((e) => e.key)).toEqual(['hostports/tcp/8080/10.0.0.2']);
  });

  it('keeps protocols apart and frees a port on release', async () => {
    const store = new MemoryStore();
    await reservePort(store, port(undefined, 'tcp'), 'a');
    await reservePort(store, port(undefined, 'udp'), 'b');
    await releasePort(store, port(undefined, 'tcp'), 'a');
    await reservePort(store, port('10.0.0.1', 'tcp'), 'c');
    expect(await holdsPort(store, port('10.0.0.1'), 'c')).toBe(true);
  });

  it('lets at most one of 50 racing wildcard and specific reservations win (local store, one file per key)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'i10-hostports-'));
    try {
      const store = new LocalStore(dir);
      const wanted = Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? port(undefined) : port(i % 4 === 1 ? '0.0.0.0' : '192.0.2.7')));
      const results = await Promise.allSettled(wanted.map((p, i) => reservePort(store, p, `c${i}`)));
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      expect(won.length).toBeLessThanOrEqual(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(ConflictError);
      const held = await store.list('hostports/tcp/8080/');
      expect(held.map((e) => e.value)).toEqual(won.map((i) => `c${i}`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
