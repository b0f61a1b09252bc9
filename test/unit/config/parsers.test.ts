import { describe, expect, it } from '@jest/globals';
import { parseCpus, parsePositiveInt, parseSize, parseSizeOrUnlimited } from '../../../config/units.js';
import { parsePublish, parsePublishList, parsePortsAnnotation, portsCollide } from '../../../config/ports.js';
import { checkContainerId, checkIfname, checkNetworkName, generateContainerId } from '../../../config/ids.js';
import { parseNetMode } from '../../../config/net-mode.js';
import { resolveSettings } from '../../../config/settings.js';
import { UserError } from '../../../config/errors.js';

describe('sizes and numbers', () => {
  it.each([
    ['1048576', 1048576],
    ['512k', 512 * 1024],
    ['64m', 64 * 1024 ** 2],
    ['64MB', 64 * 1024 ** 2],
    ['1g', 1024 ** 3],
    ['1.5g', 1.5 * 1024 ** 3],
  ])('parseSize(%s)', (text, bytes) => expect(parseSize('--memory', text)).toBe(bytes));

  it.each(['', '12q', '-5m', 'm', '0', '1 2'])('rejects size %p with the flag named', (text) => {
    expect(() => parseSize('--memory', text)).toThrow(UserError);
    expect(() => parseSize('--memory', text)).toThrow(/--memory/);
  });

  it('-1 means unlimited swap', () => expect(parseSizeOrUnlimited('--memory-swap', '-1')).toBe(-1));
  it('cpus are bounded by the host', () => {
    expect(parseCpus('--cpus', '1.5', 2)).toBe(1.5);
    expect(() => parseCpus('--cpus', '3', 2)).toThrow(/only 2 CPUs/);
    expect(() => parseCpus('--cpus', 'x', 2)).toThrow(/expected a number of CPUs/);
    expect(() => parseCpus('--cpus', '0', 2)).toThrow(/greater than zero/);
  });
  it('positive integers', () => {
    expect(parsePositiveInt('--pids-limit', '20')).toBe(20);
    expect(() => parsePositiveInt('--pids-limit', '0')).toThrow(/between 1 and/);
    expect(() => parsePositiveInt('--pids-limit', '2.5')).toThrow(/whole number/);
    expect(() => parsePositiveInt('--cpu-shares', '300000', 262144)).toThrow(/between 1 and 262144/);
  });
});

describe('published ports', () => {
  it('parses the docker forms', () => {
    expect(parsePublish('8080:80')).toEqual([{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }]);
    expect(parsePublish('127.0.0.1:53:53/udp')).toEqual([{ hostIp: '127.0.0.1', hostPort: 53, containerPort: 53, protocol: 'udp' }]);
    expect(parsePublish('[::1]:8080:80/TCP')).toEqual([{ hostIp: '::1', hostPort: 8080, containerPort: 80, protocol: 'tcp' }]);
    expect(parsePublish('8000-8002:9000-9002')).toEqual([
      { hostPort: 8000, containerPort: 9000, protocol: 'tcp' },
      { hostPort: 8001, containerPort: 9001, protocol: 'tcp' },
      { hostPort: 8002, containerPort: 9002, protocol: 'tcp' },
    ]);
    expect(parsePublish('8000-8001:80').map((p) => p.containerPort)).toEqual([80, 80]);
  });

  it.each([
    ['80', /expected \[HOSTIP:\]HOSTPORT:CONTAINERPORT/],
    ['0:80', /port 0 is outside/],
    ['70000:80', /port 70000 is outside/],
    ['1.2.3:80:80', /1\.2\.3 is not an IP address/],
    ['::1:80:80', /expected/],
    ['[127.0.0.1]:80:80', /IPv6 host addresses go in brackets/],
    ['8000-8002:9000-9001', /same length/],
    ['9000-8000:80', /runs backwards/],
    ['80:80/sctp', /expected/],
  ])('refuses %p', (text, why) => expect(() => parsePublish(text)).toThrow(why));

  it('refuses the same host port twice, and understands the annotation form', () => {
    expect(() => parsePublishList(['8080:80', '8080:81'])).toThrow(/host port 8080\/tcp is published twice/);
    expect(parsePublishList(['8080:80', '8080:80/udp'])).toHaveLength(2);
    expect(parsePortsAnnotation('8080:80/tcp, 53:53/udp')).toHaveLength(2);
  });

  it('collisions consider the wildcard address', () => {
    const any = { hostPort: 80, containerPort: 80, protocol: 'tcp' as const };
    expect(portsCollide(any, { ...any, hostIp: '10.0.0.1' })).toBe(true);
    expect(portsCollide({ ...any, hostIp: '10.0.0.2' }, { ...any, hostIp: '10.0.0.1' })).toBe(false);
    expect(portsCollide(any, { ...any, protocol: 'udp' })).toBe(false);
    // 0.0.0.0 and :: are the wildcard of their family, never a specific address
    expect(portsCollide({ ...any, hostIp: '0.0.0.0' }, { ...any, hostIp: '10.0.0.1' })).toBe(true);
    expect(portsCollide({ ...any, hostIp: '::' }, { ...any, hostIp: '2001:db8::1' })).toBe(true);
    expect(portsCollide({ ...any, hostIp: '::' }, { ...any, hostIp: '10.0.0.1' })).toBe(false);
    expect(portsCollide({ ...any, hostIp: '0.0.0.0' }, any)).toBe(true);
  });

  it('refuses a wildcard and a specific address on one port in one request, and caps the mappings', () => {
    expect(() => parsePublishList(['0.0.0.0:8080:80', '127.0.0.1:8080:80'])).toThrow(/published twice/);
    expect(parsePublishList(['1-1000:1-1000', '2001-2024:1-24'])).toHaveLength(1024);
    const huge = Array.from({ length: 60 }, (_, i) => `${i * 1001 + 1}-${i * 1001 + 1001}:80`);
    expect(() => parsePortsAnnotation(huge.join(','))).toThrow(/^too many published ports: at most 1024 mappings per container$/);
  });
});

describe('ids and names', () => {
  it('container ids follow runc\'s charset and cannot become paths', () => {
    expect(checkContainerId('web-1.a_b+c')).toBe('web-1.a_b+c');
    for (const bad of ['../../etc', '/abs', '', '.', '..', 'a b', 'a/b', '-lead', 'x'.repeat(129)]) {
      expect(() => checkContainerId(bad)).toThrow(/invalid container id/);
    }
    expect(checkContainerId(generateContainerId())).toMatch(/^[0-9a-f]{12}$/);
  });
  it('network and interface names', () => {
    expect(checkNetworkName('web_net.1')).toBe('web_net.1');
    expect(() => checkNetworkName('bad/name')).toThrow(/invalid network name/);
    expect(checkIfname('tsrun0')).toBe('tsrun0');
    expect(() => checkIfname('a-very-long-ifname')).toThrow(/1-15 characters/);
    expect(() => checkIfname('eth 0')).toThrow();
  });
});

describe('--net modes', () => {
  it('parses namespace choices and network names', () => {
    expect(parseNetMode('none')).toEqual({ kind: 'none' });
    expect(parseNetMode('host')).toEqual({ kind: 'host' });
    expect(parseNetMode('bridge')).toEqual({ kind: 'network', network: 'tsrun' });
    expect(parseNetMode('web')).toEqual({ kind: 'network', network: 'web' });
    expect(parseNetMode('container:abc')).toEqual({ kind: 'container', containerId: 'abc' });
  });
  it.each(['', 'container:', 'a/b', 'sp ace'])('refuses %p', (v) => expect(() => parseNetMode(v)).toThrow(/invalid --net/));
  it('refuses a container id that could become a path', () => expect(() => parseNetMode('container:../x')).toThrow(/invalid container id/));
});

describe('settings', () => {
  it('follows the FHS without TSRUN_ROOT', () => {
    const s = resolveSettings({});
    expect(s).toMatchObject({ runDir: '/run/tsrun', libDir: '/var/lib/tsrun', logFile: '/var/log/tsrun/tsrun.log', store: 'local', logLevel: 'info', debug: false });
  });
  it('puts everything under TSRUN_ROOT, flags winning over the environment', () => {
    const s = resolveSettings({ TSRUN_ROOT: '/tmp/r', TSRUN_STORE: 'etcd://a:2379', TSRUN_LOG_LEVEL: 'warn' }, { logLevel: 'debug' });
    expect(s).toMatchObject({ runDir: '/tmp/r/run', libDir: '/tmp/r/lib', logFile: '/tmp/r/log/tsrun.log', store: 'etcd://a:2379', logLevel: 'debug' });
    expect(resolveSettings({ TSRUN_ROOT: '/tmp/r' }, { root: '/tmp/flag' }).runDir).toBe('/tmp/flag/run');
  });
});
