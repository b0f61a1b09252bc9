// tsrun as a CNI plugin, driven as runtimes drive plugins (CNI_* in the environment, the config
// on stdin, the plugin run in the runtime's namespace: the sandbox host). Every verb, the result
// shapes of each spec version, real packets through published ports, and the error codes of the
// failure cases. The "containers" are bare network namespaces, as a pause container's.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createPinnedNetns, deletePinnedNetns } from '../../../runtime/netns/netns.js';
import { BridgeWorld, HOST_UPLINK_IP } from '../../harness/bridge-world.js';
import { Netns, TSRUN_BIN, uniqueId } from '../../harness/sandbox.js';
import { BUSYBOX } from '../lan-sandbox.js';
import { addressesOf, callPlugin, callPluginAsync, containerNs, httpServer, type Attachment, type Conf } from './helpers.js';

let w: BridgeWorld;
const namespaces: Netns[] = [];

const NET: Conf = { cniVersion: '1.0.0', name: 'cnibr', type: 'tsrun', subnet: '10.213.0.0/24', capabilities: { portMappings: true } };

function withPrev(conf: Conf, prevResult: unknown): Conf {
  return { ...conf, prevResult };
}

async function ctr(): Promise<Netns> {
  const ns = await containerNs(uniqueId('cnic'));
  namespaces.push(ns);
  return ns;
}

function at(ns: Netns, extra: Partial<Attachment> = {}): Attachment {
  return { containerId: uniqueId('cni'), netns: ns.path, ifname: 'eth0', ...extra };
}

const call = (command: string, conf: Conf | string, a?: Attachment, env?: NodeJS.ProcessEnv) => callPlugin(w.host, command, conf, a, env);

/** ADD that must succeed; returns the result. */
function addOk(conf: Conf, a: Attachment): any {
  const r = call('ADD', conf, a);
  if (r.status !== 0) throw new Error(`ADD failed (${r.status}): ${r.stdout} ${r.stderr}`);
  return r.json;
}

function delOk(conf: Conf, a: Attachment, prev?: unknown): void {
  const r = call('DEL', prev === undefined ? conf : withPrev(conf, prev), a);
  if (r.status !== 0) throw new Error(`DEL failed (${r.status}): ${r.stdout} ${r.stderr}`);
}

beforeAll(async () => {
  w = await BridgeWorld.create('cnibr');
}, 60_000);

afterAll(async () => {
  for (const ns of namespaces) ns.destroy();
  await w?.destroy();
});

afterEach(() => {
  expect(w.leaks()).toEqual([]);
});

describe('CNI verbs on a bridge network', () => {
  it('VERSION lists the spec versions and answers in the version asked for', () => {
    const r = call('VERSION', { cniVersion: '0.4.0' });
    expect(r.status).toBe(0);
    expect(r.json).toEqual({ cniVersion: '0.4.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
    expect(call('VERSION', {}).json.cniVersion).toBe('1.1.0');
    // Not JSON: still an answer, in the newest version (libcni reads the list).
    expect(call('VERSION', 'not json').json).toEqual({ cniVersion: '1.1.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  });

  it("a hook's poststop for the id of a live CNI attachment (another runtime's container with that id) leaves it alone", async () => {
    // Records are keyed by container id alone: podman's hook (one hooks.d with CRI-O) may see an
    // id a CNI runtime wired. A poststop comes once its container is gone; this record's
    // namespace is still held, so it is not that container's (it was torn down before).
    const ns = await ctr();
    const a = at(ns);
    const r = addOk(NET, a);
    const poststop = w.host.tsrun(['hook', 'poststop'], { input: JSON.stringify({ ociVersion: '1.0.2', id: a.containerId, status: 'stopped', bundle: '/nonexistent' }) });
    expect(poststop.stderr).toBe('');
    expect(poststop.status).toBe(0);
    expect(ns.linkNames()).toContain('eth0');
    expect(`${w.endpoint(a.containerId, 'cnibr').ipv4?.address}/24`).toBe(r.ips[0].address);
    delOk(NET, a, r);
  });

  it('VERSION through its own door fails as the spec says: the error object on stdout, one line on stderr, exit 1', () => {
    // A directory as stdin: reading it fails (EISDIR), the I/O failure code 5.
    const r = spawnSync('nsenter', [`--net=${w.host.ns.path}`, '--', TSRUN_BIN], { env: { ...w.host.env, CNI_COMMAND: 'VERSION' }, stdio: [openSync('/', 'r'), 'pipe', 'pipe'], encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ cniVersion: '1.1.0', code: 5, msg: 'cannot read the network config on stdin' });
    expect(r.stderr.trim().split('\n')).toEqual(['tsrun: CNI VERSION: cannot read the network config on stdin']);
  });

  it('ADD wires the namespace and publishes the port; CHECK passes; DEL removes it all, twice, and without CNI_NETNS', async () => {
    const ns = await ctr();
    const a = at(ns);
    const conf = { ...NET, runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] } };
    const result = addOk(conf, a);
    // 1.0.0 shape: the host end, then the container's interface in its sandbox; no "version".
    expect(result.cniVersion).toBe('1.0.0');
    expect(result.interfaces).toHaveLength(2);
    expect(result.interfaces[0].name).toMatch(/^tsv[0-9a-f]{8}$/);
    expect(result.interfaces[0].sandbox).toBeUndefined();
    expect(result.interfaces[1]).toEqual({ name: 'eth0', mac: expect.stringMatching(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/), sandbox: ns.path });
    expect(result.ips).toEqual([{ address: expect.stringMatching(/^10\.213\.0\.\d+\/24$/), gateway: '10.213.0.1', interface: 1 }]);
    expect(result.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.213.0.1' }]);
    // The network has tsrun's DNS on: its resolver on the gateway, the network as search domain.
    expect(result.dns).toEqual({ nameservers: ['10.213.0.1'], search: ['cnibr'] });
    expect(addressesOf(ns, 'eth0')).toEqual([result.ips[0].address]);

    const server = httpServer(ns, 80, 'hello from cni');
    try {
      await server.ready;
      expect(w.outside.httpGet(`http://${HOST_UPLINK_IP}:8080/`)).toBe('hello from cni');
      expect(call('CHECK', withPrev(conf, result), a).status).toBe(0);
    } finally {
      server.stop();
    }

    delOk(conf, a, result);
    expect(ns.linkNames()).toEqual(['lo']);
    expect(w.outside.httpGet(`http://${HOST_UPLINK_IP}:8080/`, 1500)).toBeUndefined();
    delOk(conf, a, result);
    delOk(conf, { ...a, netns: undefined });
  });

  it('DEL removes the host end after the container moved its eth0 into a namespace of its own that outlives it', async () => {
    const ns = await ctr();
    const nested = await ctr();
    const a = at(ns);
    const result = addOk(NET, a);
    const hostEnd = result.interfaces[0].name as string;
    // A container with CAP_NET_ADMIN: `ip link set eth0 netns <its own namespace>`; the index eth0
    // had is taken there, so the peer changes index and namespace; the nested namespace stays.
    const indexes = (n: Netns) => (JSON.parse(n.sh('ip -j link show')) as { ifindex: number }[]).map((l) => l.ifindex);
    const peer = (JSON.parse(ns.sh('ip -j link show dev eth0')) as { ifindex: number }[])[0]!.ifindex;
    const taken = indexes(nested).includes(peer);
    try {
      if (!taken) nested.sh(`ip link add tscninest index ${peer} type veth peer name tscninest2 index ${peer + 1000}`);
      ns.sh(`ip link set eth0 netns ${nested.pid}`);
      if (!taken) nested.sh('ip link del tscninest');
      expect(w.host.ns.linkNames()).toContain(hostEnd);
      expect(indexes(nested)).not.toContain(peer);
    } finally {
      delOk(NET, a, result);
    }
    // (afterEach's leak check waits for the detached delete and fails on a host end left behind)
    expect(w.tsrunVeths()).toEqual([]);
    expect(nested.linkNames()).toEqual(['lo']);
  });

  it('two containers on the network reach each other, by address and by the aliases capability through tsrun\'s resolver', async () => {
    const [n1, n2] = [await ctr(), await ctr()];
    const [a1, a2] = [at(n1), at(n2)];
    const r1 = addOk(NET, a1);
    // podman's form of the capability: {network: [names]}.
    const r2 = addOk({ ...NET, capabilities: { aliases: true }, runtimeConfig: { aliases: { cnibr: ['db', 'primary'] } } }, a2);
    try {
      const ip2 = r2.ips[0].address.split('/')[0];
      expect(n1.exec(BUSYBOX, ['ping', '-c', '1', '-W', '2', ip2]).status).toBe(0);
      const lookup = n1.exec(BUSYBOX, ['nslookup', 'primary', '10.213.0.1']);
      expect(lookup.stdout).toContain(ip2);
    } finally {
      delOk(NET, a1, r1);
      delOk(NET, a2, r2);
    }
  });

  it('parallel ADDs (as runtimes may run them for different containers) on a network none of them has yet: one network, distinct addresses; parallel DELs', async () => {
    const conf = { ...NET, name: 'cnipar', subnet: '10.218.0.0/24' };
    const nss = await Promise.all([1, 2, 3, 4, 5, 6].map(() => ctr()));
    const ats = nss.map((ns) => at(ns));
    const adds = await Promise.all(ats.map((a) => callPluginAsync(w.host, 'ADD', conf, a)));
    expect(adds.map((r) => [r.status, r.stderr])).toEqual(adds.map(() => [0, '']));
    const addresses = adds.map((r) => r.json.ips[0].address);
    expect(new Set(addresses).size).toBe(6);
    expect(w.tsrunOk(['network', 'ls', '-q']).split('\n').filter((n) => n === 'cnipar')).toHaveLength(1);
    const ip0 = addresses[0].split('/')[0];
    expect(nss[5]!.exec(BUSYBOX, ['ping', '-c', '1', '-W', '2', ip0]).status).toBe(0);
    const dels = await Promise.all(ats.map((a, i) => callPluginAsync(w.host, 'DEL', { ...conf, prevResult: adds[i]!.json }, a)));
    expect(dels.map((r) => r.status)).toEqual(dels.map(() => 0));
  });

  it('CHECK finds what is missing against prevResult (code 102), and refuses without prevResult', async () => {
    const ns = await ctr();
    const a = at(ns);
    const result = addOk(NET, a);
    try {
      expect(call('CHECK', NET, a).json).toMatchObject({ code: 7, msg: expect.stringContaining('prevResult') });
      ns.sh(`ip addr del ${result.ips[0].address} dev eth0`);
      const r = call('CHECK', withPrev(NET, result), a);
      expect(r.status).not.toBe(0);
      expect(r.json).toMatchObject({ cniVersion: '1.0.0', code: 102, msg: expect.stringContaining(`lacks address ${result.ips[0].address}`) });
      ns.sh('ip link set eth0 down');
      expect(call('CHECK', withPrev(NET, result), a).json.msg).toContain('eth0 is down');
      // A later plugin changing the MAC (and the result with it) cuts the container off the
      // bridge's anti-spoofing filter: CHECK says so even though prevResult agrees.
      ns.sh(`ip addr add ${result.ips[0].address} dev eth0 && ip link set eth0 address 02:dd:00:00:00:01 up && ip route add default via 10.213.0.1`);
      const moved = { ...result, interfaces: result.interfaces.map((i: { name: string; sandbox?: string }) => (i.sandbox ? { ...i, mac: '02:dd:00:00:00:01' } : i)) };
      expect(call('CHECK', withPrev(NET, moved), a).json).toMatchObject({ code: 102, msg: expect.stringContaining('not ' + result.interfaces[1].mac + ' that tsrun wired') });
    } finally {
      delOk(NET, a, result);
    }
  });

  it('older callers get their result shape: 0.4.0 and 0.3.1 carry the address version; 0.3.1 cannot CHECK', async () => {
    for (const v of ['0.4.0', '0.3.1']) {
      const ns = await ctr();
      const a = at(ns);
      const conf = { ...NET, cniVersion: v };
      const result = addOk(conf, a);
      try {
        expect(result.cniVersion).toBe(v);
        expect(result.ips).toEqual([{ version: '4', address: expect.stringMatching(/^10\.213\.0\.\d+\/24$/), gateway: '10.213.0.1', interface: 1 }]);
        const check = call('CHECK', withPrev(conf, result), a);
        if (v === '0.4.0') expect(check.status).toBe(0);
        else expect(check.json).toMatchObject({ cniVersion: '0.3.1', code: 1, msg: expect.stringContaining('does not allow CHECK') });
      } finally {
        delOk(conf, a, result);
      }
    }
  });

  it('IPv6: a dual-stack network gives both families, a default route each, and the gateway answers on both', async () => {
    const conf = { ...NET, name: 'cnibr6', subnet: '10.214.0.0/24', ipv6Subnet: 'fd00:214::/64' };
    const ns = await ctr();
    const a = at(ns);
    const result = addOk(conf, a);
    try {
      expect(result.ips).toEqual([
        { address: expect.stringMatching(/^10\.214\.0\.\d+\/24$/), gateway: '10.214.0.1', interface: 1 },
        { address: expect.stringMatching(/^fd00:214::[0-9a-f]+\/64$/), gateway: 'fd00:214::1', interface: 1 },
      ]);
      expect(result.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.214.0.1' }, { dst: '::/0', gw: 'fd00:214::1' }]);
      expect(ns.exec(BUSYBOX, ['ping', '-c', '1', '-W', '3', 'fd00:214::1']).status).toBe(0);
      expect(call('CHECK', withPrev(conf, result), a).status).toBe(0);
    } finally {
      delOk(conf, a, result);
    }
  });

  it('another CNI_IFNAME, a static address and MAC from runtimeConfig (ips, mac) or CNI_ARGS', async () => {
    const ns = await ctr();
    const a = at(ns, { ifname: 'net1' });
    const conf = { ...NET, capabilities: { ips: true, mac: true }, runtimeConfig: { ips: ['10.213.0.77/24'], mac: '02:aa:bb:cc:dd:01' } };
    const result = addOk(conf, a);
    try {
      expect(result.interfaces[1]).toEqual({ name: 'net1', mac: '02:aa:bb:cc:dd:01', sandbox: ns.path });
      expect(addressesOf(ns, 'net1')).toEqual(['10.213.0.77/24']);
      expect(call('CHECK', withPrev(conf, result), a).status).toBe(0);
    } finally {
      delOk(conf, a, result);
    }
    const ns2 = await ctr();
    const b = at(ns2, { args: 'IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.213.0.78;MAC=02:aa:bb:cc:dd:02' });
    const r2 = addOk(NET, b);
    try {
      expect(r2.ips[0].address).toBe('10.213.0.78/24');
      expect(r2.interfaces[1].mac).toBe('02:aa:bb:cc:dd:02');
    } finally {
      delOk(NET, b, r2);
    }
  });

  it('the bandwidth capability becomes a token bucket on each end of the veth', async () => {
    const ns = await ctr();
    const a = at(ns);
    const conf = { ...NET, capabilities: { bandwidth: true }, runtimeConfig: { bandwidth: { ingressRate: 8_000_000, ingressBurst: 80_000, egressRate: 4_000_000, egressBurst: 40_000 } } };
    const result = addOk(conf, a);
    try {
      const hostEnd = result.interfaces[0].name;
      expect(w.host.ns.sh(`tc qdisc show dev ${hostEnd}`)).toMatch(/tbf .*rate 8Mbit/);
      expect(ns.sh('tc qdisc show dev eth0')).toMatch(/tbf .*rate 4Mbit/);
    } finally {
      delOk(conf, a, result);
    }
  });

  it('a namespace the runtime bind-mounted, with no process inside yet, survives tsrun gc; DEL after it is gone succeeds', () => {
    // As CRI-O, containerd and podman hold a pod's namespace: a bind mount (/run/netns/…).
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-cni-pin-'));
    const pin = path.join(dir, 'ns');
    createPinnedNetns(pin);
    try {
      const a: Attachment = { containerId: uniqueId('cni'), netns: pin, ifname: 'eth0' };
      const result = addOk(NET, a);
      w.tsrunOk(['gc']);
      expect(call('CHECK', withPrev(NET, result), a).status).toBe(0);
      deletePinnedNetns(pin);
      delOk(NET, a, result);
    } finally {
      deletePinnedNetns(pin);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('GC removes every attachment not in cni.dev/valid-attachments; STATUS reports usable', async () => {
    const conf = { ...NET, cniVersion: '1.1.0' };
    const [n1, n2] = [await ctr(), await ctr()];
    const [keep, drop] = [at(n1), at(n2)];
    const r1 = addOk(conf, keep);
    addOk(conf, drop);
    // Another runtime's conflist on the same tsrun network: its attachments are not in this
    // runtime's valid list, and not this GC's to collect.
    const otherList = { cniVersion: '1.1.0', name: 'cnibr-other', type: 'tsrun', network: 'cnibr' };
    const n3 = await ctr();
    const theirs = at(n3);
    const r3 = addOk(otherList, theirs);
    // A container `tsrun run` wired on the same network is not GC's to collect.
    const other = await w.start(['--net', 'cnibr'], 'sleep 1000');
    try {
      expect(call('STATUS', conf).status).toBe(0);
      // tsrun's table gone with endpoints attached: usable but limited (51), the endpoints counted
      // (by their keys: STATUS reads no record). tsrun gc rebuilds the table from the store.
      w.host.ns.sh('nft delete table inet tsrun');
      expect(call('STATUS', conf).json).toMatchObject({ cniVersion: '1.1.0', code: 51, msg: expect.stringContaining('while 4 endpoint(s) are attached') });
      w.tsrunOk(['gc']);
      expect(call('STATUS', conf).status).toBe(0);
      const gc = call('GC', { ...conf, 'cni.dev/valid-attachments': [{ containerID: keep.containerId, ifname: 'eth0' }] });
      expect(gc.status).toBe(0);
      expect(gc.stdout).toBe('');
      expect(n2.linkNames()).toEqual(['lo']);
      expect(addressesOf(n1, 'eth0')).toEqual([r1.ips[0].address]);
      expect(call('CHECK', withPrev(conf, r1), keep).status).toBe(0);
      expect(w.endpoint(other.id, 'cnibr').ipv4?.address).toMatch(/^10\.213\.0\./);
      expect(addressesOf(n3, 'eth0')).toEqual([r3.ips[0].address]);
    } finally {
      delOk(conf, keep, r1);
      delOk(otherList, theirs, r3);
      await other.stop();
    }
    // GC and STATUS came with 1.1.0.
    expect(call('GC', { ...NET, 'cni.dev/valid-attachments': [] }).json).toMatchObject({ code: 1 });
    expect(call('STATUS', { cniVersion: '1.1.0', name: 'x', type: 'tsrun', network: 'absent' }).json).toMatchObject({ cniVersion: '1.1.0', code: 50, msg: expect.stringContaining('absent') });
  });
});

describe('CNI failures: the spec\'s codes, one line on stderr, nothing left behind', () => {
  const cases: [string, () => { command?: string; conf: Conf | string; a?: (ns: Netns) => Attachment | undefined; env?: NodeJS.ProcessEnv }, number, RegExp][] = [
    ['bad JSON', () => ({ conf: '{"cniVersion": "1.0.0", "name": ' }), 6, /decode/],
    ['no cniVersion (0.1.0)', () => ({ conf: { name: 'x', type: 'tsrun' } }), 1, /incompatible CNI versions: config is "0.1.0"/],
    ['a version tsrun does not speak', () => ({ conf: { ...NET, cniVersion: '0.2.0' } }), 1, /incompatible CNI versions: config is "0.2.0"/],
    ['a newer major version', () => ({ conf: { ...NET, cniVersion: '2.0.0' } }), 1, /incompatible/],
    ['an unknown network', () => ({ conf: { cniVersion: '1.0.0', name: 'x', type: 'tsrun', network: 'nope' } }), 7, /network nope not found/],
    ['a bad driver', () => ({ conf: { ...NET, name: 'cnibad', driver: 'nope' } }), 7, /driver/],
    ['a bad subnet', () => ({ conf: { ...NET, name: 'cnibad', subnet: '10.1.2.3' } }), 7, /subnet/],
    ['ipam (tsrun allocates itself)', () => ({ conf: { ...NET, ipam: { type: 'host-local' } } }), 2, /ipam/],
    ['sctp ports', () => ({ conf: { ...NET, runtimeConfig: { portMappings: [{ hostPort: 9, containerPort: 9, protocol: 'sctp' }] } } }), 2, /sctp/],
    ['a missing network namespace', () => ({ conf: NET, a: () => ({ containerId: 'gone1', netns: '/proc/999999999/ns/net' }) }), 3, /does not exist/],
    ['no CNI_NETNS on ADD', () => ({ conf: NET, a: () => ({ containerId: 'nonetns' }) }), 4, /CNI_NETNS/],
    // The plugin's own namespace (the host's): the container end, its address and its default
    // route went into the host, and the host's traffic to the subnet's gateway to the bridge.
    ['CNI_NETNS naming the plugin\'s own namespace (the host\'s)', () => ({ conf: NET, a: () => ({ containerId: 'hostns', netns: '/proc/self/ns/net', ifname: 'tsx0' }) }), 4, /own network namespace/],
    ['a bad container id', () => ({ conf: NET, a: (ns) => ({ containerId: '../x', netns: ns.path }) }), 4, /CNI_CONTAINERID/],
    ['an unknown command', () => ({ command: 'FROB', conf: NET }), 4, /CNI_COMMAND/],
    ['a host port taken by another container', () => ({ conf: { ...NET, runtimeConfig: { portMappings: [{ hostPort: 8181, containerPort: 80 }] } } }), 101, /8181\/tcp is already published/],
  ];

  it.each(cases)('%s', async (_what, make, code, msg) => {
    const ns = await ctr();
    const c = make();
    let holder: Attachment | undefined;
    if (code === 101) {
      holder = at(await ctr());
      addOk(c.conf as Conf, holder);
    }
    const a = c.a ? c.a(ns) : at(ns);
    const r = call(c.command ?? 'ADD', c.conf, a);
    const json = JSON.parse(r.stdout);
    expect(r.status).toBe(1);
    expect(json.code).toBe(code);
    expect(json.msg).toMatch(msg);
    // One whole line, also from a call that leaves through _exit (koffi loaded: the taken port).
    expect(r.stderr).toMatch(/^tsrun: CNI [A-Za-z]+: [^\n]+\n$/);
    expect(ns.linkNames()).toEqual(['lo']);
    expect(w.host.ns.exec('ip', ['-o', 'link', 'show', 'tsx0']).status).not.toBe(0);
    if (holder) delOk(c.conf as Conf, holder);
  });
});
