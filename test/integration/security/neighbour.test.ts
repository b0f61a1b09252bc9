// The hostile neighbour: attacks from the LAN ("outside", linked to the sandbox host by a veth)
// and from containers against published ports and container networks. Each test is an attack
// that worked before tsrun's firewall failed closed; real packets, real nftables, real runc.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { BridgeWorld, HOST_UPLINK_IP, OUTSIDE_IP } from '../../harness/bridge-world.js';
import { macOf, sendUdp4, sendUdp6, udpSink } from './frames.js';

let w: BridgeWorld;
beforeAll(async () => {
  w = await BridgeWorld.create('i10nb');
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
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('published addresses', () => {
  it('refuses to publish on an address the host does not have, with one line and nothing left', () => {
    const r = w.run(['-p', '10.77.0.1:8080:80'], ['true']);
    expect(r.status).toBe(125);
    expect(r.stderr).toBe('tsrun: cannot publish 10.77.0.1:8080: 10.77.0.1 is not an address of this host (use one of its addresses, or none for all)\n');
    const v6 = w.run(['-p', '[2001:db8::77]:8080:80'], ['true']);
    expect(v6.status).toBe(125);
    expect(v6.stderr).toMatch(/^tsrun: cannot publish \[2001:db8::77\]:8080: .* not an address of this host .*\n$/);
  });

  it('a published address that stops being local never redirects the host\'s traffic meant for another machine', async () => {
    w.host.ns.sh('ip addr add 192.0.2.50/32 dev uplink0');
    const server = await w.start(['-p', '192.0.2.50:8080:80'], HTTPD);
    // the real 192.0.2.50 is out there; the host learns a route to it
    w.outside.sh('ip addr add 192.0.2.50/32 dev uplink1');
    const real = w.outside.spawn(process.execPath, ['-e', "require('http').createServer((q,s)=>s.end('the real server')).listen(8080,'192.0.2.50',()=>console.log('up'))"]);
    try {
      await new Promise((resolve) => real.stdout!.once('data', resolve));
      await w.waitHttp(w.ip(server.id));
      expect(w.host.ns.httpGet('http://192.0.2.50:8080/')?.trim()).toBe(PAGE); // local: published
      w.host.ns.sh(`ip addr del 192.0.2.50/32 dev uplink0 && ip route add 192.0.2.50/32 via ${OUTSIDE_IP}`);
      expect(w.host.ns.httpGet('http://192.0.2.50:8080/')?.trim()).toBe('the real server');
    } finally {
      real.kill();
      w.host.ns.exec('ip', ['route', 'del', '192.0.2.50/32']);
      w.outside.exec('ip', ['addr', 'del', '192.0.2.50/32', 'dev', 'uplink1']);
      await server.stop();
    }
  });

  it('a port published on 127.0.0.1 is not reachable from a LAN neighbour addressing 127.0.0.1 at the host\'s MAC', async () => {
    const server = await w.start(['-p', '127.0.0.1:5300:53/udp', '-p', '5301:53/udp'], 'sleep 600');
    const sink = udpSink(w.host.ns, w.endpoint(server.id).netnsPath, 53);
    try {
      await sink.ready;
      const hostMac = macOf(w.host.ns, 'uplink0');
      // control: the same hand-made frame to the wildcard port on the host's address arrives
      sendUdp4(w.outside, { ifname: 'uplink1', dmac: hostMac, src: OUTSIDE_IP, dst: HOST_UPLINK_IP, dport: 5301, payload: 'control' });
      sendUdp4(w.outside, { ifname: 'uplink1', dmac: hostMac, src: OUTSIDE_IP, dst: '127.0.0.1', dport: 5300, payload: 'attack' });
      await sleep(500);
      expect(sink.received()).toContain('control');
      expect(sink.received()).not.toContain('attack');
    } finally {
      sink.stop();
      await server.stop();
    }
  });
});

describe('conntrack', () => {
  it('a UDP flow to a published port follows the port to a new container after the old one is removed', async () => {
    // The client keeps one source port, as a DNS or game client does: one conntrack flow.
    const sendFromOutside = (payload: string) =>
      w.outside.exec(process.execPath, ['-e', `const s=require('dgram').createSocket({type:'udp4',reuseAddr:true});s.bind(41000,()=>s.send('${payload}',5400,'${HOST_UPLINK_IP}',()=>s.close()))`]);
    const first = await w.start(['-p', '5400:53/udp'], 'sleep 600');
    const sink1 = udpSink(w.host.ns, w.endpoint(first.id).netnsPath, 53);
    await sink1.ready;
    sendFromOutside('one');
    await sleep(300);
    expect(sink1.received()).toContain('one');
    sink1.stop();
    // Keep the flow alive while the first container goes and the second takes the port.
    const keepAlive = setInterval(() => sendFromOutside('ping'), 500);
    let second: Awaited<ReturnType<typeof w.start>> | undefined;
    let sink2: ReturnType<typeof udpSink> | undefined;
    try {
      await first.stop();
      second = await w.start(['-p', '5400:53/udp', '--ip', '10.88.9.9'], 'sleep 600');
      sink2 = udpSink(w.host.ns, w.endpoint(second.id).netnsPath, 53);
      await sink2.ready;
      clearInterval(keepAlive);
      sendFromOutside('two');
      await sleep(500);
      expect(sink2.received()).toContain('two');
    } finally {
      clearInterval(keepAlive);
      sink2?.stop();
      await second?.stop();
    }
  });
});

describe('default-deny into container networks', () => {
  afterAll(() => {
    w.host.tsrun(['network', 'rm', '--force', 'i10dual', 'i10quiet']);
  });

  it('a neighbour that routes a container subnet via the host reaches no unpublished port (IPv4 and IPv6)', async () => {
    w.tsrunOk(['network', 'create', 'i10dual', '--subnet', '10.41.0.0/24', '--ipv6-subnet', 'fd41::/64']);
    w.host.ns.sh('ip -6 addr add fd00:198::1/64 dev uplink0 nodad');
    w.outside.sh('ip -6 addr add fd00:198::2/64 dev uplink1 nodad');
    w.outside.sh(`ip route add 10.41.0.0/24 via ${HOST_UPLINK_IP} && ip -6 route add fd41::/64 via fd00:198::1`);
    const server = await w.start(['--net', 'i10dual', '-p', '8088:80'], HTTPD);
    try {
      const ep = w.endpoint(server.id, 'i10dual');
      const v4 = ep.ipv4!.address;
      const v6 = ep.ipv6!.address;
      await w.waitHttp(v4);
      // the host itself and the published port work
      expect(w.host.ns.httpGet(`http://[${v6}]/`)?.trim()).toBe(PAGE);
      expect(w.outside.httpGet(`http://${HOST_UPLINK_IP}:8088/`)?.trim()).toBe(PAGE);
      // routed straight at the container: dropped
      expect(w.outside.httpGet(`http://${v4}/`, 1500)).toBeUndefined();
      expect(w.outside.httpGet(`http://[${v6}]/`, 1500)).toBeUndefined();
      // the container still reaches the neighbour (egress and its replies)
      const out = w.inContainer(server.id, 'i10dual', `ping -c1 -W2 ${OUTSIDE_IP} >/dev/null && ping -c1 -W2 fd00:198::2 >/dev/null && echo egress-ok`);
      expect(out.stdout).toContain('egress-ok');
    } finally {
      await server.stop();
      w.outside.exec('ip', ['route', 'del', '10.41.0.0/24']);
      w.outside.exec('ip', ['-6', 'route', 'del', 'fd41::/64']);
      w.outside.exec('ip', ['-6', 'addr', 'del', 'fd00:198::2/64', 'dev', 'uplink1']);
      w.host.ns.exec('ip', ['-6', 'addr', 'del', 'fd00:198::1/64', 'dev', 'uplink0']);
    }
  });

  it('a hand-made IPv6 datagram routed at a container from the LAN does not arrive', async () => {
    const server = await w.start(['--net', 'i10dual', '-p', '5354:5353/udp'], 'sleep 600');
    const ep = w.endpoint(server.id, 'i10dual');
    const sink = udpSink(w.host.ns, ep.netnsPath, 5353, 6);
    w.host.ns.sh('ip -6 addr add fd00:198::1/64 dev uplink0 nodad');
    try {
      await sink.ready;
      const dmac = macOf(w.host.ns, 'uplink0');
      // control: the same frame to the published port on the host's address arrives
      sendUdp6(w.outside, { ifname: 'uplink1', dmac, src: 'fd00:198::2', dst: 'fd00:198::1', dport: 5354, payload: 'published6' });
      sendUdp6(w.outside, { ifname: 'uplink1', dmac, src: 'fd00:198::2', dst: ep.ipv6!.address, dport: 5353, payload: 'routed6' });
      await sleep(500);
      expect(sink.received()).toContain('published6');
      expect(sink.received()).not.toContain('routed6');
    } finally {
      sink.stop();
      w.host.ns.exec('ip', ['-6', 'addr', 'del', 'fd00:198::1/64', 'dev', 'uplink0']);
      await server.stop();
    }
  });

  // A LAN neighbour sending with a container's address as its source (no route to the subnet
  // needed): the host forwarded the datagram back out of the uplink and masqueraded it as a
  // container's outbound flow (a relay speaking with the host's address), and the neighbour's
  // answer to the host's address came back through that flow as an established reply, into a
  // port the container never published.
  it('a neighbour sending from a container\'s address gets no relay through the host\'s NAT, and no way back into an unpublished port', async () => {
    const server = await w.start(['--net', 'i10dual'], 'sleep 600');
    const ep = w.endpoint(server.id, 'i10dual');
    w.host.ns.sh('ip -6 addr add fd00:198::1/64 dev uplink0 nodad');
    w.outside.sh('ip -6 addr add fd00:198::2/64 dev uplink1 nodad');
    // the neighbour's listeners: whatever arrives is printed and answered to its source
    const answer = (fam: 4 | 6, addr: string, port: number) =>
      `{const s=require('dgram').createSocket('udp${fam}');s.on('message',(m,r)=>{console.log('relayed'+${fam}+' '+r.address);s.send('injected${fam}',r.port,r.address)});s.bind(${port},'${addr}',()=>console.log('bound'))}`;
    const listener = w.outside.spawn(process.execPath, ['-e', answer(4, OUTSIDE_IP, 41001) + answer(6, 'fd00:198::2', 41002)]);
    let heard = '';
    listener.stdout!.on('data', (d: Buffer) => (heard += d.toString()));
    // one dual-stack socket on the source port the hand-made datagrams carry (40000)
    const sink = udpSink(w.host.ns, ep.netnsPath, 40000, 6);
    try {
      await sink.ready;
      await new Promise((r) => setTimeout(r, 300));
      const dmac = macOf(w.host.ns, 'uplink0');
      sendUdp4(w.outside, { ifname: 'uplink1', dmac, src: ep.ipv4!.address, dst: OUTSIDE_IP, dport: 41001, payload: 'spoofed4' });
      sendUdp6(w.outside, { ifname: 'uplink1', dmac, src: ep.ipv6!.address, dst: 'fd00:198::2', dport: 41002, payload: 'spoofed6' });
      await sleep(800);
      expect(sink.received()).not.toContain('injected');
      expect(heard).not.toContain('relayed');
    } finally {
      listener.kill();
      sink.stop();
      w.outside.exec('ip', ['-6', 'addr', 'del', 'fd00:198::2/64', 'dev', 'uplink1']);
      w.host.ns.exec('ip', ['-6', 'addr', 'del', 'fd00:198::1/64', 'dev', 'uplink0']);
      await server.stop();
    }
  });

  it('icc=false: a container cannot reach its neighbour by routing through the gateway', async () => {
    w.tsrunOk(['network', 'create', 'i10quiet', '--subnet', '10.42.0.0/24', '-o', 'icc=false']);
    const b = await w.start(['--net', 'i10quiet'], 'sleep 600');
    const a = await w.start(['--net', 'i10quiet'], 'sleep 600');
    const bIp = w.ip(b.id, 'i10quiet');
    const sink = udpSink(w.host.ns, w.endpoint(b.id, 'i10quiet').netnsPath, 5353);
    // One-way datagrams: a TCP test would fail anyway on the reply, which B sends on-link.
    const sendFrom = (netnsPath: string, payload: string) =>
      w.host.ns.exec('nsenter', [`--net=${netnsPath}`, '--', process.execPath, '-e', `const s=require('dgram').createSocket('udp4');s.send('${payload}',5353,'${bIp}',()=>s.close())`]);
    try {
      await sink.ready;
      sendFrom(w.host.ns.path, 'from-host'); // control: the host reaches B
      w.inContainer(a.id, 'i10quiet', `ip route add ${bIp}/32 via 10.42.0.1`);
      sendFrom(w.endpoint(a.id, 'i10quiet').netnsPath, 'routed');
      await sleep(500);
      expect(sink.received()).toContain('from-host');
      expect(sink.received()).not.toContain('routed');
    } finally {
      sink.stop();
      await a.stop();
      await b.stop();
    }
  });
});

describe('host port reservations', () => {
  it('0.0.0.0 is the wildcard: a specific address cannot shadow it on the same port, and the reverse', async () => {
    const holder = await w.start(['-p', '0.0.0.0:8400:80'], HTTPD);
    try {
      const r = w.run(['-p', `${HOST_UPLINK_IP}:8400:80`], ['true']);
      expect(r.status).toBe(125);
      expect(r.stderr).toBe(`tsrun: host port ${HOST_UPLINK_IP}:8400/tcp is already published by container ${holder.id}\n`);
    } finally {
      await holder.stop();
    }
    const specific = await w.start(['-p', `${HOST_UPLINK_IP}:8401:80`], HTTPD);
    try {
      const r = w.run(['-p', '0.0.0.0:8401:80'], ['true']);
      expect(r.status).toBe(125);
      expect(r.stderr).toBe(`tsrun: host port 0.0.0.0:8401/tcp is already published by container ${specific.id}\n`);
    } finally {
      await specific.stop();
    }
  });

  it('refuses an annotation-sized flood of mappings with one line', () => {
    const ranges = Array.from({ length: 3 }, (_, i) => ['-p', `${20000 + i * 1000}-${20999 + i * 1000}:80`]).flat();
    const r = w.run(ranges, ['true']);
    expect(r.status).toBe(125);
    expect(r.stderr).toBe('tsrun: too many published ports: at most 1024 mappings per container\n');
  });
});
