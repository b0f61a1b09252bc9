import { afterAll, describe, expect, it } from '@jest/globals';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  addHooksToBundle, hookCommand, hookEnv, hooksDFile, hookRunner, installHooksDir, isTsrunHookEntry, parseAnnotationConditions, parseStages,
  uninstallHooksDir, whenClause, withTsrunHooks, type HookCommand,
} from '../../../hook/register.js';

const settings = { root: '/var/lib/t1', store: 'local', logFile: '/var/lib/t1/log/tsrun.log', logLevel: 'info', nft: '/usr/sbin/nft' };
const cmd: HookCommand = hookCommand('/usr/bin/node', '/opt/tsrun/dist/bundle/tsrun.cjs', settings, 30);

describe('what a registration records', () => {
  it('the settings in force, as environment lines', () => {
    expect(hookEnv(settings)).toEqual([
      'TSRUN_ROOT=/var/lib/t1',
      'TSRUN_STORE=local',
      'TSRUN_LOG=/var/lib/t1/log/tsrun.log',
      'TSRUN_LOG_LEVEL=info',
      'TSRUN_NFT=/usr/sbin/nft',
    ]);
    expect(hookEnv({ ...settings, root: undefined })[0]).toBe('TSRUN_STORE=local');
  });

  it('absolute paths only', () => {
    expect(() => hookCommand('node', '/x/tsrun.cjs', settings)).toThrow(/absolute paths: node is "node"/);
    expect(() => hookCommand('/usr/bin/node', 'dist/tsrun.cjs', settings)).toThrow(/entry point/);
    expect(() => hookCommand('/usr/bin/node', '/x/tsrun.cjs', { ...settings, nft: 'nft' })).toThrow(/nft is "nft"/);
    expect(() => hookCommand('/usr/bin/node', '/x/tsrun.cjs', settings, 0)).toThrow(/invalid --timeout 0/);
  });

  it('a hooks.d file: version 1.0.0, the stage in args, when, stages', () => {
    expect(hooksDFile(cmd, 'poststop', { always: true })).toEqual({
      version: '1.0.0',
      hook: {
        path: '/usr/bin/node',
        args: ['/usr/bin/node', '/opt/tsrun/dist/bundle/tsrun.cjs', 'hook', 'poststop'],
        env: hookEnv(settings),
        timeout: 30,
      },
      when: { always: true },
      stages: ['poststop'],
    });
  });

  it('when: every container, or those whose annotations all match (keys escaped and anchored)', () => {
    expect(whenClause([])).toEqual({ always: true });
    expect(whenClause([['io.tsrun.network', '.+'], ['team', '^(a|b)$']])).toEqual({ annotations: { '^io\\.tsrun\\.network$': '.+', '^team$': '^(a|b)$' } });
    expect(new RegExp(Object.keys((whenClause([['io.tsrun.network', '.']]) as { annotations: object }).annotations)[0]!).test('ioXtsrun.network')).toBe(false);
  });

  it('parses --annotation and --stages', () => {
    expect(parseAnnotationConditions(['io.tsrun.network=a=b'])).toEqual([['io.tsrun.network', 'a=b']]);
    expect(() => parseAnnotationConditions(['novalue'])).toThrow(/expected KEY=REGEX/);
    expect(() => parseAnnotationConditions(['=x'])).toThrow(/expected KEY=REGEX/);
    expect(() => parseAnnotationConditions(['k=('])).toThrow(/invalid --annotation "k=\(": Invalid regular expression/);
    expect(parseStages('createRuntime,poststop')).toEqual(['createRuntime', 'poststop']);
    expect(parseStages(' prestart , poststop,poststop')).toEqual(['prestart', 'poststop']);
    expect(parseStages('poststart')).toEqual(['poststart']);
    expect(() => parseStages('createRuntime')).toThrow(/add poststop/);
    expect(() => parseStages('startContainer,poststop')).toThrow(/startContainer hooks run inside the container/);
    expect(() => parseStages('boot')).toThrow(/unknown stage "boot"/);
    expect(() => parseStages(',')).toThrow(/--stages is empty/);
  });
});

describe('hooks.d install and uninstall', () => {
  const base = mkdtempSync(path.join(os.tmpdir(), 'tsrun-hooksd-'));
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('writes one file per stage, replaces them when run again, and removes only its own', () => {
    const dir = path.join(base, 'a', 'hooks.d'); // created when missing
    const first = installHooksDir(dir, { name: 'tsrun', stages: ['createRuntime', 'poststop'], cmd, conditions: [['io.tsrun.network', '.+']] });
    expect(first).toEqual([path.join(dir, 'tsrun-createRuntime.json'), path.join(dir, 'tsrun-poststop.json')]);
    const created = JSON.parse(readFileSync(first[0]!, 'utf8'));
    expect(created.hook.args).toEqual(['/usr/bin/node', '/opt/tsrun/dist/bundle/tsrun.cjs', 'hook', 'createRuntime']);
    expect(created.when).toEqual({ annotations: { '^io\\.tsrun\\.network$': '.+' } });
    expect(statSync(first[0]!).mode & 0o777).toBe(0o644);

    writeFileSync(path.join(dir, 'other.json'), '{"version":"1.0.0"}');
    writeFileSync(path.join(dir, 'tsrun-poststart.json'), '{"hook":{"args":["x","y","not-ours"]}}');
    // Again, with prestart instead of createRuntime: the createRuntime file goes.
    installHooksDir(dir, { name: 'tsrun', stages: ['prestart', 'poststop'], cmd, conditions: [] });
    expect(readdirSync(dir).sort()).toEqual(['other.json', 'tsrun-poststart.json', 'tsrun-poststop.json', 'tsrun-prestart.json']);
    expect(readdirSync(dir).some((f) => f.endsWith('.tmp'))).toBe(false);

    expect(uninstallHooksDir(dir, 'tsrun').sort()).toEqual([path.join(dir, 'tsrun-poststop.json'), path.join(dir, 'tsrun-prestart.json')]);
    expect(readdirSync(dir).sort()).toEqual(['other.json', 'tsrun-poststart.json']);
    expect(uninstallHooksDir(dir, 'tsrun')).toEqual([]);
    expect(uninstallHooksDir(path.join(base, 'nowhere'), 'tsrun')).toEqual([]);
  });

  it('names are checked before they become file names', () => {
    expect(() => installHooksDir(base, { name: '../x', stages: ['poststop'], cmd, conditions: [] })).toThrow(/invalid --name/);
    expect(() => uninstallHooksDir(base, 'a/b')).toThrow(/invalid --name/);
  });
});

describe('spec add-hooks', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-addhooks-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const userHook = { path: '/usr/local/bin/audit', args: ['audit', 'start'] };
  const spec = {
    ociVersion: '1.0.2',
    process: { args: ['sh'], cwd: '/' },
    root: { path: 'rootfs' },
    hooks: { createRuntime: [userHook], poststop: [{ path: '/bin/true' }] },
    custom: { kept: true },
  };

  it('a hook registered through the sh launcher (as tsrun did before) is still written and recognised as tsrun\'s', () => {
    const launcher = hookCommand('/bin/sh', '/opt/tsrun/dist/bundle/tsrun', settings, 30);
    const out = withTsrunHooks(spec, launcher, 'createRuntime') as typeof spec & { hooks: Record<string, unknown[]> };
    expect(out.hooks.createRuntime![1]).toEqual({ path: '/bin/sh', args: ['/bin/sh', '/opt/tsrun/dist/bundle/tsrun', 'hook', 'createRuntime'], env: launcher.env, timeout: 30 });
    expect(isTsrunHookEntry(out.hooks.createRuntime![1], launcher.entry)).toBe(true);
  });

  it('registers hooks as node with tsrun.cjs, never through the launcher, and replaces a launcher registration', () => {
    const bundleDir = path.join(dir, 'bundle-runner');
    mkdirSync(bundleDir);
    writeFileSync(path.join(bundleDir, 'tsrun'), '#!/bin/sh\n');
    expect(hookRunner('/usr/bin/node', path.join(bundleDir, 'tsrun.cjs'))).toEqual({ node: '/usr/bin/node', entry: path.join(bundleDir, 'tsrun.cjs') });
    // The launcher named as the entry with no tsrun.cjs beside it stays as it is.
    expect(hookRunner('/usr/bin/node', path.join(bundleDir, 'tsrun'))).toEqual({ node: '/usr/bin/node', entry: path.join(bundleDir, 'tsrun') });
    writeFileSync(path.join(bundleDir, 'tsrun.cjs'), '');
    expect(hookRunner('/usr/bin/node', path.join(bundleDir, 'tsrun'))).toEqual({ node: '/usr/bin/node', entry: path.join(bundleDir, 'tsrun.cjs') });
    const old = withTsrunHooks(spec, hookCommand('/bin/sh', '/opt/tsrun/dist/bundle/tsrun', settings, 30), 'createRuntime');
    const now = withTsrunHooks(old, cmd, 'createRuntime') as { hooks: Record<string, unknown[]> };
    expect(now.hooks.createRuntime).toEqual([userHook, { path: '/usr/bin/node', args: ['/usr/bin/node', cmd.entry, 'hook', 'createRuntime'], env: cmd.env, timeout: 30 }]);
    expect(now.hooks.poststop).toHaveLength(2);
  });

  it('appends to the setup stage and poststop, keeping the hooks already there', () => {
    const out = withTsrunHooks(spec, cmd, 'createRuntime') as typeof spec & { hooks: Record<string, unknown[]> };
    expect(out.hooks.createRuntime).toEqual([userHook, { path: '/usr/bin/node', args: ['/usr/bin/node', cmd.entry, 'hook', 'createRuntime'], env: cmd.env, timeout: 30 }]);
    expect(out.hooks.poststop).toHaveLength(2);
    expect(out.hooks.poststop![0]).toEqual({ path: '/bin/true' });
    expect(isTsrunHookEntry(out.hooks.poststop![1], cmd.entry)).toBe(true);
    expect(out.custom).toEqual({ kept: true });
    expect(spec.hooks.createRuntime).toHaveLength(1); // input untouched
  });

  it('adding again replaces tsrun\'s entries; switching to prestart moves them', () => {
    const twice = withTsrunHooks(withTsrunHooks(spec, cmd, 'createRuntime'), cmd, 'createRuntime') as { hooks: Record<string, unknown[]> };
    expect(twice.hooks.createRuntime).toHaveLength(2);
    expect(twice.hooks.poststop).toHaveLength(2);
    const moved = withTsrunHooks(twice, cmd, 'prestart') as { hooks: Record<string, unknown[]> };
    expect(moved.hooks.createRuntime).toEqual([userHook]);
    expect(moved.hooks.prestart).toHaveLength(1);
    expect(() => withTsrunHooks(spec, cmd, 'poststart')).toThrow(/use createRuntime or prestart/);
  });

  it('edits config.json in place, keeping its mode and unknown fields', () => {
    const b = path.join(dir, 'b1');
    mkdirSync(b);
    const file = path.join(b, 'config.json');
    writeFileSync(file, JSON.stringify(spec));
    chmodSync(file, 0o600);
    expect(addHooksToBundle(b, cmd, 'createRuntime')).toBe(file);
    const out = JSON.parse(readFileSync(file, 'utf8'));
    expect(out.custom).toEqual({ kept: true });
    expect(out.hooks.createRuntime).toHaveLength(2);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(b)).toEqual(['config.json']);
  });

  it('refuses a bundle it cannot read, naming the field', () => {
    expect(() => addHooksToBundle(path.join(dir, 'none'), cmd, 'createRuntime')).toThrow(/config\.json not found/);
    const b = path.join(dir, 'b2');
    mkdirSync(b);
    writeFileSync(path.join(b, 'config.json'), JSON.stringify({ ...spec, process: { args: 'sh', cwd: '/' } }));
    expect(() => addHooksToBundle(b, cmd, 'createRuntime')).toThrow(/config\.json: process\.args: must be Array/);
    writeFileSync(path.join(b, 'config.json'), '{');
    expect(() => addHooksToBundle(b, cmd, 'createRuntime')).toThrow(/config\.json is not valid JSON/);
    expect(existsSync(path.join(b, '.config.json.tmp'))).toBe(false);
  });
});
