// tsrun first in a conflist, followed by the reference plugins from /usr/lib/cni (portmap,
// bandwidth, tuning, firewall), run the way libcni runs a list: ADD in order, each plugin handed
// the previous result; CHECK in order and DEL in reverse, each handed the final result. Each
// plugin finds what it needs in tsrun's result (the container's interface and addresses, the
// host end of the veth), and the whole chain comes down without leftovers.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BridgeWorld, HOST_UPLINK_IP } from '../../harness/bridge-world.js';
import { Netns, uniqueId } from '../../harness/sandbox.js';
import { chainAdd, chainCheck, chainDel, containerNs, haveReferencePlugins, httpServer, type Conflist } from './helpers.js';

const maybe = haveReferencePlugins ? describe : describe.skip;
if (!haveReferencePlugins) console.warn('CNI chaining tests skipped: /usr/lib/cni has no reference plugins (containernetworking-plugins)');

// Dual-stack, so every plugin handles both families of tsrun's result.
const NET = { subnet: '10.215.0.0/24', ipv6Subnet: 'fd00:215::/64' };

let w: BridgeWorld;
let dataDir: string;
const namespaces: Netns[] = [];

beforeAll(async () => {
  w = await BridgeWorld.create('cnich');
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-cni-tuning-'));
}, 60_000);

afterAll(async () => {
  for (const ns of namespaces) ns.destroy();
  await w?.destroy();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

afterEach(() => {
  expect(w.leaks()).toEqual([]);
});

maybe('tsrun chained with the reference plugins', () => {
  it('portmap, bandwidth, tuning and firewall after tsrun: ADD, CHECK, real traffic, DEL in reverse', async () => {
    const list: Conflist = {
      cniVersion: '1.0.0',
      name: 'cnich',
      plugins: [
        // The ports and the bandwidth are the chained plugins' job here. The MAC stays tsrun's:
        // its bridge admits a container's frames only from the MAC it wired (anti-spoofing), so
        // a MAC that tuning changed afterwards would cut the container off.
        { type: 'tsrun', ...NET, capabilities: { mac: true } },
        { type: 'portmap', capabilities: { portMappings: true } },
        { type: 'bandwidth', capabilities: { bandwidth: true } },
        { type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.arp_notify': '1' }, dataDir },
        { type: 'firewall' },
      ],
    };
    const caps = {
      portMappings: [{ hostPort: 8090, containerPort: 80, protocol: 'tcp' }],
      bandwidth: { ingressRate: 8_000_000, ingressBurst: 80_000, egressRate: 8_000_000, egressBurst: 80_000 },
      mac: '02:cc:00:00:00:15',
    };
    const ns = await containerNs(uniqueId('cnich'));
    namespaces.push(ns);
    const at = { containerId: uniqueId('chain'), netns: ns.path, ifname: 'eth0' };
    const { result, failed } = chainAdd(w.host, list, at, caps);
    expect(failed).toBeUndefined();
    try {
      // The MAC from the capability, in the result every later plugin sees and on the interface.
      const eth0 = result.interfaces.find((i: { name: string; sandbox?: string }) => i.name === 'eth0' && i.sandbox);
      expect(eth0.mac).toBe('02:cc:00:00:00:15');
      expect(JSON.parse(ns.sh('ip -j link show eth0'))[0].address).toBe('02:cc:00:00:00:15');
      expect(ns.sh('sysctl -n net.ipv4.conf.eth0.arp_notify').trim()).toBe('1');
      const hostEnd = result.interfaces.find((i: { name: string }) => /^tsv/.test(i.name)).name;
      // bandwidth: a tbf on the host end (into the container) and an ifb for the way out.
      expect(w.host.ns.sh(`tc qdisc show dev ${hostEnd}`)).toMatch(/tbf .*rate 8Mbit/);
      expect(w.host.ns.linkNames().some((l) => l.startsWith('bwp'))).toBe(true);
      // firewall: the container's address admitted in CNI-FORWARD.
      const address = result.ips[0].address.split('/')[0];
      expect(w.host.ns.sh('iptables -S CNI-FORWARD')).toContain('CNI-ADMIN');
      expect(w.host.ns.sh('iptables-save -t filter')).toContain(address);

      // portmap's DNAT brings the outside in (tsrun's own forward chain lets DNATed traffic pass).
      const server = httpServer(ns, 80, 'chained');
      try {
        await server.ready;
        expect(w.outside.httpGet(`http://${HOST_UPLINK_IP}:8090/`)).toBe('chained');
      } finally {
        server.stop();
      }
      // CHECK through the chain, portmap left out: its 1.1.1 CHECK looks for IPv6 rules whether
      // or not it made any (containernetworking/plugins#819), whatever the first plugin was.
      const checkable = { ...list, plugins: list.plugins.filter((p) => p.type !== 'portmap') };
      expect(chainCheck(w.host, checkable, at, result, caps)).toBeUndefined();
    } finally {
      const dels = chainDel(w.host, list, at, result, caps);
      expect(dels.map((d) => [d.status, d.stdout.trim()])).toEqual(dels.map(() => [0, '']));
    }
    expect(ns.linkNames()).toEqual(['lo']);
    expect(w.host.ns.linkNames().filter((l) => l.startsWith('bwp'))).toEqual([]);
    expect(w.host.ns.sh('iptables-save -t nat')).not.toContain('8090');
    expect(w.outside.httpGet(`http://${HOST_UPLINK_IP}:8090/`, 1500)).toBeUndefined();
    // A second DEL of the whole chain, as runtimes may send: every plugin, tsrun included, is fine.
    expect(chainDel(w.host, list, at, result, caps).map((d) => d.status)).toEqual([0, 0, 0, 0, 0]);
  });

  it('tsrun\'s own ports when it is the only plugin, and a chained tuning after it', async () => {
    const list: Conflist = {
      cniVersion: '1.0.0',
      name: 'cnich',
      plugins: [{ type: 'tsrun', ...NET, capabilities: { portMappings: true } }, { type: 'tuning', sysctl: { 'net.core.somaxconn': '512' }, dataDir }],
    };
    const caps = { portMappings: [{ hostPort: 8091, containerPort: 80, protocol: 'tcp' }] };
    const ns = await containerNs(uniqueId('cnich'));
    namespaces.push(ns);
    const at = { containerId: uniqueId('own'), netns: ns.path, ifname: 'eth0' };
    const { result, failed } = chainAdd(w.host, list, at, caps);
    expect(failed).toBeUndefined();
    try {
      const server = httpServer(ns, 80, 'own ports');
      try {
        await server.ready;
        expect(w.outside.httpGet(`http://${HOST_UPLINK_IP}:8091/`)).toBe('own ports');
      } finally {
        server.stop();
      }
      expect(w.host.ns.sh('iptables-save -t nat')).not.toContain('8091'); // no iptables: tsrun's nft sets
      expect(chainCheck(w.host, list, at, result, caps)).toBeUndefined();
    } finally {
      expect(chainDel(w.host, list, at, result, caps).map((d) => d.status)).toEqual([0, 0]);
    }
  });
});
