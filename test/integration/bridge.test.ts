// Bridge networking end to end: real runc containers in a sandbox host, real packets, real
// nftables. The "outside" namespace plays the upstream network; nothing leaves the machine.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { BridgeWorld, HOST_UPLINK_IP, OUTSIDE_IP } from '../harness/bridge-world.js';
import { PROJECT_ROOT, isStopped, signalWhileStopped, uniqueId, waitFor } from '../harness/sandbox.js';

let w: BridgeWorld;
beforeAll(async () => {
  w = await BridgeWorld.create('bridge');
});
afterAll(async () => {
  await w.destroy();
});
afterEach(async () => {
  await w.stopAll();
  expect(w.leaks()).toEqual([]);
});

const HTTPD = 'httpd -f -p 80 -h /var/www';
const PAGE = 'tsrun busybox fixture';

describe('the default network', () => {
  it('gives eth0 an address from its subnet, a default route through the gateway, and the gateway answers', () => {
    const r = w.run([], ['sh', '-c', 'ip -o -4 addr show eth0; ip route; ping -c1 -W2 10.88.0.1 >/dev/null && echo gateway-ok']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/eth0\s+inet 10\.88\.\d+\.\d+\/16/);
    expect(r.stdout).toContain('default via 10.88.0.1 dev eth0');
    expect(r.stdout).toContain('gateway-ok');
    const inspect = JSON.parse(w.tsrunOk(['network', 'inspect', 'tsrun']));
    expect(inspect).toMatchObject({ name: 'tsrun', driver: 'bridge', bridge: 'tsrun0', subnet4: '10.88.0.0/16', gateway4: '10.88.0.1' });
  });

  it('--net bridge is the same network as no --net at all', () => {
    const r = w.run(['--net', 'bridge'], ['sh', '-c', 'ip -o -4 addr show eth0']);
    expect(r.stdout).toMatch(/inet 10\.88\./);
  });

  it('containers reach each other by IP', async () => {
    const server = await w.start([], HTTPD);
    await w.waitHttp(w.ip(server.id));
    const r = w.run([], ['timeout', '3', 'wget', '-qO-', `http://${w.ip(server.id)}/`]);
    expect(r.stdout.trim()).toBe(PAGE);
    await server.stop();
  });

  it('outbound traffic is masqueraded: the outside sees the host address', async () => {
    const listener = w.outside.spawn(process.execPath, ['-e', `require('net').createServer((s) => s.end(s.remoteAddress + '\\n')).listen(9000, '${OUTSIDE_IP}', () => console.log('listening'))`]);
    try {
      await new Promise((resolve) => listener.stdout!.once('data', resolve));
      const r = w.run([], ['nc', '-w', '3', OUTSIDE_IP, '9000']);
      expect(r.stdout.trim()).toBe(HOST_UPLINK_IP);
    } finally {
      listener.kill();
    }
  });

  it('a published port is reachable from outside, from the host (its address and 127.0.0.1), and by hairpin', async () => {
    const server = await w.start(['-p', '8080:80'], HTTPD);
    await w.waitHttp(w.ip(server.id));
    try {
      expect(w.outside.httpGet(`http://${HOST_UPLINK_IP}:8080/`)?.trim()).toBe(PAGE);
      expect(w.host.ns.httpGet(`http://${HOST_UPLINK_IP}:8080/`)?.trim()).toBe(PAGE);
      expect(w.host.ns.httpGet('http://127.0.0.1:8080/')?.trim()).toBe(PAGE);
      // hairpin: a neighbour, and the server itself, through the host's address
      const neighbour = w.run([], ['timeout', '3', 'wget', '-qO-', `http://${HOST_UPLINK_IP}:8080/`]);
      expect(neighbour.stdout.trim()).toBe(PAGE);
      const self = w.inContainer(server.id, 'tsrun', `timeout 3 wget -qO- http://${HOST_UPLINK_IP}:8080/`);
      expect(self.stdout.trim()).toBe(PAGE);
      // the container port itself is not open on the host
      expect(w.outside.httpGet(`http://${HOST_UPLINK_IP}:80/`, 1500)).toBeUndefined();
    } finally {
      await server.stop();
    }
    // once the container is gone, so is the port
    expect(w.outside.httpGet(`http://${HOST_UPLINK_IP}:8080/`, 1500)).toBeUndefined();
  });

  it('publishes UDP and port ranges', async () => {
    const server = await w.start(['-p', '5353:53/udp', '-p', '8100-8101:8100-8101'], 'httpd -f -p 8101 -h /var/www');
    await w.waitHttp(w.ip(server.id), 8101);
    // busybox has no UDP server: answer on the container's port 53 from a process placed in the
    // container's network namespace, which is where the DNAT must deliver.
    const echo = w.host.ns.spawn('nsenter', [`--net=${w.endpoint(server.id).netnsPath}`, '--', process.execPath, '-e',
      "const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send('pong:'+m,r.port,r.address));s.bind(53,()=>console.log('bound'))"]);
    try {
      await new Promise((resolve) => echo.stdout!.once('data', resolve));
      const udp = w.outside.exec(process.execPath, ['-e', `const s=require('dgram').createSocket('udp4');s.on('message',(m)=>{process.stdout.write(m);process.exit(0)});s.send('ping',5353,'${HOST_UPLINK_IP}');setTimeout(()=>process.exit(1),3000)`]);
      expect(udp.stdout).toBe('pong:ping');
      expect(w.outside.httpGet(`http://${HOST_UPLINK_IP}:8101/`)?.trim()).toBe(PAGE);
      expect(w.outside.httpGet(`http://${HOST_UPLINK_IP}:8100/`, 1500)).toBeUndefined(); // published, nothing listening
    } finally {
      echo.kill();
      await server.stop();
    }
  });

  it('a static --ip is honoured, and refused while another container holds it', async () => {
    const holder = await w.start(['--ip', '10.88.7.7'], 'sleep 600');
    try {
      expect(w.ip(holder.id)).toBe('10.88.7.7');
      const r = w.run(['--ip', '10.88.7.7'], ['true']);
      expect(r.status).toBe(125);
      expect(r.stderr).toMatch(/^tsrun: address 10\.88\.7\.7 is already in use by container .* on network tsrun\n$/);
    } finally {
      await holder.stop();
    }
  });

  it('a host port already published is refused with one line, and nothing of the second container stays', async () => {
    const holder = await w.start(['-p', '8300:80'], HTTPD);
    try {
      const r = w.run(['-p', '8300:80'], ['true']);
      expect(r.status).toBe(125);
      expect(r.stderr).toMatch(/^tsrun: host port 8300\/tcp is already published by container .*\n$/);
      const inspect = JSON.parse(w.tsrunOk(['network', 'inspect', 'tsrun']));
      expect(inspect.endpoints.map((e: { containerId: string }) => e.containerId)).toEqual([holder.id]);
    } finally {
      await holder.stop();
    }
  });

  it('sets a requested MAC address', () => {
    const r = w.run(['--mac', '02:42:ac:11:00:99'], ['cat', '/sys/class/net/eth0/address']);
    expect(r.stdout.trim()).toBe('02:42:ac:11:00:99');
  });
});

describe('a networked foreground run ends as its container did, torn down first (it leaves through _exit)', () => {
  it('passes the exit status, stdout and stderr through with a published port', () => {
    const r = w.run(['-p', '8600:80'], ['sh', '-c', 'echo out; echo err >&2; exit 7']);
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 7, stdout: 'out\n', stderr: 'err\n' });
    expect(w.run(['-p', '8600:80'], ['true']).status).toBe(0);
  });

  it('a container killed by signal N exits 128+N', async () => {
    const id = uniqueId('kill');
    w.ids.push(id);
    const child = w.host.spawnTsrun(['run', '--name', id, '-p', '8601:80', w.bundle, '--', 'sleep', '1000']);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    const pidFile = path.join(w.host.root, 'run', 'containers', id, 'pid');
    await waitFor('the container to start', () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').length > 0);
    process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
    expect(await exited).toBe(137);
  });

  it('SIGTERM sent to tsrun reaches the container, and tsrun exits with its status', async () => {
    const id = uniqueId('sig');
    w.ids.push(id);
    const child = w.host.spawnTsrun(['run', '--name', id, '-p', '8602:80', w.bundle, '--', 'sh', '-c', 'trap "echo got-TERM; exit 43" TERM; echo ready; while true; do sleep 0.05; done']);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    await waitFor('the container to trap signals', () => out.includes('ready'));
    child.kill('SIGTERM');
    expect(await exited).toBe(43);
    expect(out).toContain('got-TERM');
  });
});

describe('user-defined networks', () => {
  afterAll(() => {
    w.host.tsrun(['network', 'rm', '--force', 'neta', 'netb', 'internal1', 'quiet', 'dual']);
  });

  it('two networks cannot reach each other', async () => {
    w.tsrunOk(['network', 'create', 'neta', '--subnet', '10.31.1.0/24']);
    w.tsrunOk(['network', 'create', 'netb', '--subnet', '10.31.2.0/24']);
    const b = await w.start(['--net', 'netb'], HTTPD);
    try {
      const bIp = w.ip(b.id, 'netb');
      await w.waitHttp(bIp);
      expect(bIp).toMatch(/^10\.31\.2\./);
      const fromA = w.run(['--net', 'neta'], ['sh', '-c', `ping -c1 -W1 ${bIp} >/dev/null && echo reached; timeout 2 wget -qO- http://${bIp}/ || echo blocked`]);
      expect(fromA.stdout).not.toContain('reached');
      expect(fromA.stdout).toContain('blocked');
      const fromB = w.run(['--net', 'netb'], ['timeout', '3', 'wget', '-qO-', `http://${bIp}/`]);
      expect(fromB.stdout.trim()).toBe(PAGE);
    } finally {
      await b.stop();
    }
  });

  it('an --internal network has no way out, but its containers talk', async () => {
    w.tsrunOk(['network', 'create', 'internal1', '--subnet', '10.31.3.0/24', '--internal']);
    const peer = await w.start(['--net', 'internal1'], HTTPD);
    await w.waitHttp(w.ip(peer.id, 'internal1'));
    try {
      const r = w.run(['--net', 'internal1'], ['sh', '-c', `ping -c1 -W1 ${OUTSIDE_IP} >/dev/null && echo escaped; timeout 3 wget -qO- http://${w.ip(peer.id, 'internal1')}/`]);
      expect(r.stdout).not.toContain('escaped');
      expect(r.stdout).toContain(PAGE);
    } finally {
      await peer.stop();
    }
  });

  it('icc=false: containers of one network cannot reach each other but still reach the outside', async () => {
    w.tsrunOk(['network', 'create', 'quiet', '--subnet', '10.31.4.0/24', '--opt', 'icc=false']);
    const peer = await w.start(['--net', 'quiet'], HTTPD);
    await w.waitHttp(w.ip(peer.id, 'quiet'));
    try {
      const r = w.run(['--net', 'quiet'], ['sh', '-c', `timeout 2 wget -qO- http://${w.ip(peer.id, 'quiet')}/ || echo isolated; ping -c1 -W2 ${OUTSIDE_IP} >/dev/null && echo outside-ok`]);
      expect(r.stdout).toContain('isolated');
      expect(r.stdout).not.toContain(PAGE);
      expect(r.stdout).toContain('outside-ok');
    } finally {
      await peer.stop();
    }
  });

  it('an IPv6 subnet gives dual-stack addresses; IPv6 works between containers and to the gateway', async () => {
    w.tsrunOk(['network', 'create', 'dual', '--subnet', '10.31.5.0/24', '--ipv6-subnet', 'fd00:31:5::/64']);
    const peer = await w.start(['--net', 'dual'], 'httpd -f -p [::]:80 -h /var/www');
    try {
      const v6 = w.endpoint(peer.id, 'dual').ipv6!.address;
      await w.waitHttp(v6);
      expect(v6).toMatch(/^fd00:31:5::/);
      const r = w.run(['--net', 'dual'], ['sh', '-c', `ping6 -c1 -W2 fd00:31:5::1 >/dev/null && echo gw6-ok; timeout 3 wget -qO- http://[${v6}]/`]);
      expect(r.stdout).toContain('gw6-ok');
      expect(r.stdout).toContain(PAGE);
    } finally {
      await peer.stop();
    }
  });

  it('network ls, inspect and rm; rm is refused while a container is attached', async () => {
    w.tsrunOk(['network', 'create', 'tmpnet', '--subnet', '10.31.6.0/24', '--mtu', '1400']);
    expect(w.tsrunOk(['network', 'ls', '-q']).split('\n')).toContain('tmpnet');
    const c = await w.start(['--net', 'tmpnet', '-p', '8400:80'], HTTPD);
    try {
      const info = JSON.parse(w.tsrunOk(['network', 'inspect', 'tmpnet']));
      expect(info).toMatchObject({ name: 'tmpnet', mtu: 1400, bridge: 'ts-tmpnet', bridgeState: { exists: true, up: true, mtu: 1400 } });
      expect(info.endpoints).toEqual([expect.objectContaining({ containerId: c.id, ipv4: w.ip(c.id, 'tmpnet'), ports: [{ hostPort: 8400, containerPort: 80, protocol: 'tcp' }] })]);
      expect(w.inContainer(c.id, 'tmpnet', 'cat /sys/class/net/eth0/mtu').stdout.trim()).toBe('1400');
      const refused = w.host.tsrun(['network', 'rm', 'tmpnet']);
      expect(refused.status).toBe(125);
      expect(refused.stderr).toMatch(/^tsrun: network tmpnet has 1 attached container/);
    } finally {
      await c.stop();
    }
    w.tsrunOk(['network', 'rm', 'tmpnet']);
    expect(w.host.ns.linkNames()).not.toContain('ts-tmpnet');
    expect(w.host.tsrun(['network', 'inspect', 'tmpnet']).stderr).toMatch(/network tmpnet not found/);
  });
});

describe('bad input: one line, exit 125, nothing changed', () => {
  const cases: [string, string[], RegExp][] = [
    ['an invalid subnet', ['network', 'create', 'x1', '--subnet', '10.0.0.0/33'], /invalid --subnet/],
    ['a subnet with host bits', ['network', 'create', 'x1', '--subnet', '10.40.0.1/24'], /host bits are set; did you mean 10\.40\.0\.0\/24/],
    ['an overlapping subnet', ['network', 'create', 'x1', '--subnet', '10.88.128.0/17'], /overlaps network tsrun/],
    ['a subnet overlapping a host route', ['network', 'create', 'x1', '--subnet', '198.51.100.0/25'], /overlaps a host route/],
    ['a gateway outside its subnet', ['network', 'create', 'x1', '--subnet', '10.41.0.0/24', '--gateway', '10.42.0.1'], /gateway 10\.42\.0\.1 .*not in subnet/],
    ['a network name too long for a bridge', ['network', 'create', 'averyveryverylongname', '--subnet', '10.43.0.0/24'], /network name averyveryverylongname is too long to derive a bridge name: pass --bridge/],
    ['an invalid network name', ['network', 'create', 'bad/name'], /invalid network name "bad\/name"/],
    ['a bridge name too long', ['network', 'create', 'x1', '--bridge', 'bridge-name-too-long'], /invalid --bridge name "bridge-name-too-long"/],
    ['an unknown network', ['run', '--net', 'nosuchnet', 'BUNDLE', '--', 'true'], /network nosuchnet not found/],
    ['--ip outside the subnet', ['run', '--ip', '10.99.0.5', 'BUNDLE', '--', 'true'], /10\.99\.0\.5.*not in|outside/],
    ['a malformed -p', ['run', '-p', '80', 'BUNDLE', '--', 'true'], /invalid -p "80"/],
    ['a malformed --mac', ['run', '--mac', '01:00:5e:00:00:01', 'BUNDLE', '--', 'true'], /invalid --mac/],
    ['an unknown --opt', ['network', 'create', 'x1', '--opt', 'color=blue'], /unknown option color/],
  ];

  it.each(cases)('%s', (_what, args, message) => {
    // the default network exists first, so "overlaps network tsrun" can be checked
    w.run([], ['true']);
    // that run's veth goes with its namespace, asynchronously: let it go before the snapshot
    w.host.ns.settledLinks(/^tsv/);
    const before = { links: w.host.ns.linkNames(), nets: w.tsrunOk(['network', 'ls', '-q']), nft: w.host.ns.exec('nft', ['list', 'table', 'inet', 'tsrun']).stdout };
    const r = w.host.tsrun(args.map((a) => (a === 'BUNDLE' ? w.bundle : a)));
    expect(r.status).toBe(125);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^tsrun: /);
    expect(lines[0]).toMatch(message);
    expect({ links: w.host.ns.linkNames(), nets: w.tsrunOk(['network', 'ls', '-q']), nft: w.host.ns.exec('nft', ['list', 'table', 'inet', 'tsrun']).stdout }).toEqual(before);
  });
});

describe('a crash leaves nothing tsrun gc cannot remove', () => {
  it('tsrun killed with SIGKILL: gc removes the container, its veth, lease, port and pin', async () => {
    const c = await w.start(['-p', '8500:80'], HTTPD, 'crash');
    const veth = w.endpoint(c.id).hostIfname;
    c.child.kill('SIGKILL');
    await new Promise((resolve) => c.child.once('exit', resolve));
    expect(w.host.ns.linkNames()).toContain(veth); // the crash left it behind
    const report = JSON.parse(w.tsrunOk(['gc']));
    expect(report.containers).toEqual([c.id]);
    expect(w.host.ns.linkNames()).not.toContain(veth);
    expect(w.host.runcList()).toEqual([]);
    // the port is free again
    const again = await w.start(['-p', '8500:80'], HTTPD);
    await again.stop();
  });
});

describe('runc started before the attach, held at its gate (shim/runc-gate.ts)', () => {
  /** Pids of runc processes (runc run, runc init, its hooks) whose command line names `id`. */
  const runcProcesses = (id: string): string[] =>
    readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
          return cmd.some((a) => a.endsWith('runc')) && cmd.includes(id);
        } catch {
          return false;
        }
      });

  it('the container starts only once the network is attached: its first look finds eth0 and the published port', () => {
    const r = w.run(['-p', '8502:80'], ['sh', '-c', 'ip -o -4 addr show eth0; ip route']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/eth0\s+inet 10\.88\./);
    expect(r.stdout).toContain('default via 10.88.0.1');
  });

  it('tsrun killed while runc waits at the gate: the container never runs, runc gives up on its own, gc removes the rest', async () => {
    const id = uniqueId('gate');
    w.ids.push(id);
    const child = w.host.spawnTsrun(['run', '--name', id, '-p', '8503:80', w.bundle, '--', 'sh', '-c', 'echo the-container-ran'], { TSRUN_FAULT_PAUSE_AT: 'gate:stop' });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      await waitFor('tsrun held at the gate', () => isStopped(child.pid!));
      expect(runcProcesses(id).length).toBeGreaterThan(0); // runc started before the attach was done
      expect(w.endpoint(id).hostIfname).toMatch(/./); // attached
    } finally {
      child.kill('SIGKILL');
    }
    await exited;
    // Its gate's pipe gone with tsrun, runc's hook fails and runc removes what it had created.
    await waitFor('runc to give up', () => runcProcesses(id).length === 0);
    expect(w.host.runcList()).toEqual([]);
    expect(out).not.toContain('the-container-ran');
    const report = JSON.parse(w.tsrunOk(['gc']));
    expect(report.containers).toEqual([id]);
    expect(w.leaks()).toEqual([]);
  });

  it('a signal while runc waits at the gate aborts the setup: 125, one line, runc gone, nothing left', async () => {
    const id = uniqueId('gates');
    w.ids.push(id);
    const child = w.host.spawnTsrun(['run', '--name', id, '-p', '8504:80', w.bundle, '--', 'sh', '-c', 'echo the-container-ran'], { TSRUN_FAULT_PAUSE_AT: 'gate:stop' });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await signalWhileStopped(child.pid!, 'SIGTERM', 'tsrun held at the gate');
    expect(await exited).toBe(125);
    expect(err.trim().split('\n')).toEqual([expect.stringContaining('interrupted by SIGTERM during setup')]);
    expect(out).toBe('');
    expect(runcProcesses(id)).toEqual([]);
    expect(w.host.runcList()).toEqual([]);
    expect(existsSync(path.join(w.host.runcRoot, id))).toBe(false); // runc list skips a directory without state.json
  });

  it('a Ctrl-C while runc waits at the gate (SIGINT to tsrun, runc and the gate hook, as a terminal sends it): 125, one line', async () => {
    const id = uniqueId('gatei');
    w.ids.push(id);
    const child = w.host.spawnTsrun(['run', '--name', id, '-p', '8506:80', w.bundle, '--', 'sh', '-c', 'echo the-container-ran'], { TSRUN_FAULT_PAUSE_AT: 'gate:stop' });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    /** The gate's hook: the sh reading tsrun's pipe through /proc. */
    const gateHooks = (): string[] =>
      readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(`/proc/${child.pid}/fd/`);
          } catch {
            return false;
          }
        });
    try {
      await waitFor('tsrun held at the gate', () => isStopped(child.pid!));
      await waitFor('runc at its gate hook', () => gateHooks().length > 0);
      for (const pid of [...runcProcesses(id), ...gateHooks()]) process.kill(Number(pid), 'SIGINT');
      process.kill(child.pid!, 'SIGINT');
      // A hook the signal ended made runc fail the creation and print its own line by now.
      await new Promise((resolve) => setTimeout(resolve, 500));
    } finally {
      process.kill(child.pid!, 'SIGCONT');
    }
    expect(await exited).toBe(125);
    expect(err.trim().split('\n')).toEqual([expect.stringContaining('interrupted by SIGINT during setup')]);
    expect(out).toBe('');
    expect(runcProcesses(id)).toEqual([]);
    expect(existsSync(path.join(w.host.runcRoot, id))).toBe(false);
  });

  it('an attach refused while runc waits at the gate leaves no runc directory: the same --name runs again', () => {
    const id = uniqueId('gater');
    w.ids.push(id);
    const bad = w.host.tsrun(['run', '--name', id, '--ip', '10.99.0.5', '-p', '8505:80', w.bundle, '--', 'true']);
    expect(bad.status).toBe(125);
    expect(bad.stderr.trimEnd().split('\n')).toEqual([expect.stringMatching(/^tsrun: .*10\.99\.0\.5.*not in subnet/)]);
    // runc killed before its state.json: the directory it made first would refuse the id to every later runc
    expect(existsSync(path.join(w.host.runcRoot, id))).toBe(false);
    const again = w.host.tsrun(['run', '--name', id, '-p', '8505:80', w.bundle, '--', 'echo', 'ran']);
    expect(again.stderr).toBe('');
    expect(again.status).toBe(0);
    expect(again.stdout).toBe('ran\n');
  });
});

describe('the default subnet avoids the host routes', () => {
  let other: BridgeWorld;
  beforeAll(async () => {
    other = await BridgeWorld.create('defsub', { outside: false });
    other.host.ns.sh('ip link add probe0 type veth peer name probe1 && ip addr add 10.88.3.1/16 dev probe0 && ip link set probe0 up');
  });
  afterAll(async () => {
    await other.destroy();
  });
  it('picks the next free /16 when 10.88.0.0/16 is routed already', () => {
    const r = other.run([], ['ip', '-o', '-4', 'addr', 'show', 'eth0']);
    expect(r.stdout).toMatch(/inet 10\.89\./);
    expect(other.leaks()).toEqual([]);
  });
});

describe('concurrency', () => {
  it('100 concurrent attaches from 4 processes never give out the same address twice', async () => {
    w.run([], ['true']); // the default network exists first, so the processes race only for addresses
    const fixture = path.join(PROJECT_ROOT, 'dist/test/integration/fixtures/concurrent-attach.js');
    const runs = [0, 1, 2, 3].map((p) => {
      const child = w.host.ns.spawn(process.execPath, [fixture, `cc${p}`, '25', 'tsrun'], { env: w.host.env });
      let out = '';
      let err = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      return new Promise<{ addresses: string[]; mismatches: string[] }>((resolve, reject) =>
        child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`fixture ${p} exited ${code}: ${err}`)))),
      );
    });
    const results = await Promise.all(runs);
    const all = results.flatMap((r) => r.addresses);
    expect(all).toHaveLength(100);
    expect(new Set(all).size).toBe(100);
    expect(results.flatMap((r) => r.mismatches)).toEqual([]);
  });
});
