// The CNI front door's pure parts: environment and config parsing with the spec's error codes,
// result shapes per version (and chained on a prevResult), the install files.
import { describe, expect, it } from '@jest/globals';
import { closeSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync, existsSync, realpathSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../../cni/config.js';
import { CniError, parseCniArgs, parseEnv, toErrorObject } from '../../../cni/protocol.js';
import { buildResult, expectedFor, type AttachmentFacts } from '../../../cni/result.js';
import { newCallState, readCall, reportFailure, versionAnswer } from '../../../cni/call.js';
import { WRAPPER_MARK, conflist, install, uninstall, wrapperScript } from '../../../cni/install.js';
import { ConflictError, SystemError, UserError } from '../../../config/errors.js';

const ADD = parseEnv({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/proc/1/ns/net', CNI_IFNAME: 'eth0' });
const codeOf = (fn: () => unknown): number | undefined => {
  try {
    fn();
  } catch (err) {
    return (err as CniError).code;
  }
  return undefined;
};

describe('environment', () => {
  it('names what is missing or malformed (code 4)', () => {
    expect(() => parseEnv({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1' })).toThrow(/CNI_NETNS, CNI_IFNAME/);
    expect(codeOf(() => parseEnv({ CNI_COMMAND: 'DEL', CNI_IFNAME: 'eth0' }))).toBe(4);
    expect(codeOf(() => parseEnv({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/x', CNI_IFNAME: 'a/b' }))).toBe(4);
    expect(codeOf(() => parseEnv({ CNI_COMMAND: 'add' }))).toBe(4);
    expect(parseEnv({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0' }).netns).toBeUndefined();
    expect(parseEnv({ CNI_COMMAND: 'VERSION' }).command).toBe('VERSION');
  });

  it('CNI_ARGS pairs', () => {
    expect(parseCniArgs('IgnoreUnknown=1;IP=10.0.0.5;K8S_POD_NAME=a=b')).toEqual({ IgnoreUnknown: '1', IP: '10.0.0.5', K8S_POD_NAME: 'a=b' });
    expect(codeOf(() => parseCniArgs('IP'))).toBe(4);
  });
});

describe('config', () => {
  const base = { cniVersion: '1.0.0', name: 'web', type: 'tsrun' };
  const parse = (c: unknown, env = ADD) => parseConfig(JSON.stringify(c), env);

  it('an inline network is named after the CNI network; `network` names an existing one', () => {
    expect(parse({ ...base, subnet: '10.1.0.0/24', mtu: 1400, icc: false }).inline).toMatchObject({ name: 'web', subnet: '10.1.0.0/24', mtu: '1400', opts: ['icc=false'] });
    const named = parse({ ...base, network: 'lan' });
    expect(named.network).toBe('lan');
    expect(named.inline).toBeUndefined();
    expect(codeOf(() => parse({ ...base, network: 'lan', subnet: '10.1.0.0/24' }))).toBe(7);
  });

  it('versions: missing is 0.1.0 (code 1); CHECK needs 0.4.0, GC and STATUS 1.1.0', () => {
    expect(codeOf(() => parse({ name: 'web' }))).toBe(1);
    expect(codeOf(() => parse({ ...base, cniVersion: '0.2.0' }))).toBe(1);
    const env = (c: string) => parseEnv({ CNI_COMMAND: c, CNI_CONTAINERID: 'c1', CNI_NETNS: '/x', CNI_IFNAME: 'eth0' });
    expect(codeOf(() => parse({ ...base, cniVersion: '0.3.1' }, env('CHECK')))).toBe(1);
    expect(codeOf(() => parse({ ...base, cniVersion: '0.4.0' }, env('CHECK')))).toBeUndefined();
    expect(codeOf(() => parse({ ...base, cniVersion: '1.0.0' }, env('GC')))).toBe(1);
    expect(codeOf(() => parse({ ...base, cniVersion: '1.1.0' }, env('STATUS')))).toBeUndefined();
  });

  it('decoding and field errors', () => {
    expect(codeOf(() => parseConfig('{', ADD))).toBe(6);
    expect(codeOf(() => parseConfig('[]', ADD))).toBe(6);
    expect(codeOf(() => parse({ ...base, mtu: '1400' }))).toBe(7);
    expect(codeOf(() => parse({ ...base, ipam: { type: 'host-local' } }))).toBe(2);
    expect(codeOf(() => parse({ ...base, ipMasq: false }))).toBe(2);
    expect(codeOf(() => parse({ ...base, ipMasq: false, internal: true }))).toBeUndefined();
    expect(codeOf(() => parse({ ...base, name: '../x' }))).toBe(7);
  });

  it('capabilities from runtimeConfig; args and CNI_ARGS as fallbacks', () => {
    const c = parse({
      ...base,
      runtimeConfig: {
        portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }, { hostPort: 53, containerPort: 53, protocol: 'udp', hostIP: '::1' }],
        ips: ['10.1.0.5/24', 'FD00::5'],
        mac: 'AA:BB:CC:DD:EE:02',
        aliases: { web: ['db', 'primary'] },
        bandwidth: { ingressRate: 1000, ingressBurst: 100 },
      },
    });
    expect(c.ports).toEqual([{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }, { hostIp: '::1', hostPort: 53, containerPort: 53, protocol: 'udp' }]);
    expect([c.ip, c.ip6, c.mac]).toEqual(['10.1.0.5', 'fd00::5', 'aa:bb:cc:dd:ee:02']);
    expect(c.aliases).toEqual(['db', 'primary']);
    expect(c.bandwidth).toEqual({ ingressRate: 1000, ingressBurst: 100 });
    const env = parseEnv({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/x', CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1;IP=10.1.0.9;MAC=02:00:00:00:00:09' });
    expect([parse(base, env).ip, parse(base, env).mac]).toEqual(['10.1.0.9', '02:00:00:00:00:09']);
    expect(parse({ ...base, args: { cni: { ips: ['10.1.0.7'] } } }, env).ip).toBe('10.1.0.7');
    expect(codeOf(() => parse({ ...base, runtimeConfig: { ips: ['10.1.0.5', '10.1.0.6'] } }))).toBe(2);
    expect(codeOf(() => parse({ ...base, runtimeConfig: { portMappings: [{ hostPort: 80, containerPort: 80 }, { hostPort: 80, containerPort: 81 }] } }))).toBe(7);
    expect(codeOf(() => parse({ ...base, runtimeConfig: { bandwidth: { ingressRate: 1000 } } }))).toBe(7);
  });

  it('GC\'s valid attachments', () => {
    const env = parseEnv({ CNI_COMMAND: 'GC' });
    expect(parse({ ...base, cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'eth0' }] }, env).validAttachments).toEqual([{ containerID: 'a', ifname: 'eth0' }]);
    expect(codeOf(() => parse({ ...base, cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 'a' }] }, env))).toBe(7);
  });
});

describe('errors', () => {
  it('tsrun errors map to the spec\'s codes', () => {
    expect(toErrorObject(new CniError(3, 'gone', 'why'), '1.0.0')).toEqual({ cniVersion: '1.0.0', code: 3, msg: 'gone', details: 'why' });
    expect(toErrorObject(new UserError('bad mac'), '1.0.0').code).toBe(7);
    expect(toErrorObject(new ConflictError('port taken'), '1.0.0').code).toBe(101);
    expect(toErrorObject(new SystemError('create veth', new Error('EPERM')), '1.0.0')).toEqual({ cniVersion: '1.0.0', code: 100, msg: 'create veth: EPERM' });
    expect(toErrorObject(new SystemError('etcd', new Error('14 UNAVAILABLE: no connection')), '1.0.0').code).toBe(11);
    expect(toErrorObject(new TypeError('x is undefined'), '0.4.0')).toEqual({ cniVersion: '0.4.0', code: 100, msg: 'internal error: x is undefined' });
  });
});

describe('result', () => {
  const facts: AttachmentFacts = {
    ifname: 'eth0',
    mac: '02:00:00:00:00:02',
    sandbox: '/run/netns/c1',
    mtu: 1500,
    host: { name: 'tsv01234567', mac: '02:00:00:00:00:01' },
    ipv4: { address: '10.1.0.2', prefixLength: 24, gateway: '10.1.0.1' },
    ipv6: { address: 'fd00::2', prefixLength: 64, gateway: 'fd00::1' },
  };

  it('1.0.0: host end, container interface, addresses without version, default routes', () => {
    expect(buildResult('1.0.0', facts, { nameservers: ['10.1.0.1'] })).toEqual({
      cniVersion: '1.0.0',
      interfaces: [{ name: 'tsv01234567', mac: '02:00:00:00:00:01' }, { name: 'eth0', mac: '02:00:00:00:00:02', sandbox: '/run/netns/c1' }],
      ips: [{ address: '10.1.0.2/24', gateway: '10.1.0.1', interface: 1 }, { address: 'fd00::2/64', gateway: 'fd00::1', interface: 1 }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }, { dst: '::/0', gw: 'fd00::1' }],
      dns: { nameservers: ['10.1.0.1'] },
    });
  });

  it('0.4.0 adds the version of each address; 1.1.0 the MTU; macvlan has no host end', () => {
    expect(buildResult('0.4.0', facts, undefined).ips.map((i) => i.version)).toEqual(['4', '6']);
    expect(buildResult('1.1.0', facts, undefined).interfaces.map((i) => i.mtu)).toEqual([1500, 1500]);
    const mv = buildResult('1.0.0', { ...facts, host: undefined, ipv6: undefined }, undefined);
    expect(mv.interfaces).toEqual([{ name: 'eth0', mac: '02:00:00:00:00:02', sandbox: '/run/netns/c1' }]);
    expect(mv.ips[0]!.interface).toBe(0);
  });

  it('chained after another plugin: its part first, indices shifted; CHECK reads it back', () => {
    const prev = { cniVersion: '1.0.0', interfaces: [{ name: 'lo0', sandbox: '/run/netns/c1' }], ips: [{ address: '127.0.0.2/8', interface: 0 }], routes: [], dns: { search: ['x'] } };
    const r = buildResult('1.0.0', facts, undefined, prev);
    expect(r.interfaces.map((i) => i.name)).toEqual(['lo0', 'tsv01234567', 'eth0']);
    expect(r.ips.map((i) => i.interface)).toEqual([0, 2, 2]);
    expect(r.dns).toEqual({ search: ['x'] });
    expect(expectedFor(r as unknown as Record<string, unknown>, 'eth0', '/run/netns/c1')).toEqual({ mac: '02:00:00:00:00:02', addresses: ['10.1.0.2/24', 'fd00::2/64'], gateways: ['10.1.0.1', 'fd00::1'] });
    expect(expectedFor(r as unknown as Record<string, unknown>, 'eth1', '/run/netns/c1')).toBeUndefined();
  });
});

describe('install', () => {
  it('writes an executable wrapper with absolute paths and a conflist; uninstall removes only tsrun\'s', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-cni-unit-'));
    try {
      const bin = path.join(dir, 'bin');
      const conf = path.join(dir, 'net.d');
      const files = install({ binDir: bin, confDir: conf, network: 'web', node: '/usr/bin/node', entry: "/opt/ts'run/tsrun.cjs", env: { TSRUN_ROOT: '/var/lib/x y' } });
      expect(files).toEqual([path.join(bin, 'tsrun'), path.join(conf, '10-tsrun-web.conflist')]);
      const script = readFileSync(files[0]!, 'utf8');
      const lines = script.split('\n');
      expect(lines.slice(0, 3)).toEqual(['#!/usr/bin/node', `//${WRAPPER_MARK.slice(1)}`, 'process.env["TSRUN_ROOT"] = "/var/lib/x y";']);
      expect(lines.slice(4, 6)).toEqual([
        `if (typeof require === 'function') { try { require("/opt/ts'run/tsrun.cjs"); } catch (e) { gone(e, 'MODULE_NOT_FOUND', require('node:fs')); } }`,
        `else import("file:///opt/ts'run/tsrun.cjs").catch(async (e) => gone(e, 'ERR_MODULE_NOT_FOUND', await import('node:fs')));`,
      ]);
      expect(statSync(files[0]!).mode & 0o777).toBe(0o755);
      expect(JSON.parse(readFileSync(files[1]!, 'utf8'))).toEqual(conflist('web'));
      install({ binDir: bin, confDir: conf, node: '/usr/bin/node', entry: '/opt/tsrun.cjs', env: {} });
      writeFileSync(path.join(conf, '10-tsrun-other.conflist'), JSON.stringify({ plugins: [{ type: 'bridge' }] }));
      expect(uninstall({ binDir: bin, confDir: conf, network: 'web' })).toEqual([path.join(conf, '10-tsrun-web.conflist')]);
      expect(existsSync(path.join(bin, 'tsrun'))).toBe(true); // 10-tsrun-tsrun.conflist still uses it
      expect(uninstall({ binDir: bin, confDir: conf })).toEqual([path.join(conf, '10-tsrun-tsrun.conflist')]);
      writeFileSync(path.join(bin, 'tsrun'), '#!/bin/sh\necho not ours\n');
      expect(() => install({ binDir: bin, confDir: conf, node: '/usr/bin/node', entry: '/opt/tsrun.cjs', env: {} })).toThrow(/not tsrun's wrapper/);
      expect(() => wrapperScript('node', '/x', {})).toThrow(/absolute/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the wrapper', () => {
  it('is node by its shebang, setting the recorded environment and running the entry with the runtime\'s arguments', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-cni-unit-'));
    try {
      const entry = path.join(dir, "en'try.cjs");
      writeFileSync(entry, 'process.stdout.write(JSON.stringify({ root: process.env.TSRUN_ROOT, log: process.env.TSRUN_LOG, args: process.argv.slice(2), cni: process.env.CNI_COMMAND }));\n');
      const [plugin] = install({ binDir: path.join(dir, 'bin'), confDir: path.join(dir, 'net.d'), node: realpathSync(process.execPath), entry, env: { TSRUN_ROOT: '/var/lib/x y"\\', TSRUN_LOG: "/l'og\u2028" } });
      expect(readFileSync(plugin!, 'utf8').startsWith(`#!${realpathSync(process.execPath)}\n`)).toBe(true);
      const r = spawnSync(plugin!, [], { encoding: 'utf8', env: { CNI_COMMAND: 'VERSION' } });
      expect(r.status).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ root: '/var/lib/x y"\\', log: "/l'og\u2028", args: [], cni: 'VERSION' });
      // Under a package.json that makes it an ES module (no require there), the same.
      writeFileSync(path.join(dir, 'package.json'), '{"type": "module"}');
      const esm = spawnSync(plugin!, [], { encoding: 'utf8', env: { CNI_COMMAND: 'VERSION' } });
      expect(esm.stderr).toBe('');
      expect(JSON.parse(esm.stdout)).toEqual({ root: '/var/lib/x y"\\', log: "/l'og\u2028", args: [], cni: 'VERSION' });
      // uninstall knows it as tsrun's
      expect(uninstall({ binDir: path.join(dir, 'bin'), confDir: path.join(dir, 'net.d') })).toContain(plugin);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('answers a CNI error object, not a stack trace, when the entry it runs is gone', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-cni-unit-'));
    try {
      const entry = path.join(dir, 'tsrun.cjs');
      const [plugin] = install({ binDir: path.join(dir, 'bin'), confDir: path.join(dir, 'net.d'), node: realpathSync(process.execPath), entry, env: {} });
      for (const esm of [false, true]) {
        if (esm) writeFileSync(path.join(dir, 'package.json'), '{"type": "module"}');
        const r = spawnSync(plugin!, [], { encoding: 'utf8', env: { CNI_COMMAND: 'ADD' } });
        expect(r.status).toBe(1);
        expect(JSON.parse(r.stdout)).toEqual({ cniVersion: '1.0.0', code: 100, msg: expect.stringContaining(`its entry ${entry} is gone`) });
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).not.toMatch(/\n\s+at /);
      }
      // an entry that exists but fails to load is its own error, passed through as before
      writeFileSync(entry, "require('./no-such-module');\n");
      rmSync(path.join(dir, 'package.json'));
      const own = spawnSync(plugin!, [], { encoding: 'utf8', env: { CNI_COMMAND: 'ADD' } });
      expect(own.status).not.toBe(0);
      expect(own.stdout).toBe('');
      expect(own.stderr).toMatch(/no-such-module/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is a sh script when node\'s path cannot be a shebang\'s or the entry is not CommonJS', () => {
    expect(wrapperScript('/opt/my node/bin/node', '/opt/tsrun/tsrun.cjs', { TSRUN_ROOT: '/r' }).split('\n').slice(0, 4)).toEqual([
      '#!/bin/sh',
      WRAPPER_MARK,
      "export TSRUN_ROOT='/r'",
      `exec '/opt/my node/bin/node' '/opt/tsrun/tsrun.cjs' "$@"`,
    ]);
    expect(wrapperScript(`/${'n'.repeat(240)}`, '/opt/tsrun/tsrun.cjs', {}).startsWith('#!/bin/sh\n')).toBe(true);
    expect(wrapperScript('/usr/bin/node', '/opt/tsrun/dist/shim/main.js', {}).startsWith('#!/bin/sh\n')).toBe(true);
    // an old sh wrapper is still tsrun's: install replaces it, uninstall removes it
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-cni-unit-'));
    try {
      const bin = path.join(dir, 'bin');
      mkdirSync(bin);
      writeFileSync(path.join(bin, 'tsrun'), wrapperScript('/opt/my node/node', '/opt/tsrun.cjs', {}), { mode: 0o755 });
      install({ binDir: bin, confDir: path.join(dir, 'net.d'), node: '/usr/bin/node', entry: '/opt/tsrun.cjs', env: {} });
      expect(readFileSync(path.join(bin, 'tsrun'), 'utf8').startsWith('#!/usr/bin/node\n')).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('install writes through no planted symlink', () => {
  it('a symlink at the old predictable temporary names is neither followed nor left written', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-cni-unit-'));
    try {
      const bin = path.join(dir, 'bin');
      const conf = path.join(dir, 'net.d');
      mkdirSync(bin);
      mkdirSync(conf);
      const victim = path.join(dir, 'victim');
      writeFileSync(victim, 'untouched\n');
      // What someone who can write the directories plants: the names the old writer used.
      symlinkSync(victim, path.join(bin, `tsrun.tmp-${process.pid}`));
      symlinkSync(victim, path.join(conf, `10-tsrun-web.conflist.tmp-${process.pid}`));
      const [plugin, list] = install({ binDir: bin, confDir: conf, network: 'web', node: '/usr/bin/node', entry: '/opt/tsrun.cjs', env: {} });
      expect(readFileSync(victim, 'utf8')).toBe('untouched\n');
      expect(lstatSync(plugin!).isFile()).toBe(true);
      expect(lstatSync(list!).isFile()).toBe(true);
      expect(readFileSync(plugin!, 'utf8')).toContain(WRAPPER_MARK.slice(2));
      // nothing else left beside them but the planted links
      expect(readdirSync(bin).sort()).toEqual(['tsrun', `tsrun.tmp-${process.pid}`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('reading a call (cni/call.ts, both doors)', () => {
  const withStdin = <T>(text: string, fn: (fd: number) => T): T => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-cni-call-'));
    const file = path.join(dir, 'conf.json');
    writeFileSync(file, text);
    const fd = openSync(file, 'r');
    try {
      return fn(fd);
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('learns the command and the config\'s version; an unsupported or missing version keeps the newest', () => {
    const state = newCallState();
    const call = withStdin('{"cniVersion":"0.4.0","name":"n"}', (fd) => readCall({ CNI_COMMAND: 'VERSION' }, fd, state));
    expect(call.env.command).toBe('VERSION');
    expect(call.input).toBe('{"cniVersion":"0.4.0","name":"n"}');
    expect(state.version).toBe('0.4.0');
    expect(versionAnswer(state.version)).toBe('{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n');
    for (const text of ['{"cniVersion":"9.9.9"}', 'not json', '']) {
      const s = newCallState();
      withStdin(text, (fd) => readCall({ CNI_COMMAND: 'VERSION' }, fd, s));
      expect(s.version).toBe('1.1.0');
    }
  });

  it('a failure answers with the error object on stdout and one line on stderr, naming the command once known', () => {
    const out: string[] = [];
    const err: string[] = [];
    const state = newCallState();
    expect(() => readCall({ CNI_COMMAND: 'NOPE' }, 0, state)).toThrow(CniError);
    reportFailure(new CniError(4, 'invalid environment: x'), state, (t) => out.push(t), (t) => err.push(t));
    expect(out).toEqual(['{"cniVersion":"1.1.0","code":4,"msg":"invalid environment: x"}\n']);
    expect(err).toEqual(['tsrun: CNI call: invalid environment: x\n']);

    const known = newCallState();
    withStdin('{"cniVersion":"1.0.0"}', (fd) => readCall({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0' }, fd, known));
    const obj = reportFailure(new ConflictError('in use'), known, (t) => out.push(t), (t) => err.push(t));
    expect(obj).toEqual({ cniVersion: '1.0.0', code: 101, msg: 'in use' });
    expect(err[1]).toBe('tsrun: CNI DEL: in use\n');
  });

  it('a reader gone from stdout (EPIPE) still gets the stderr line, and nothing is thrown', () => {
    const err: string[] = [];
    const epipe = () => {
      throw Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
    };
    const obj = reportFailure(new ConflictError('in use'), newCallState(), epipe, (t) => err.push(t));
    expect(obj.code).toBe(101);
    expect(err).toEqual(['tsrun: CNI call: in use\n']);
    expect(() => reportFailure(new ConflictError('in use'), newCallState(), epipe, epipe)).not.toThrow();
  });

  it('a directory on stdin is an I/O failure (code 5)', () => {
    const fd = openSync(os.tmpdir(), 'r');
    try {
      expect(codeOf(() => readCall({ CNI_COMMAND: 'VERSION' }, fd, newCallState()))).toBe(5);
    } finally {
      closeSync(fd);
    }
  });
});
