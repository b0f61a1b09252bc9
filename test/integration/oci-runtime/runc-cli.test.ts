// tsrun-runc driven directly, as an engine would, in a sandbox host: the paths the engines'
// tests do not reach (run, a refused delete, the json log of a failure, --version).
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync, renameSync, statSync } from 'node:fs';
import path from 'node:path';
import { makeBundle, removeBundle, uniqueId } from '../../harness/sandbox.js';
import { engineWorld, eth0Address, have, type EngineWorld } from './helpers.js';

const run = have('runc') ? describe : describe.skip;
let ew: EngineWorld;
const bundles: string[] = [];

function bundle(args: string[], annotations: Record<string, string>): string {
  const dir = makeBundle((spec) => {
    spec.process.args = args;
    spec.process.terminal = false;
    spec.annotations = annotations;
  });
  bundles.push(dir);
  return dir;
}

function rt(args: string[]) {
  return ew.world.host.ns.exec(ew.runtime, ['--root', path.join(ew.work, 'runc'), ...args], { env: { PATH: process.env.PATH } });
}

run('tsrun-runc on its own', () => {
  beforeAll(async () => {
    ew = await engineWorld('ocicli', '10.130.0.0/24');
  }, 60_000);
  afterAll(async () => {
    for (const b of bundles) removeBundle(b);
    await ew?.destroy(() => {
      for (const id of rt(['list', '-q']).stdout.split('\n').filter(Boolean)) rt(['delete', '--force', id]);
    });
  }, 60_000);
  afterEach(() => {
    expect(ew.world.leaks()).toEqual([]);
  });

  it('--version: runc\'s three-line shape', () => {
    const r = rt(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^tsrun-runc version \S+\ncommit: \S+\nspec: \d+\.\d+\.\d+\S*\n$/);
  });

  it('run in the foreground with an annotation: wired through the hooks of a private bundle copy, output and status passed on, nothing left', () => {
    const b = bundle(['sh', '-c', 'ip -o -4 addr show eth0; exit 4'], { 'io.tsrun.network': 'web' });
    const before = readFileSync(path.join(b, 'config.json'), 'utf8');
    const r = rt(['run', '--bundle', b, uniqueId('run')]);
    expect(r.status).toBe(4);
    expect(eth0Address(r.stdout)).toMatch(/^10\.130\.0\.\d+\/24$/);
    expect(readFileSync(path.join(b, 'config.json'), 'utf8')).toBe(before); // the engine's bundle untouched
  });

  it('run: the private bundle copy, which carries the process environment (secrets), is private (directories 0700, config.json 0600)', () => {
    const id = uniqueId('priv');
    const b = makeBundle((spec) => {
      spec.process.args = ['sleep', '60'];
      spec.process.terminal = false;
      spec.process.env = [...spec.process.env, 'OCI_SECRET=hunter2'];
      spec.annotations = { 'io.tsrun.network': 'web' };
    });
    bundles.push(b);
    const detached = ew.world.host.ns.exec('sh', ['-c', `exec "$0" --root "$1" run --detach --bundle "$2" "$3" </dev/null >/dev/null 2>&1`, ew.runtime, path.join(ew.work, 'runc'), b, id]);
    expect(detached.status).toBe(0);
    try {
      const runDir = path.join(ew.world.host.root, 'run');
      const copy = path.join(runDir, 'runc-bundles', `by-root${path.join(ew.work, 'runc')}`, id);
      expect(readFileSync(path.join(copy, 'config.json'), 'utf8')).toContain('OCI_SECRET=hunter2');
      const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
      expect({ run: mode(runDir), bundles: mode(path.dirname(copy)), copy: mode(copy), config: mode(path.join(copy, 'config.json')), markers: mode(path.join(runDir, 'runc-net')) })
        .toEqual({ run: '700', bundles: '700', copy: '700', config: '600', markers: '700' });
    } finally {
      expect(rt(['delete', '--force', id]).status).toBe(0);
    }
    expect(existsSync(path.join(ew.world.host.root, 'run', 'runc-bundles', `by-root${path.join(ew.work, 'runc')}`, id))).toBe(false);
  });

  it('tsrun keys in the process environment (an image\'s ENV) are ignored unless the wrapper was installed with --env-keys', () => {
    // An image can carry ENV io.tsrun.network=… io.tsrun.ports=…: run as `--network none` by a
    // user who gave no tsrun key, it must not choose a network or publish a port on the host.
    const env = ['io.tsrun.network=web', 'io.tsrun.ports=8090:80'];
    const mk = () => makeBundle((spec) => {
      spec.process.args = ['sh', '-c', 'ip -o link | grep -c "eth0" ; exit 0'];
      spec.process.terminal = false;
      spec.process.env = [...spec.process.env, ...env];
    });
    const b = mk();
    bundles.push(b);
    const id = uniqueId('envimg');
    const r = rt(['run', '--bundle', b, id]);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('0'); // lo only
    expect(existsSync(path.join(ew.world.host.root, 'lib', 'store', 'endpoints', id))).toBe(false);
    expect(ew.logOf(id)).toEqual([]);
    // Opted in (Docker before API 1.43, which passes no annotations): the keys wire it.
    const optIn = path.join(ew.work, 'bin', 'tsrun-runc-env');
    ew.world.tsrunOk(['oci-runtime', 'install', '--path', optIn, '--env-keys']);
    const b2 = mk();
    bundles.push(b2);
    const r2 = ew.world.host.ns.exec(optIn, ['--root', path.join(ew.work, 'runc'), 'run', '--bundle', b2, uniqueId('envopt')], { env: { PATH: process.env.PATH } });
    expect(r2.status).toBe(0);
    expect(r2.stdout.trim()).toBe('1');
  });

  it('delete without --force of a running container is refused by runc and its network stays; --force tears it down', () => {
    const id = uniqueId('del');
    const b = bundle(['sleep', '60'], { 'io.tsrun.network': 'web' });
    // the container's stdio is runc's: /dev/null, or it would hold our pipes for its lifetime
    const created = ew.world.host.ns.exec('sh', ['-c', `exec "$0" --root "$1" create --bundle "$2" "$3" </dev/null >/dev/null 2>&1`, ew.runtime, path.join(ew.work, 'runc'), b, id]);
    expect(created.status).toBe(0);
    expect(rt(['start', id]).status).toBe(0);
    const refused = rt(['delete', id]);
    expect(refused.status).not.toBe(0);
    expect(existsSync(path.join(ew.world.host.root, 'lib', 'store', 'endpoints', id, 'web'))).toBe(true);
    expect(rt(['delete', '--force', id]).status).toBe(0);
    expect(existsSync(path.join(ew.world.host.root, 'lib', 'store', 'endpoints', id))).toBe(false);
    // a second delete answers as runc does for a container that does not exist
    const again = rt(['delete', '--force', id]);
    const runcSays = ew.world.host.ns.exec('runc', ['--root', path.join(ew.work, 'runc'), 'delete', '--force', id]);
    expect([again.status, again.stderr]).toEqual([runcSays.status, runcSays.stderr]);
  });

  it('two engines (two runc roots) with one container id: one\'s delete --force never touches the other\'s container or network, also with a marker of the layout before', () => {
    // Markers were keyed by id alone: engine B's `delete --force X` of its own plain container
    // found engine A's marker, SIGKILLed A's container's init and tore A's network down.
    const id = uniqueId('tworoots');
    const rootA = path.join(ew.work, 'runc');
    const rootB = path.join(ew.work, 'runc-b');
    const wired = bundle(['sleep', '60'], { 'io.tsrun.network': 'web' });
    const plain = bundle(['sleep', '60'], {});
    const create = (root: string, b: string) =>
      ew.world.host.ns.exec('sh', ['-c', `exec "$0" --root "$1" create --bundle "$2" "$3" </dev/null >/dev/null 2>&1`, ew.runtime, root, b, id]).status;
    const on = (root: string, args: string[]) => ew.world.host.ns.exec(ew.runtime, ['--root', root, ...args], { env: { PATH: process.env.PATH } });
    const status = (root: string) => {
      const r = ew.world.host.ns.exec('runc', ['--root', root, 'state', id]);
      return r.status === 0 ? (JSON.parse(r.stdout) as { status: string }).status : 'gone';
    };
    const record = path.join(ew.world.host.root, 'lib', 'store', 'endpoints', id, 'web');
    const runNet = path.join(ew.world.host.root, 'run', 'runc-net');
    const legacy = path.join(runNet, `${id}.json`);
    try {
      expect(create(rootA, wired)).toBe(0);
      expect(on(rootA, ['start', id]).status).toBe(0);
      expect(create(rootB, plain)).toBe(0);
      expect(on(rootB, ['start', id]).status).toBe(0);
      expect(existsSync(record)).toBe(true);

      expect(on(rootB, ['delete', '--force', id]).status).toBe(0);
      expect(status(rootB)).toBe('gone');
      expect(status(rootA)).toBe('running');
      expect(existsSync(record)).toBe(true);

      // The same with A's marker where the tsrun-runc before this one wrote it (an upgrade with
      // A's container running): B leaves it alone, A's delete adopts it and tears down.
      const keyed = path.join(runNet, `by-root${rootA}`, `${id}.json`);
      renameSync(keyed, legacy);
      expect(create(rootB, plain)).toBe(0);
      expect(on(rootB, ['delete', '--force', id]).status).toBe(0);
      expect(status(rootA)).toBe('running');
      expect(existsSync(record)).toBe(true);
      expect(existsSync(legacy)).toBe(true);
      expect(on(rootA, ['delete', '--force', id]).status).toBe(0);
      expect(status(rootA)).toBe('gone');
      expect(existsSync(path.join(ew.world.host.root, 'lib', 'store', 'endpoints', id))).toBe(false);
      expect([existsSync(legacy), existsSync(keyed)]).toEqual([false, false]);
    } finally {
      ew.world.host.ns.exec('runc', ['--root', rootB, 'delete', '--force', id]);
      on(rootA, ['delete', '--force', id]);
    }
  });

  it('a failure is one JSON line in --log (runc\'s form) and the message on stderr; no container is left', () => {
    const log = path.join(ew.work, 'engine-log.json');
    const b = bundle(['true'], { 'io.tsrun.network': 'web', 'io.tsrun.ports': '99999:80' });
    const r = rt(['--log', log, '--log-format', 'json', 'create', '--bundle', b, uniqueId('bad')]);
    expect(r.status).toBe(1);
    const line = JSON.parse(readFileSync(log, 'utf8').trim()) as { level: string; msg: string; time: string };
    expect(line.level).toBe('error');
    expect(line.msg).toMatch(/^tsrun-runc create: annotation io\.tsrun\.ports="99999:80": /);
    expect(r.stderr).toBe(`${line.msg}\n`);
    expect(rt(['list', '-q']).stdout.trim()).toBe('');
  });
});
