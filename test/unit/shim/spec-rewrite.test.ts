import { describe, expect, it } from '@jest/globals';
import { mergeEnv, rewriteSpec, type SpecOverrides } from '../../../shim/spec-rewrite.js';
import type { Spec } from '../../../config/oci.js';
import { SpecSchema, StateSchema } from '../../../config/oci.js';
import { parseOrThrow } from '../../../config/validate.js';

const base: Spec = {
  ociVersion: '1.0.2-dev',
  process: { args: ['sh'], env: ['PATH=/bin', 'TERM=xterm'], cwd: '/' },
  root: { path: 'rootfs', readonly: true },
  hostname: 'busybox',
  linux: {
    namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
    resources: { devices: [{ allow: false, access: 'rwm' }] } as never,
  },
  mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }],
} as Spec;

const overrides: SpecOverrides = { rootfs: '/bundles/b/rootfs', netns: { kind: 'new' }, resources: {}, cgroupsPath: '/tsrun/c1' };

describe('rewriteSpec', () => {
  it('anchors the root, sets the cgroup path and keeps unknown fields', () => {
    const out = rewriteSpec(base, overrides);
    expect(out.root).toEqual({ path: '/bundles/b/rootfs', readonly: true });
    expect(out.linux?.cgroupsPath).toBe('/tsrun/c1');
    expect((out as Record<string, unknown>).mounts).toEqual((base as Record<string, unknown>).mounts);
    expect((out.linux?.resources as Record<string, unknown>).devices).toEqual([{ allow: false, access: 'rwm' }]);
  });

  it('--init: the init is bind-mounted read-only at /dev/init, after the other mounts, and runs the program', () => {
    const out = rewriteSpec(base, { ...overrides, args: ['httpd', '-f'], init: '/usr/bin/tini-static' });
    expect(out.process.args).toEqual(['/dev/init', '--', 'httpd', '-f']);
    expect((out as { mounts?: unknown[] }).mounts).toEqual([
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev/init', type: 'bind', source: '/usr/bin/tini-static', options: ['bind', 'ro', 'nosuid', 'nodev'] },
    ]);
    expect(rewriteSpec(base, overrides).process.args).toEqual(['sh']);
  });

  it('mounts the generated resolv.conf, unless the spec already mounts something there', () => {
    const resolvConf = { destination: '/etc/resolv.conf', type: 'bind', source: '/run/tsrun/containers/c1/resolv.conf', options: ['rbind', 'rprivate'] };
    const mounts = (o: Spec) => (o as { mounts?: { destination: string; source?: string }[] }).mounts!;
    expect(mounts(rewriteSpec(base, { ...overrides, resolvConf }))).toEqual([...mounts(base), resolvConf]);
    const own = { ...base, mounts: [...mounts(base), { destination: '/etc/resolv.conf/', type: 'bind', source: '/mine' }] } as Spec;
    expect(mounts(rewriteSpec(own, { ...overrides, resolvConf })).filter((m) => m.destination.startsWith('/etc/resolv.conf'))).toEqual([{ destination: '/etc/resolv.conf/', type: 'bind', source: '/mine' }]);
  });

  it('does not modify its input', () => {
    const copy = structuredClone(base);
    rewriteSpec(base, { ...overrides, args: ['true'], env: ['A=1'], resources: { memoryBytes: 1 } });
    expect(base).toEqual(copy);
  });

  it('inPlace: the same rewrite, made on the spec itself', () => {
    const mine = structuredClone(base);
    const o = { ...overrides, args: ['true'], env: ['A=1'], resources: { memoryBytes: 1 } };
    const out = rewriteSpec(mine, o, { inPlace: true });
    expect(out).toBe(mine);
    expect(out).toEqual(rewriteSpec(base, o));
  });

  it('none: a fresh network namespace; host: none at all; path: the pinned one', () => {
    const kinds = (o: Spec) => o.linux!.namespaces!.filter((n) => n.type === 'network');
    expect(kinds(rewriteSpec(base, overrides))).toEqual([{ type: 'network' }]);
    expect(kinds(rewriteSpec(base, { ...overrides, netns: { kind: 'host' } }))).toEqual([]);
    expect(kinds(rewriteSpec(base, { ...overrides, netns: { kind: 'path', path: '/run/tsrun/netns/c1' } }))).toEqual([{ type: 'network', path: '/run/tsrun/netns/c1' }]);
  });

  it('adds a UTS namespace when a hostname needs one', () => {
    const noUts = { ...base, linux: { namespaces: [{ type: 'pid' as const }, { type: 'mount' as const }] } };
    const out = rewriteSpec(noUts, { ...overrides, hostname: 'h1' });
    expect(out.hostname).toBe('h1');
    expect(out.linux!.namespaces!.map((n) => n.type)).toEqual(['pid', 'network', 'uts', 'mount']);
  });

  it('gives the container its own cgroup namespace on a cgroup v2 host only', () => {
    const types = (o: Spec) => o.linux!.namespaces!.map((n) => n.type);
    expect(types(rewriteSpec(base, { ...overrides, cgroupLayout: 'v2' }))).toContain('cgroup');
    expect(types(rewriteSpec(base, { ...overrides, cgroupLayout: 'hybrid' }))).not.toContain('cgroup');
    expect(types(rewriteSpec(base, { ...overrides, cgroupLayout: 'v1' }))).not.toContain('cgroup');
  });

  it('overrides args, cwd and env; env replaces keys like docker -e', () => {
    const out = rewriteSpec(base, { ...overrides, args: ['echo', 'hi'], cwd: '/tmp', env: ['PATH=/usr/bin', 'NEW=1'] });
    expect(out.process.args).toEqual(['echo', 'hi']);
    expect(out.process.cwd).toBe('/tmp');
    expect(out.process.env).toEqual(['PATH=/usr/bin', 'TERM=xterm', 'NEW=1']);
    expect(mergeEnv(['A=1=2'], ['A=3'])).toEqual(['A=3']);
  });

  it('-u: the process user, and HOME from its entry when the environment has none', () => {
    const withUser = rewriteSpec(base, { ...overrides, user: { uid: 1000, gid: 100, additionalGids: [10], home: '/home/a' } });
    expect(withUser.process.user).toEqual({ uid: 1000, gid: 100, additionalGids: [10] });
    expect(withUser.process.env).toContain('HOME=/home/a');
    const keeps = rewriteSpec(base, { ...overrides, env: ['HOME=/mine'], user: { uid: 1, gid: 1, home: '/x' } });
    expect(keeps.process.user).toEqual({ uid: 1, gid: 1 });
    expect(keeps.process.env!.filter((e) => e.startsWith('HOME='))).toEqual(['HOME=/mine']);
  });

  it('turns limits into linux.resources', () => {
    const out = rewriteSpec(base, { ...overrides, resources: { memoryBytes: 64 << 20, memorySwapBytes: 96 << 20, cpus: 1.5, cpuShares: 512, pidsLimit: 20 } });
    expect(out.linux!.resources).toMatchObject({ memory: { limit: 64 << 20, swap: 96 << 20 }, cpu: { quota: 150000, period: 100000, shares: 512 }, pids: { limit: 20 } });
  });

  it('refuses a swap limit without or below memory', () => {
    expect(() => rewriteSpec(base, { ...overrides, resources: { memorySwapBytes: 1 << 20 } })).toThrow(/--memory-swap needs --memory/);
    expect(() => rewriteSpec(base, { ...overrides, resources: { memoryBytes: 2 << 20, memorySwapBytes: 1 << 20 } })).toThrow(/at least --memory/);
    expect(rewriteSpec(base, { ...overrides, resources: { memoryBytes: 2 << 20, memorySwapBytes: -1 } }).linux!.resources!.memory).toEqual({ limit: 2 << 20, swap: -1 });
  });
});

describe('schema validation names the field', () => {
  it('config.json', () => {
    expect(() => parseOrThrow(SpecSchema, { ...base, process: { ...base.process, cwd: 'relative' } }, 'config.json')).toThrow('config.json: process.cwd: must be an absolute path');
    expect(() => parseOrThrow(SpecSchema, { ...base, root: undefined }, 'config.json')).toThrow('config.json: root: is required');
    expect(parseOrThrow(SpecSchema, base, 'config.json')).toMatchObject({ root: base.root });
  });
  it('hook state', () => {
    const state = { ociVersion: '1.0.2', id: 'c1', status: 'creating', pid: 42, bundle: '/b' };
    const check = (s: unknown) => () => parseOrThrow(StateSchema, s, 'state');
    expect(check(state)()).toMatchObject(state);
    expect(check({ ...state, pid: -1 })).toThrow('state: pid: must be a positive process id');
    expect(check({ ...state, status: 'weird' })).toThrow(/^state: status: /);
    expect(check({ ...state, annotations: { a: 1 } })).toThrow(/^state: annotations\.a: /);
  });
});
