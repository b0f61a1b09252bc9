// An image choosing its own network and publishing its own ports through podman: podman 4 copies
// an OCI image's manifest annotations into the container's spec (the user's `--annotation` wins
// on the same key, nothing marks which is which), so `podman run IMAGE` of an image whose
// manifest says io.tsrun.network=web, io.tsrun.ports=8087:80 was wired into `web` with 8087
// published on every host address, under tsrun-runc and under the hook alike. tsrun now finds
// the image in podman's storage (hook/image-annotations.ts) and does not honour its keys; the
// user's own --annotation still works. podman runs in the sandbox host's namespace with private
// storage, run root and containers.conf, as in oci-runtime/podman.test.ts.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { HOST_UPLINK_IP, engineWorld, eth0Address, have, ociImageArchive, podmanPrivateFlags, type EngineWorld } from '../oci-runtime/helpers.js';

const ok = have('podman') && have('runc') && have('conmon');
const run = ok ? describe : describe.skip;
if (!ok) console.warn('image annotation tests skipped: podman, conmon or runc is not installed');

let ew: EngineWorld;
let hooksDir: string;
let archive: string;
const IMAGE = 'localhost/tsrun-test/hostile:latest';

/** podman with the test's private storage; `store`: another graph root (and run root) of the work
 * directory, named by a storage.conf of its own (CONTAINERS_STORAGE_CONF, no --root: podman 4.3
 * reads no storage options from the file when --root is given) with `conf` in [storage.options];
 * `opts`: more --storage-opt flags. */
function podman(runtime: 'tsrun-runc' | 'runc', args: string[], o: { store?: string; conf?: string; opts?: string[] } = {}) {
  const w = ew.work;
  let storageConf: string | undefined;
  let flags = podmanPrivateFlags(w, runtime);
  if (o.store !== undefined) {
    storageConf = path.join(w, `${o.store}.conf`);
    writeFileSync(storageConf, `[storage]\ndriver = "${driver}"\ngraphroot = "${path.join(w, o.store)}"\nrunroot = "${path.join(w, `${o.store}-run`)}"\n[storage.options]\n${o.conf ?? ''}\n`);
    flags = flags.filter((f, i) => !['--root', '--runroot'].includes(f) && !['--root', '--runroot'].includes(flags[i - 1]!));
    flags.push(...(o.opts ?? []).flatMap((x) => ['--storage-opt', x]));
  }
  flags.push(...(runtime === 'runc' ? ['--hooks-dir', hooksDir] : []));
  return ew.world.host.ns.exec('podman', [...flags, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME ?? '/root', CONTAINERS_CONF: path.join(w, 'containers.conf'), ...(storageConf ? { CONTAINERS_STORAGE_CONF: storageConf } : {}) },
    timeoutMs: 120_000,
  });
}
let driver = 'overlay';

function runOpts(name: string, annotations: Record<string, string>): string[] {
  return [
    '--name', name, '--cgroup-parent', ew.cgroupParent, '--network', 'none',
    '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024',
    ...Object.entries(annotations).flatMap(([k, v]) => ['--annotation', `${k}=${v}`]),
  ];
}

const idOf = (runtime: 'tsrun-runc' | 'runc', name: string) => podman(runtime, ['inspect', '--format', '{{.Id}}', name]).stdout.trim();
const published = (port: number) => ew.world.outside.httpGet(`http://${HOST_UPLINK_IP}:${port}/`, 1500);

run('an image\'s own io.tsrun.* annotations (podman copies them into the container\'s)', () => {
  beforeAll(async () => {
    ew = await engineWorld('imgann', '10.128.0.0/24');
    ew.world.tsrunOk(['network', 'create', 'mine', '--subnet', '10.129.0.0/24']);
    const registered = path.join(ew.work, 'bin', 'tsrun-runc-private-root');
    writeFileSync(registered, `#!/bin/sh\nexec '${ew.runtime}' --root '${path.join(ew.work, 'runc')}' "$@"\n`, { mode: 0o755 });
    writeFileSync(
      path.join(ew.work, 'containers.conf'),
      ['[engine]', 'runtime_supports_json = ["crun", "runc", "tsrun-runc"]', '[engine.runtimes]', `tsrun-runc = ["${registered}"]`, ''].join('\n'),
    );
    hooksDir = path.join(ew.work, 'hooks.d');
    mkdirSync(hooksDir);
    ew.world.tsrunOk(['hook', 'install', '--hooks-dir', hooksDir]);
    // The image: busybox serving a page, its manifest asking for web and a published port, its
    // ENV carrying the same keys (what a `--env-keys` wrapper would read).
    const dir = path.join(ew.work, 'image');
    mkdirSync(dir);
    archive = ociImageArchive(ew.rootfs, dir, IMAGE, ['httpd', '-f', '-p', '80', '-h', '/var/www'], {
      annotations: { 'io.tsrun.network': 'web', 'io.tsrun.ports': '8087:80' },
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'io.tsrun.network=web', 'io.tsrun.ports=8087:80'],
    });
    const pulled = podman('tsrun-runc', ['pull', '--quiet', `oci-archive:${archive}:latest`]);
    expect(pulled.stderr).toBe('');
    expect(pulled.status).toBe(0);
    expect(podman('tsrun-runc', ['tag', pulled.stdout.trim(), IMAGE]).status).toBe(0);
    // What podman copies: the manifest's annotations reach the container's spec unmarked.
    const created = podman('tsrun-runc', ['create', '--name', 'probe', '--network', 'none', IMAGE]);
    expect(created.status).toBe(0);
    const ann = JSON.parse(podman('tsrun-runc', ['container', 'inspect', '--format', '{{json .Config.Annotations}}', 'probe']).stdout) as Record<string, string>;
    expect(ann['io.tsrun.network']).toBe('web');
    expect(ann['io.tsrun.ports']).toBe('8087:80');
    expect(podman('tsrun-runc', ['rm', 'probe']).status).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await ew?.destroy(() => {
      podman('tsrun-runc', ['rm', '--all', '--force', '--time', '0']);
      for (const store of ['storage2', 'storage3']) if (existsSync(path.join(ew.work, store))) podman('tsrun-runc', ['rm', '--all', '--force', '--time', '0'], { store });
    });
  }, 60_000);

  afterEach(() => {
    expect(ew.world.leaks()).toEqual([]);
  });

  it('tsrun-runc: the image\'s network and port are not honoured (no eth0, nothing published)', () => {
    const r = podman('tsrun-runc', ['run', '-d', ...runOpts('img-only', {}), IMAGE]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const id = idOf('tsrun-runc', 'img-only');
    const links = podman('tsrun-runc', ['exec', 'img-only', 'ip', '-o', 'link']);
    expect(links.stdout.trim().split('\n')).toHaveLength(1); // lo only
    expect(published(8087)).toBeUndefined();
    const warned = ew.logOf(id).find((l) => l.msg === 'annotations set by the container\'s image are not honoured');
    expect(warned?.fromImage).toEqual(['io.tsrun.network', 'io.tsrun.ports']);
    expect(ew.logOf(id).map((l) => l.msg)).not.toContain('tsrun-runc create: wired');
    expect(podman('tsrun-runc', ['rm', '--force', '--time', '0', 'img-only']).status).toBe(0);
  });

  it('tsrun-runc: the user\'s own --annotation still wires and publishes', async () => {
    const r = podman('tsrun-runc', ['run', '-d', ...runOpts('img-user', { 'io.tsrun.network': 'mine', 'io.tsrun.ports': '8088:80' }), IMAGE]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const exec = podman('tsrun-runc', ['exec', 'img-user', 'ip', '-o', '-4', 'addr', 'show', 'eth0']);
    expect(eth0Address(exec.stdout)).toMatch(/^10\.129\.0\.\d+\/24$/);
    await ew.world.waitHttp(eth0Address(exec.stdout)!.split('/')[0]!);
    expect(published(8088)).toBe(`${ew.page}\n`);
    expect(published(8087)).toBeUndefined();
    expect(podman('tsrun-runc', ['stop', '--time', '1', 'img-user']).status).toBe(0);
    expect(podman('tsrun-runc', ['rm', 'img-user']).status).toBe(0);
  });

  it('the hook: a container whose only tsrun annotations are its image\'s is left alone', () => {
    const r = podman('runc', ['run', '--rm', ...runOpts('img-hook', {}), IMAGE, 'ip', '-o', 'link']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1); // lo only
    const user = podman('runc', ['run', '--rm', ...runOpts('img-hook-user', { 'io.tsrun.network': 'mine' }), IMAGE, 'ip', '-o', '-4', 'addr', 'show', 'eth0']);
    expect(user.status).toBe(0);
    expect(eth0Address(user.stdout)).toMatch(/^10\.129\.0\.\d+\/24$/);
  });

  it("an image in an additional (read-only) image store: its keys are not honoured (found there, or ignored: fail closed)", () => {
    // The image pulled into a store of its own, which another podman storage (empty) names as an
    // additional image store: its containers' layers are there, its image in the other. Before,
    // the image was looked for in the container's storage only, not found, and its io.tsrun.*
    // keys honoured (eth0 in web, 8087 published).
    driver = podman('tsrun-runc', ['info', '--format', '{{.Store.GraphDriverName}}']).stdout.trim();
    const pulled = podman('tsrun-runc', ['pull', '--quiet', `oci-archive:${archive}:latest`], { store: 'imagestore' });
    expect(pulled.status).toBe(0);
    expect(podman('tsrun-runc', ['tag', pulled.stdout.trim(), IMAGE], { store: 'imagestore' }).status).toBe(0);
    const imagestore = path.join(ew.work, 'imagestore');
    // In storage.conf (which tsrun reads), and only on podman's command line (which it cannot see).
    const inConf = { store: 'storage2', conf: `additionalimagestores = ["${imagestore}"]` };
    const onCli = { store: 'storage3', opts: [`${driver}.imagestore=${imagestore}`] };
    for (const where of [inConf, onCli]) {
      expect(podman('tsrun-runc', ['image', 'exists', IMAGE], where).status).toBe(0);
      for (const runtime of ['tsrun-runc', 'runc'] as const) {
        const r = podman(runtime, ['run', '--rm', ...runOpts(`img-add-${runtime}`, {}), IMAGE, 'ip', '-o', 'link'], where);
        expect({ store: where.store, runtime, status: r.status, links: r.stdout.trim().split('\n').length }).toEqual({ store: where.store, runtime, status: 0, links: 1 }); // lo only
        expect(published(8087)).toBeUndefined();
      }
    }
    // Under podman the additional stores tsrun can read are those of /etc/containers/storage.conf
    // (or /usr/share/...): neither the runtime nor the hook gets podman's CONTAINERS_STORAGE_CONF
    // (seen: not found with it set for podman), and a store given on podman's command line is
    // seen by nobody. Not found, every tsrun key is ignored, the user's too, with a warning that
    // says why. (Found in a configured store: test/unit/hook/image-annotations.test.ts.)
    for (const where of [inConf, onCli]) {
      const name = `img-add-blind-${where.store}`;
      const blind = podman('tsrun-runc', ['run', '-d', ...runOpts(name, { 'io.tsrun.network': 'mine' }), IMAGE, 'sleep', '60'], where);
      expect(blind.status).toBe(0);
      const id = podman('tsrun-runc', ['inspect', '--format', '{{.Id}}', name], where).stdout.trim();
      const warned = ew.logOf(id).find((l) => String(l.msg).startsWith("the container's image is in no image store tsrun knows"));
      expect((warned?.fromImage as string[] | undefined)?.slice().sort()).toEqual(['io.tsrun.network', 'io.tsrun.ports']);
      expect(podman('tsrun-runc', ['exec', name, 'ip', '-o', 'link'], where).stdout.trim().split('\n')).toHaveLength(1);
      expect(podman('tsrun-runc', ['rm', '--force', '--time', '0', name], where).status).toBe(0);
    }
  });
});
