// tsrun-runc as podman's OCI runtime. podman runs inside the sandbox host's namespace with
// storage, run root, tmpdir, network config and containers.conf of its own (never the machine's);
// the runtime is registered in that containers.conf exactly as docs/oci-runtime.md shows (an
// [engine.runtimes] entry for the file `tsrun oci-runtime install` wrote, and
// runtime_supports_json), plus a private runc --root (podman passes none, and runc's default is
// the machine's /run/runc). podman's own network is none: tsrun-runc wires the container from
// its annotations.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { HOST_UPLINK_IP, engineWorld, eth0Address, have, podmanPrivateFlags, type EngineWorld } from './helpers.js';
import { waitFor } from '../../harness/sandbox.js';

const ok = have('podman') && have('runc') && have('conmon');
const run = ok ? describe : describe.skip;
if (!ok) console.warn('tsrun-runc podman tests skipped: podman, conmon or runc is not installed');

let ew: EngineWorld;

function podman(args: string[], timeoutMs = 120_000) {
  const w = ew.work;
  const flags = podmanPrivateFlags(w, 'tsrun-runc');
  return ew.world.host.ns.exec('podman', [...flags, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME ?? '/root', CONTAINERS_CONF: path.join(w, 'containers.conf') },
    timeoutMs,
  });
}

/** `podman run` options for busybox under this test's cgroup parent, podman's network none. */
function runOpts(name: string, annotations: Record<string, string>): string[] {
  return [
    '--name', name, '--cgroup-parent', ew.cgroupParent, '--network', 'none', '--cap-add', 'NET_RAW',
    '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024',
    ...Object.entries(annotations).flatMap(([k, v]) => ['--annotation', `${k}=${v}`]),
  ];
}

const idOf = (name: string) => podman(['inspect', '--format', '{{.Id}}', name]).stdout.trim();

run('podman --runtime tsrun-runc', () => {
  beforeAll(async () => {
    ew = await engineWorld('ocipodman', '10.127.0.0/24');
    // podman passes runc no --root: give it a private one in front of the installed runtime.
    const registered = path.join(ew.work, 'bin', 'tsrun-runc-private-root');
    writeFileSync(registered, `#!/bin/sh\nexec '${ew.runtime}' --root '${path.join(ew.work, 'runc')}' "$@"\n`, { mode: 0o755 });
    writeFileSync(
      path.join(ew.work, 'containers.conf'),
      ['[engine]', 'runtime_supports_json = ["crun", "runc", "tsrun-runc"]', '[engine.runtimes]', `tsrun-runc = ["${registered}"]`, ''].join('\n'),
    );
  }, 60_000);

  afterAll(async () => {
    await ew?.destroy(() => void podman(['rm', '--all', '--force', '--time', '0']));
  }, 60_000);

  afterEach(() => {
    expect(ew.world.leaks()).toEqual([]);
  });

  it('a detached container gets its tsrun address and published port; exec, stop and rm work and leave nothing', async () => {
    const r = podman(['run', '-d', ...runOpts('pm-web', { 'io.tsrun.network': 'web', 'io.tsrun.ports': '8086:80' }), '--rootfs', ew.rootfs, 'httpd', '-f', '-p', '80', '-h', '/var/www']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const id = idOf('pm-web');

    const exec = podman(['exec', 'pm-web', 'ip', '-o', '-4', 'addr', 'show', 'eth0']);
    expect(exec.status).toBe(0);
    expect(eth0Address(exec.stdout)).toMatch(/^10\.127\.0\.\d+\/24$/);
    // From the "outside" namespace, through the sandbox host's uplink and tsrun's DNAT.
    await ew.world.waitHttp(eth0Address(exec.stdout)!.split('/')[0]!);
    expect(ew.world.outside.httpGet(`http://${HOST_UPLINK_IP}:8086/`)).toBe(`${ew.page}\n`);

    expect(podman(['stop', '--time', '1', 'pm-web']).status).toBe(0);
    expect(podman(['rm', 'pm-web']).status).toBe(0);
    expect(podman(['ps', '-a', '-q']).stdout.trim()).toBe('');
    const msgs = ew.logOf(id).map((l) => l.msg);
    expect(msgs).toContain('tsrun-runc create: wired');
    expect(msgs).toContain('tsrun-runc delete: torn down');
  });

  it('podman restart and podman kill: wired again each time, the port published, nothing left after rm -f', async () => {
    const r = podman(['run', '-d', ...runOpts('pm-rs', { 'io.tsrun.network': 'web', 'io.tsrun.ports': '8087:80' }), '--rootfs', ew.rootfs, 'httpd', '-f', '-p', '80', '-h', '/var/www']);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    const address = () => eth0Address(podman(['exec', 'pm-rs', 'ip', '-o', '-4', 'addr', 'show', 'eth0']).stdout);
    const serves = async () => {
      await ew.world.waitHttp(address()!.split('/')[0]!);
      expect(ew.world.outside.httpGet(`http://${HOST_UPLINK_IP}:8087/`)).toBe(`${ew.page}\n`);
    };
    const first = address();
    expect(first).toMatch(/^10\.127\.0\.\d+\/24$/);
    await serves();
    for (const step of [['restart', '--time', '1', 'pm-rs'], ['kill', 'pm-rs'], ['start', 'pm-rs'], ['restart', '--time', '0', 'pm-rs']]) {
      const x = podman(step);
      expect({ step, status: x.status, stderr: x.stderr }).toEqual({ step, status: 0, stderr: '' });
      if (step[0] === 'kill') {
        // Killed: its network released by the runtime's delete when podman cleans up (no leak
        // while it stays exited, apart from its podman record).
        await waitFor('pm-rs exited', () => podman(['inspect', '--format', '{{.State.Status}}', 'pm-rs']).stdout.trim() === 'exited');
        await waitFor('its network released', () => ew.world.leaks().length === 0).catch(() => undefined);
        expect(ew.world.leaks()).toEqual([]);
        continue;
      }
      expect(address()).toMatch(/^10\.127\.0\.\d+\/24$/);
      await serves();
    }
    const rm = podman(['rm', '--force', '--time', '0', 'pm-rs']);
    expect({ status: rm.status, stderr: rm.stderr }).toEqual({ status: 0, stderr: '' });
    expect(podman(['ps', '-a', '-q']).stdout.trim()).toBe('');
  });

  it('podman run --rm of a foreground container: its output, its exit status, nothing left', () => {
    const r = podman(['run', '--rm', ...runOpts('pm-fg', { 'io.tsrun.network': 'web' }), '--rootfs', ew.rootfs, 'sh', '-c', 'ip -o -4 addr show eth0; ping -c1 -W2 10.127.0.1 >/dev/null && echo GW-OK; exit 3']);
    expect(r.status).toBe(3);
    expect(eth0Address(r.stdout)).toMatch(/^10\.127\.0\.\d+\/24$/);
    expect(r.stdout).toContain('GW-OK');
  });

  it('without tsrun annotations it is plain runc: podman\'s network, no tsrun log lines', () => {
    const r = podman(['run', ...runOpts('pm-plain', {}), '--rootfs', ew.rootfs, 'ip', '-o', 'link']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1); // lo only
    const id = idOf('pm-plain');
    expect(podman(['rm', 'pm-plain']).status).toBe(0);
    expect(ew.logOf(id)).toEqual([]);
  });

  it('a bad annotation stops podman with tsrun-runc\'s line and creates nothing', () => {
    const r = podman(['run', ...runOpts('pm-bad', { 'io.tsrun.network': 'nope' }), '--rootfs', ew.rootfs, 'echo', 'STARTED']);
    expect(r.status).not.toBe(0);
    expect(r.stdout).not.toContain('STARTED');
    expect(r.stderr).toContain('tsrun-runc create: network nope not found');
    expect(podman(['rm', '--force', 'pm-bad']).status).toBe(0);
  });
});
