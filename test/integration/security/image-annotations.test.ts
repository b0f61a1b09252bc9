// An image choosing its own network and publishing its own ports through podman: podman 4 copies
// an OCI image's manifest annotations into the container's spec (the user's `--annotation` wins
// on the same key, nothing marks which is which), so `podman run IMAGE` of an image whose
// manifest says io.tsrun.network=web, io.tsrun.ports=8087:80 was wired into `web` with 8087
// published on every host address, under tsrun-runc and under the hook alike. tsrun now finds
// the image in podman's storage (hook/image-annotations.ts) and does not honour its keys; the
// user's own --annotation still works. podman runs in the sandbox host's namespace with private
// storage, run root and containers.conf, as in oci-runtime/podman.test.ts.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { HOST_UPLINK_IP, engineWorld, eth0Address, have, ociImageArchive, podmanPrivateFlags, type EngineWorld } from '../oci-runtime/helpers.js';

const ok = have('podman') && have('runc') && have('conmon');
const run = ok ? describe : describe.skip;
if (!ok) console.warn('image annotation tests skipped: podman, conmon or runc is not installed');

let ew: EngineWorld;
let hooksDir: string;
const IMAGE = 'localhost/tsrun-test/hostile:latest';

function podman(runtime: 'tsrun-runc' | 'runc', args: string[]) {
  const w = ew.work;
  const flags = [
    ...podmanPrivateFlags(w, runtime),
    ...(runtime === 'runc' ? ['--hooks-dir', hooksDir] : []),
  ];
  return ew.world.host.ns.exec('podman', [...flags, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME ?? '/root', CONTAINERS_CONF: path.join(w, 'containers.conf') },
    timeoutMs: 120_000,
  });
}

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
    const archive = ociImageArchive(ew.rootfs, dir, IMAGE, ['httpd', '-f', '-p', '80', '-h', '/var/www'], {
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
});
