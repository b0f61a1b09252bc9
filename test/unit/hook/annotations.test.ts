import { afterAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../../../config/errors.js';
import { DEFAULT_NETWORK } from '../../../config/net-mode.js';
import { readBundleAnnotations, selectAnnotations, tsrunAnnotations, wiringFromAnnotations } from '../../../hook/annotations.js';
import { recording } from './fixtures.js';

const net = (v: string) => wiringFromAnnotations({ 'io.tsrun.network': v });

describe('wiringFromAnnotations', () => {
  it('no annotation: the default network, marked as not explicit', () => {
    expect(wiringFromAnnotations({})).toEqual({ mode: { kind: 'network', network: DEFAULT_NETWORK }, explicit: false, ports: [], ip: undefined, ip6: undefined, mac: undefined });
  });

  it('reads every network form', () => {
    expect(net('bridge').mode).toEqual({ kind: 'network', network: DEFAULT_NETWORK });
    expect(net(' web ').mode).toEqual({ kind: 'network', network: 'web' });
    expect(net('none').mode).toEqual({ kind: 'none' });
    expect(net('host').mode).toEqual({ kind: 'host' });
    expect(net('container:db1').mode).toEqual({ kind: 'container', containerId: 'db1' });
    expect(net('web').explicit).toBe(true);
  });

  it('reads ports, addresses and the MAC', () => {
    const w = wiringFromAnnotations({
      'io.tsrun.network': 'web',
      'io.tsrun.ports': '8080:80/tcp, 53:53/udp',
      'io.tsrun.ip': '10.89.0.7',
      'io.tsrun.ip6': 'fd00:0:0:0::7',
      'io.tsrun.mac': '02:42:AC:11:00:02',
    });
    expect(w.ports).toEqual([
      { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
      { hostPort: 53, containerPort: 53, protocol: 'udp' },
    ]);
    expect(w.ip).toBe('10.89.0.7');
    expect(w.ip6).toBe('fd00::7');
    expect(w.mac).toBe('02:42:ac:11:00:02');
  });

  it('empty ports, addresses and MAC mean none', () => {
    const w = wiringFromAnnotations({ 'io.tsrun.ports': '', 'io.tsrun.ip': ' ', 'io.tsrun.mac': '' });
    expect(w.ports).toEqual([]);
    expect(w.ip).toBeUndefined();
    expect(w.mac).toBeUndefined();
  });

  it.each([
    [{ 'io.tsrun.network': '' }, /^annotation io\.tsrun\.network="": use none, host, bridge, container:<id> or a network name$/],
    [{ 'io.tsrun.network': '../../etc' }, /^annotation io\.tsrun\.network="\.\.\/\.\.\/etc": use none/],
    [{ 'io.tsrun.network': 'container:' }, /^annotation io\.tsrun\.network="container:"/],
    [{ 'io.tsrun.network': 'container:../x' }, /^annotation io\.tsrun\.network="container:\.\.\/x"/],
    [{ 'io.tsrun.network': 'x'.repeat(5000) }, /^annotation io\.tsrun\.network="x{57}\.\.\.": use none/],
    [{ 'io.tsrun.ports': '8080' }, /^annotation io\.tsrun\.ports="8080": invalid mapping "8080": expected \[HOSTIP:\]HOSTPORT:CONTAINERPORT/],
    [{ 'io.tsrun.ports': '70000:80' }, /^annotation io\.tsrun\.ports="70000:80": invalid mapping "70000:80": port 70000 is outside 1-65535$/],
    [{ 'io.tsrun.ports': '80:80,80:81' }, /^annotation io\.tsrun\.ports="80:80,80:81": host port 80\/tcp is published twice$/],
    [{ 'io.tsrun.ip': '10.0.0' }, /^annotation io\.tsrun\.ip="10\.0\.0": not an IPv4 address$/],
    [{ 'io.tsrun.ip': 'fd00::1' }, /^annotation io\.tsrun\.ip="fd00::1": not an IPv4 address$/],
    [{ 'io.tsrun.ip6': '10.0.0.1' }, /^annotation io\.tsrun\.ip6="10\.0\.0\.1": not an IPv6 address$/],
    [{ 'io.tsrun.mac': '03:00:00:00:00:01' }, /^annotation io\.tsrun\.mac="03:00:00:00:00:01": expected a unicast address/],
    [{ 'io.tsrun.mac': 'zz' }, /^annotation io\.tsrun\.mac="zz"/],
    [{ 'io.tsrun.port': '80:80' }, /^unknown annotation "io\.tsrun\.port": tsrun reads io\.tsrun\.network, io\.tsrun\.ports, io\.tsrun\.ip, io\.tsrun\.ip6, io\.tsrun\.mac$/],
    [{ 'io.tsrun.network': 'none', 'io.tsrun.ports': '80:80' }, /^annotation io\.tsrun\.ports needs a network, but io\.tsrun\.network=none gives the container no interfaces$/],
    [{ 'io.tsrun.network': 'host', 'io.tsrun.ip': '10.0.0.2' }, /^annotation io\.tsrun\.ip needs a network, but io\.tsrun\.network=host gives the container the host's interfaces$/],
    [{ 'io.tsrun.network': 'container:a', 'io.tsrun.mac': '02:00:00:00:00:01' }, /^annotation io\.tsrun\.mac needs a network.*another container's interfaces$/],
  ])('refuses %p', (annotations, message) => {
    let caught: unknown;
    try {
      wiringFromAnnotations(annotations);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UserError);
    expect((caught as UserError).shortMessage).toMatch(message);
  });
});

describe('selectAnnotations: the state first, then the bundle', () => {
  const never = () => {
    throw new Error('config.json must not be read when the state has tsrun annotations');
  };

  it('takes io.tsrun.* from the state and ignores the rest', () => {
    const r = selectAnnotations({ bundle: '/b', annotations: { 'io.tsrun.network': 'web', 'io.podman.annotations.init': 'FALSE' } }, never);
    expect(r).toEqual({ annotations: { 'io.tsrun.network': 'web' }, source: 'state' });
  });

  it('falls back to config.json when the state has none', () => {
    const r = selectAnnotations({ bundle: '/b', annotations: { other: 'x' } }, (b) => {
      expect(b).toBe('/b');
      return { 'io.tsrun.ports': '80:80', unrelated: 'y' };
    });
    expect(r).toEqual({ annotations: { 'io.tsrun.ports': '80:80' }, source: 'config.json' });
  });

  it('no tsrun annotation anywhere: none (the default network)', () => {
    const podman = recording('podman-none-createRuntime.json').state as { bundle: string; annotations: Record<string, string> };
    expect(selectAnnotations(podman, () => ({}))).toEqual({ annotations: {}, source: 'none' });
    expect(tsrunAnnotations(podman.annotations)).toEqual({});
  });
});

describe('readBundleAnnotations', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-ann-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const bundleWith = (name: string, text: string | undefined) => {
    const b = path.join(dir, name);
    mkdirSync(b);
    if (text !== undefined) writeFileSync(path.join(b, 'config.json'), text);
    return b;
  };

  it('returns the tsrun annotations of config.json', () => {
    const b = bundleWith('ok', JSON.stringify({ ociVersion: '1', annotations: { 'io.tsrun.network': 'web', other: 'x' } }));
    expect(readBundleAnnotations(b)).toEqual({ 'io.tsrun.network': 'web' });
  });

  it('no bundle, no config.json, no annotations: none', () => {
    expect(readBundleAnnotations(path.join(dir, 'absent'))).toEqual({});
    expect(readBundleAnnotations(bundleWith('empty', undefined))).toEqual({});
    expect(readBundleAnnotations(bundleWith('noann', '{"ociVersion":"1"}'))).toEqual({});
    expect(readBundleAnnotations('/proc/self/fd/0')).toEqual({});
  });

  it('names the file when it is not valid', () => {
    expect(() => readBundleAnnotations(bundleWith('bad', '{'))).toThrow(/config\.json is not valid JSON/);
    expect(() => readBundleAnnotations(bundleWith('list', '{"annotations":[]}'))).toThrow(/config\.json: annotations: must be an object of strings$/);
    expect(() => readBundleAnnotations(bundleWith('num', '{"annotations":{"io.tsrun.network":1}}'))).toThrow(/annotations\.io\.tsrun\.network: must be a string$/);
  });

  it('refuses a FIFO or a directory instead of hanging on it', () => {
    const fifo = bundleWith('fifo', undefined);
    execFileSync('mkfifo', [path.join(fifo, 'config.json')]);
    expect(() => readBundleAnnotations(fifo)).toThrow(/config\.json is not a regular file$/);
    const d = bundleWith('dir', undefined);
    mkdirSync(path.join(d, 'config.json'));
    expect(() => readBundleAnnotations(d)).toThrow(/config\.json is not a regular file$/);
  });
});
