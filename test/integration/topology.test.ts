// `tsrun topology` and `tsrun network inspect --format`: what tsrun built in a sandbox host, with
// real containers attached, as a tree, a Graphviz graph and an SVG picture.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { BridgeWorld } from '../harness/bridge-world.js';

let w: BridgeWorld;
beforeAll(async () => {
  w = await BridgeWorld.create('topo', { outside: false });
  w.tsrunOk(['network', 'create', 'tsTweb', '--subnet', '10.47.0.0/24', '--ipv6-subnet', 'fd00:47::/64']);
});
afterAll(async () => {
  w.tsrunOk(['network', 'rm', 'tsTweb']);
  await w.destroy();
});
afterEach(async () => {
  await w.stopAll();
  expect(w.leaks()).toEqual([]);
});

describe('tsrun topology', () => {
  it('shows networks, bridges, containers with addresses and published ports, as text, dot and svg', async () => {
    const web = await w.start(['--net', 'tsTweb', '-p', '18080:80', '-p', '127.0.0.1:15353:53/udp'], 'sleep 60', 'tw');
    const plain = await w.start([], 'sleep 60', 'td');
    const ip = w.ip(web.id, 'tsTweb');
    const veth = w.endpoint(web.id, 'tsTweb').hostIfname;

    const text = w.tsrunOk(['topology']);
    expect(text).toMatch(/^host \S+\n/);
    expect(text).toContain('network tsTweb  (bridge)  10.47.0.0/24 fd00:47::/64');
    expect(text).toContain('bridge ts-tsTweb  (up)  10.47.0.1 fd00:47::1');
    expect(text).toContain(`container ${web.id}  eth0 ${ip} `);
    expect(text).toContain(`via ${veth}  ports 18080→80/tcp, 127.0.0.1:15353→53/udp`);
    expect(text).toContain('bridge tsrun0  (up)  10.88.0.1');
    expect(text).toContain(`container ${plain.id}  eth0 10.88.`);

    const dot = w.tsrunOk(['topology', '--format', 'dot']);
    expect(dot).toContain('subgraph "cluster_tsTweb" {');
    expect(dot).toContain(`"tsTweb/device" -- "tsTweb/ctr/${web.id}" [label="${veth}"];`);

    const svg = w.tsrunOk(['topology', '--format', 'svg']);
    expect(svg).toContain('<svg');
    expect(svg).toContain(`>eth0 ${ip}<`); // dot writes '-' in ids as &#45;

    // one network only, in every picture format
    const one = w.tsrunOk(['network', 'inspect', 'tsTweb', '--format', 'text']);
    expect(one).toContain(web.id);
    expect(one).not.toContain(plain.id);
    expect(w.tsrunOk(['network', 'inspect', 'tsTweb', '--format', 'dot'])).not.toContain('cluster_tsrun"');
    expect(JSON.parse(w.tsrunOk(['network', 'inspect', 'tsTweb'])).endpoints).toHaveLength(1);
    expect(w.tsrunOk(['topology', 'tsTweb'])).not.toContain('network tsrun ');

    await web.stop();
    await plain.stop();
    expect(w.tsrunOk(['topology', 'tsTweb'])).toContain('no containers on this host');
  });

  it('says in one line that svg needs Graphviz when dot is missing, and refuses unknown formats', () => {
    const r = w.host.tsrun(['topology', '--format', 'svg'], { env: { TSRUN_DOT: '/nonexistent/dot' } });
    expect(r.status).toBe(125);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('tsrun: --format svg needs Graphviz (the dot program), which is not installed: apt-get install graphviz, or use --format dot\n');
    const bad = w.host.tsrun(['topology', '--format', 'png']);
    expect(bad.status).toBe(125);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    const unknown = w.host.tsrun(['network', 'inspect', 'nope', '--format', 'dot']);
    expect(unknown.status).toBe(125);
    expect(unknown.stderr).toBe('tsrun: network nope not found (tsrun network ls lists them)\n');
  });
});
