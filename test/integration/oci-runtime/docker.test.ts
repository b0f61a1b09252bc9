// tsrun-runc under Docker (Debian's docker.io): dockerd is started by the test inside the sandbox
// host's network namespace and a private mount namespace (spawnPrivateDaemon), with its own
// --data-root, --exec-root, --pidfile, socket and daemon.json (which registers tsrun-runc as the
// runtime "tsrun", as docs/oci-runtime.md shows), no bridge and no iptables. The image comes from
// `docker import` of the busybox fixture.
//
// Debian 12's dockerd is 20.10 (API 1.41): `docker run --annotation` needs API 1.43 (Docker 24),
// so on it the tsrun keys go in as environment variables (-e io.tsrun.network=web), which
// tsrun-runc reads when the bundle has no tsrun annotation and its wrapper was installed with
// --env-keys; a newer daemon gets --annotation.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { waitFor } from '../../harness/sandbox.js';
import { HOST_UPLINK_IP, engineWorld, eth0Address, have, rootfsTar, spawnPrivateDaemon, stopDaemon, type EngineWorld } from './helpers.js';

const ok = have('dockerd') && have('docker') && have('containerd') && have('runc');
const run = ok ? describe : describe.skip;
if (!ok) console.warn('tsrun-runc Docker tests skipped: docker.io (dockerd, docker), containerd or runc is not installed');

const IMAGE = 'docker.io/tsrun/busybox-test:latest';
let ew: EngineWorld;
let daemon: ChildProcess | undefined;
let sock: string;
let annotationsSupported = false;

function docker(args: string[], timeoutMs = 60_000) {
  return ew.world.host.ns.exec('docker', ['-H', `unix://${sock}`, ...args], {
    timeoutMs,
    env: { PATH: process.env.PATH, HOME: process.env.HOME ?? '/root', DOCKER_CONFIG: path.join(ew.work, 'docker-cli') },
  });
}

/** tsrun's keys as annotations when the daemon can pass them, else as environment variables. */
function tsrunKeys(keys: Record<string, string>): string[] {
  return Object.entries(keys).flatMap(([k, v]) => [annotationsSupported ? '--annotation' : '-e', `${k}=${v}`]);
}

run('Docker: docker run --runtime tsrun', () => {
  beforeAll(async () => {
    ew = await engineWorld('ocidocker', '10.129.0.0/24');
    const dir = path.join(ew.work, 'docker');
    mkdirSync(dir, { recursive: true });
    sock = path.join(dir, 'docker.sock');
    const config = path.join(dir, 'daemon.json');
    writeFileSync(config, JSON.stringify({ runtimes: { tsrun: { path: ew.runtime } }, 'cgroup-parent': ew.cgroupParent, 'exec-opts': ['native.cgroupdriver=cgroupfs'] }, null, 2));
    daemon = spawnPrivateDaemon(ew, [
      'dockerd', '--config-file', config, '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'),
      '--pidfile', path.join(dir, 'dockerd.pid'), '-H', `unix://${sock}`, '--bridge=none', '--iptables=false', '--log-level', 'warn',
    ]);
    await waitFor('dockerd to answer', () => docker(['version'], 5000).status === 0, 60_000);
    const api = docker(['version', '--format', '{{.Server.APIVersion}}']).stdout.trim();
    const [major, minor] = api.split('.').map(Number);
    annotationsSupported = major! > 1 || (major === 1 && minor! >= 43);
    // Environment keys are read only by a wrapper installed with --env-keys (an image's ENV could set them).
    if (!annotationsSupported) ew.world.tsrunOk(['oci-runtime', 'install', '--path', ew.runtime, '--env-keys']);
    const imp = docker(['import', rootfsTar(ew.rootfs, path.join(ew.work, 'rootfs.tar')), IMAGE], 120_000);
    if (imp.status !== 0) throw new Error(`docker import: ${imp.stderr}`);
  }, 120_000);

  afterAll(async () => {
    await ew?.destroy(async () => {
      if (!daemon) return;
      const ids = docker(['ps', '-a', '-q']).stdout.split('\n').filter(Boolean);
      if (ids.length > 0) docker(['rm', '--force', ...ids]);
      docker(['rmi', IMAGE]);
      await stopDaemon(daemon);
    });
  }, 120_000);

  afterEach(() => {
    expect(ew.world.leaks()).toEqual([]);
  });

  it('a detached container gets its tsrun address and published port; exec, stop and rm leave nothing', async () => {
    const r = docker(['run', '-d', '--name', 'dk-web', '--runtime', 'tsrun', '--network', 'none', ...tsrunKeys({ 'io.tsrun.network': 'web', 'io.tsrun.ports': '8088:80' }), IMAGE, 'httpd', '-f', '-p', '80', '-h', '/var/www']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const id = r.stdout.trim();
    const exec = docker(['exec', 'dk-web', 'ip', '-o', '-4', 'addr', 'show', 'eth0']);
    expect(exec.status).toBe(0);
    expect(eth0Address(exec.stdout)).toMatch(/^10\.129\.0\.\d+\/24$/);
    await ew.world.waitHttp(eth0Address(exec.stdout)!.split('/')[0]!);
    expect(ew.world.outside.httpGet(`http://${HOST_UPLINK_IP}:8088/`)).toBe(`${ew.page}\n`);

    expect(docker(['stop', '--time', '1', 'dk-web']).status).toBe(0);
    expect(docker(['rm', 'dk-web']).status).toBe(0);
    const msgs = ew.logOf(id).map((l) => l.msg);
    expect(msgs).toContain('tsrun-runc create: wired');
    expect(msgs).toContain('tsrun-runc delete: torn down');
  });

  it('docker restart, docker kill, and a killed containerd-shim: wired again each time, nothing left after rm -f', async () => {
    const r = docker(['run', '-d', '--name', 'dk-rs', '--runtime', 'tsrun', '--network', 'none', ...tsrunKeys({ 'io.tsrun.network': 'web', 'io.tsrun.ports': '8089:80' }), IMAGE, 'httpd', '-f', '-p', '80', '-h', '/var/www']);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    const id = r.stdout.trim();
    const address = () => eth0Address(docker(['exec', 'dk-rs', 'ip', '-o', '-4', 'addr', 'show', 'eth0']).stdout);
    const serves = async () => {
      expect(address()).toMatch(/^10\.129\.0\.\d+\/24$/);
      await ew.world.waitHttp(address()!.split('/')[0]!);
      expect(ew.world.outside.httpGet(`http://${HOST_UPLINK_IP}:8089/`)).toBe(`${ew.page}\n`);
    };
    const state = () => docker(['inspect', '--format', '{{.State.Status}}', 'dk-rs']).stdout.trim();
    await serves();
    for (const step of [['restart', '--time', '1', 'dk-rs'], ['kill', 'dk-rs'], ['start', 'dk-rs'], ['restart', '--time', '0', 'dk-rs']]) {
      const x = docker(step);
      expect({ step, status: x.status, stderr: x.stderr }).toEqual({ step, status: 0, stderr: '' });
      if (step[0] === 'kill') {
        // Exited: the runtime's delete has released its network (docker keeps only its record).
        await waitFor('dk-rs exited', () => state() === 'exited');
        await waitFor('its network released', () => ew.world.leaks().length === 0).catch(() => undefined);
        expect(ew.world.leaks()).toEqual([]);
        continue;
      }
      await serves();
    }
    // containerd's shim of the container SIGKILLed: docker sees the task gone; rm -f must still
    // have the runtime release everything.
    const shims = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
        return cmd[0]!.includes('containerd-shim') && cmd.includes(id);
      } catch {
        return false;
      }
    });
    expect(shims.length).toBeGreaterThan(0);
    for (const p of shims) process.kill(Number(p), 'SIGKILL');
    const rm = docker(['rm', '--force', 'dk-rs']);
    expect({ status: rm.status, stderr: rm.stderr }).toEqual({ status: 0, stderr: '' });
    await waitFor('its network released', () => ew.world.leaks().length === 0).catch(() => undefined);
  });

  it('docker run --rm in the foreground: output, exit status, nothing left', () => {
    const r = docker(['run', '--rm', '--runtime', 'tsrun', '--network', 'none', ...tsrunKeys({ 'io.tsrun.network': 'web' }), IMAGE, 'sh', '-c', 'ip -o -4 addr show eth0; ping -c1 -W2 10.129.0.1 >/dev/null && echo GW-OK; exit 3']);
    expect(r.stdout).toContain('GW-OK');
    expect(r.status).toBe(3);
  });

  it('a network that does not exist: docker shows tsrun-runc\'s line, nothing is created', () => {
    const r = docker(['run', '--name', 'dk-bad', '--runtime', 'tsrun', '--network', 'none', ...tsrunKeys({ 'io.tsrun.network': 'nope' }), IMAGE, 'echo', 'STARTED']);
    expect(r.status).not.toBe(0);
    expect(r.stdout).not.toContain('STARTED');
    expect(r.stderr).toContain('tsrun-runc create: network nope not found');
    docker(['rm', '--force', 'dk-bad']);
  });
});
