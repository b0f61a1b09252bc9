import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { networkView, type Topology } from '../../../runtime/topology.js';
import { portText, toDot, toText } from '../../../shim/topology-format.js';

const topology: Topology = {
  host: 'h1',
  networks: [
    networkView({
      name: 'web', driver: 'bridge', bridge: 'ts-web', subnet4: '10.31.0.0/24', gateway4: '10.31.0.1', internal: false, icc: false,
      bridgeState: { exists: true, up: true },
      endpoints: [{ containerId: 'c1', ifname: 'eth0', hostIfname: 'tsv00000001', mac: '02:42:0a:1f:00:02', ipv4: '10.31.0.2', ports: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] }],
    }),
    networkView({ name: 'lan', driver: 'macvlan', bridge: '', parent: 'eth1', mode: 'bridge', subnet4: '192.168.1.0/24', internal: false, icc: true, parentState: { exists: false }, endpoints: [] }),
    networkView({
      name: 'ov', driver: 'overlay', bridge: 'ts-ov', vni: 4096, vxlan: 'tsvx4096', subnet4: '10.200.0.0/24', gateway4: '10.200.0.1', internal: false, icc: true,
      bridgeState: { exists: true, up: true },
      endpoints: [{ containerId: 'a1', ifname: 'eth0', hostIfname: 'tsv000000a1', ipv4: '10.200.0.2', ports: [] }],
      hosts: [
        { hostId: 'A', hostname: 'h1', address: '192.0.2.1', local: true, registered: true, endpoints: [{ containerId: 'a1', ipv4: '10.200.0.2' }] },
        { hostId: 'B', hostname: 'h"2', address: '192.0.2.2', local: false, registered: true, endpoints: [{ containerId: 'b1', ipv4: '10.200.0.3' }] },
      ],
    }),
  ],
};

describe('tsrun topology as text', () => {
  it('draws a tree: networks, their device, containers with addresses and ports, overlay hosts', () => {
    expect(toText(topology)).toBe(
      [
        'host h1',
        '├── network web  (bridge)  10.31.0.0/24  icc=false',
        '│   └── bridge ts-web  (up)  10.31.0.1',
        '│       └── container c1  eth0 10.31.0.2  via tsv00000001  ports 8080→80/tcp',
        '├── network lan  (macvlan bridge)  192.168.1.0/24',
        '│   └── parent eth1  (MISSING)',
        '│       └── no containers on this host',
        '└── network ov  (overlay)  10.200.0.0/24',
        '    └── bridge ts-ov  (up)  10.200.0.1',
        '        ├── container a1  eth0 10.200.0.2  via tsv000000a1',
        '        └── vxlan tsvx4096 (VNI 4096)',
        '            └── host h"2 192.0.2.2 (agent registered)',
        '                └── container b1  10.200.0.3',
        '',
      ].join('\n'),
    );
  });

  it('says so when there is nothing', () => {
    expect(toText({ host: 'h', networks: [] })).toMatch(/^host h\n└── no networks/);
  });

  it('writes published ports as docker does, IPv6 host addresses in brackets', () => {
    expect(portText({ hostIp: '::1', hostPort: 53, containerPort: 5353, protocol: 'udp' })).toBe('[::1]:53→5353/udp');
    expect(portText({ hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'tcp' })).toBe('127.0.0.1:8080→80/tcp');
  });
});

describe('tsrun topology as a Graphviz graph', () => {
  const dot = toDot(topology);

  it('has one cluster per network, the device under the host, containers and remote hosts under it', () => {
    expect(dot).toMatch(/^graph tsrun \{\n/);
    for (const n of ['web', 'lan', 'ov']) expect(dot).toContain(`subgraph "cluster_${n}" {`);
    expect(dot).toContain('\n  "host" -- "web/device";\n'); // outside the cluster, or it pulls the host in
    expect(dot).toContain('"web/device" -- "web/ctr/c1" [label="tsv00000001"];');
    expect(dot).toContain('label="c1\\neth0 10.31.0.2\\n8080→80/tcp"');
    expect(dot).toContain('"ov/vxlan" -- "ov/host/B" [style=dashed, label="VXLAN"];');
    expect(dot).toContain('"ov/host/B" -- "ov/host/B/b1";');
    expect(dot).toContain('label="host h\\"2 192.0.2.2 (agent registered)"');
  });

  const dotBin = spawnSync('dot', ['-V']).status === 0;
  (dotBin ? it : it.skip)('is a graph Graphviz accepts (skipped without graphviz)', () => {
    const r = spawnSync('dot', ['-Tcanon'], { input: dot, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
