// podman 4.3 with its CNI backend running containers on a tsrun network: `tsrun cni install`
// puts the plugin and a conflist in podman's private directories (test/harness/podman-cni.ts),
// and podman does the rest as it would with any CNI plugin: VERSION when it loads the conflist,
// ADD with the published ports as a capability, DEL at rm.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BridgeWorld, HOST_UPLINK_IP } from '../../harness/bridge-world.js';
import { PodmanCni, havePodman } from '../../harness/podman-cni.js';
import { waitFor } from '../../harness/sandbox.js';

const maybe = havePodman ? describe : describe.skip;
if (!havePodman) console.warn('podman CNI tests skipped: podman is not installed');

let w: BridgeWorld;
let pm: PodmanCni;

function ok(args: string[]): string {
  const r = pm.podman(args);
  if (r.status !== 0) throw new Error(`podman ${args.join(' ')} → ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

maybe('podman\'s CNI backend with tsrun as the plugin', () => {
  beforeAll(async () => {
    w = await BridgeWorld.create('cnipm');
    pm = await PodmanCni.create(w.host.ns, 'cnipm');
    w.tsrunOk(['network', 'create', 'tsrunnet', '--subnet', '10.216.0.0/24']);
    const files = w.tsrunOk(['cni', 'install', '--bin-dir', pm.binDir, '--conf-dir', pm.confDir, '--network', 'tsrunnet']).trim().split('\n');
    expect(files).toEqual([path.join(pm.binDir, 'tsrun'), path.join(pm.confDir, '10-tsrun-tsrunnet.conflist')]);
    // The wrapper carries this sandbox's state root: podman runs it with its own environment.
    const wrapper = readFileSync(files[0]!, 'utf8');
    expect(wrapper).toContain(`process.env["TSRUN_ROOT"] = ${JSON.stringify(w.host.root)};`);
    // node itself by its shebang, requiring the bundle's entry: no sh launcher, no sh at all.
    expect(wrapper).toMatch(/^#!\/\S*node\n/);
    expect(wrapper).toMatch(/\nif \(typeof require === 'function'\) \{ try \{ require\("[^"]*\/tsrun\.cjs"\); \}/);
  }, 120_000);

  afterAll(async () => {
    pm?.destroy();
    await w?.destroy();
  }, 120_000);

  afterEach(() => {
    expect(w.leaks()).toEqual([]);
  });

  it('podman network ls shows the tsrun network', () => {
    const rows = ok(['network', 'ls', '--format', '{{.Name}} {{.Driver}}']).trim().split('\n');
    expect(rows).toContain('tsrunnet tsrun');
  });

  it('podman run -p 8080:80 gets a tsrun address, the port answers from outside, a second container reaches it; rm leaves nothing', async () => {
    const opts = pm.runOptions();
    const id = ok(['run', '-d', '--name', 'web', '--network', 'tsrunnet', '-p', '8080:80', ...opts, '--rootfs', pm.rootfs, 'httpd', '-f', '-p', '80', '-h', '/var/www']).trim();
    try {
      const ip = ok(['inspect', 'web', '--format', '{{(index .NetworkSettings.Networks "tsrunnet").IPAddress}}']).trim();
      expect(ip).toMatch(/^10\.216\.0\.\d+$/);
      // tsrun's own record of it: podman's container id, its address.
      expect(w.endpoint(id, 'tsrunnet').ipv4!.address).toBe(ip);
      await waitFor('the published port', () => w.outside.httpGet(`http://${HOST_UPLINK_IP}:8080/`, 1000) !== undefined, 20_000);
      expect(w.outside.httpGet(`http://${HOST_UPLINK_IP}:8080/`)).toBe('served by busybox through tsrun\n');

      const peer = pm.podman(['run', '--rm', '--network', 'tsrunnet', ...opts, '--rootfs', pm.rootfs, 'sh', '-c', `ip -o -4 addr show eth0; wget -qO- http://${ip}/`]);
      expect(peer.stderr).toBe('');
      expect(peer.status).toBe(0);
      expect(peer.stdout).toMatch(/eth0\s+inet 10\.216\.0\.\d+\/24/);
      expect(peer.stdout).toContain('served by busybox through tsrun');
    } finally {
      ok(['rm', '--force', '--time', '0', 'web']);
    }
    expect(ok(['ps', '-a', '-q']).trim()).toBe('');
    expect(w.outside.httpGet(`http://${HOST_UPLINK_IP}:8080/`, 1500)).toBeUndefined();
  });
});
