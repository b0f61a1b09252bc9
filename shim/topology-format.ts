// Renders a Topology (runtime/topology.ts) for people: `text`, a tree for the terminal, and `dot`,
// a Graphviz graph (`svg` is dot's rendering of it, see topology-cmd.ts). Pure functions.
import type { PortMapping } from '../config/ports.js';
import type { EndpointView, NetworkView, OverlayHostView, Topology } from '../runtime/topology.js';

export const FORMATS = ['text', 'dot', 'svg'] as const;
export type Format = (typeof FORMATS)[number];

// ------------------------------------------------------------------ text

export function toText(t: Topology): string {
  const lines = [`host ${t.host}`];
  if (t.networks.length === 0) lines.push('└── no networks (tsrun network create, or tsrun run creates the default one)');
  t.networks.forEach((n, i) => tree(lines, '', i === t.networks.length - 1, networkLine(n), networkChildren(n)));
  return `${lines.join('\n')}\n`;
}

interface Node {
  line: string;
  children: Node[];
}

function tree(out: string[], indent: string, last: boolean, line: string, children: Node[]): void {
  out.push(`${indent}${last ? '└── ' : '├── '}${line}`);
  const next = indent + (last ? '    ' : '│   ');
  children.forEach((c, i) => tree(out, next, i === children.length - 1, c.line, c.children));
}

function networkLine(n: NetworkView): string {
  const flags = [n.internal ? 'internal' : '', n.icc ? '' : 'icc=false'].filter(Boolean);
  return [`network ${n.name}`, `(${n.driver}${n.mode ? ` ${n.mode}` : ''})`, subnets(n), ...flags].filter(Boolean).join('  ');
}

function networkChildren(n: NetworkView): Node[] {
  const containers = n.endpoints.map((e) => ({ line: endpointLine(e), children: [] }));
  const remote = (n.hosts ?? []).filter((h) => !h.local).map((h) => ({ line: hostLine(h), children: h.endpoints.map((e) => ({ line: `container ${e.containerId}  ${e.ipv4 ?? ''}`.trimEnd(), children: [] })) }));
  const under: Node[] = [...containers];
  if (n.vxlan) under.push({ line: `vxlan ${n.vxlan.name}${n.vxlan.vni === undefined ? '' : ` (VNI ${n.vxlan.vni})`}`, children: remote });
  if (under.length === 0) under.push({ line: 'no containers on this host', children: [] });
  if (!n.device) return under;
  return [{ line: deviceLine(n), children: under }];
}

function deviceLine(n: NetworkView): string {
  const d = n.device!;
  const state = !d.exists ? 'MISSING' : d.up === false ? 'down' : 'up';
  const gw = d.kind === 'bridge' ? [n.gateway4, n.gateway6].filter(Boolean).join(' ') : '';
  return [`${d.kind} ${d.name}`, `(${state})`, gw].filter(Boolean).join('  ');
}

function endpointLine(e: EndpointView): string {
  const addrs = [e.ipv4, e.ipv6].filter(Boolean).join(' ');
  const via = e.hostIfname ? `via ${e.hostIfname}` : '';
  const ports = e.ports.length > 0 ? `ports ${e.ports.map(portText).join(', ')}` : '';
  return [`container ${e.containerId}`, `${e.ifname} ${addrs}`.trim(), via, ports].filter(Boolean).join('  ');
}

function hostLine(h: OverlayHostView): string {
  const name = h.hostname ? `${h.hostname} ` : '';
  return `host ${name}${h.address ? `${h.address} ` : ''}(${h.registered ? 'agent registered' : 'not registered'})`;
}

function subnets(n: NetworkView): string {
  return [n.subnet4, n.subnet6].filter(Boolean).join(' ');
}

/** "8080→80/tcp", "127.0.0.1:8080→80/tcp", "[::1]:8080→80/tcp" */
export function portText(p: PortMapping): string {
  const ip = p.hostIp === undefined ? '' : p.hostIp.includes(':') ? `[${p.hostIp}]:` : `${p.hostIp}:`;
  return `${ip}${p.hostPort}→${p.containerPort}/${p.protocol}`;
}

// ------------------------------------------------------------------ dot

/** A Graphviz graph: one cluster per network, the host at the left, containers at the right. */
export function toDot(t: Topology): string {
  const out = [
    'graph tsrun {',
    '  rankdir=LR;',
    '  node [shape=box, style="rounded", fontname="Helvetica", fontsize=10];',
    '  edge [fontname="Helvetica", fontsize=9];',
    `  ${id('host')} [label=${label(`host ${t.host}`)}, shape=box3d, style=""];`,
  ];
  for (const n of t.networks) out.push(...networkDot(n));
  out.push('}');
  return `${out.join('\n')}\n`;
}

function networkDot(n: NetworkView): string[] {
  const net = (s: string) => id(`${n.name}/${s}`);
  const out = [`  subgraph ${id(`cluster_${n.name}`)} {`, `    label=${label(networkLine(n))};`, '    style="rounded,dashed";'];
  let anchor = id('host');
  if (n.device) {
    const d = n.device;
    const state = !d.exists ? '\nMISSING' : d.up === false ? '\ndown' : '';
    const gw = d.kind === 'bridge' ? [n.gateway4, n.gateway6].filter(Boolean).join('\n') : '';
    out.push(`    ${net('device')} [label=${label(`${d.kind} ${d.name}${gw ? `\n${gw}` : ''}${state}`)}, shape=box, style="filled", fillcolor="${d.exists ? '#e8f0fe' : '#fde8e8'}"];`);
    anchor = net('device');
  }
  for (const e of n.endpoints) {
    const ports = e.ports.length > 0 ? `\n${e.ports.map(portText).join('\n')}` : '';
    out.push(`    ${net(`ctr/${e.containerId}`)} [label=${label(`${e.containerId}\n${e.ifname} ${[e.ipv4, e.ipv6].filter(Boolean).join('\n')}${ports}`)}];`);
    out.push(`    ${anchor} -- ${net(`ctr/${e.containerId}`)}${e.hostIfname ? ` [label=${label(e.hostIfname)}]` : ''};`);
  }
  if (n.vxlan) {
    out.push(`    ${net('vxlan')} [label=${label(`vxlan ${n.vxlan.name}${n.vxlan.vni === undefined ? '' : `\nVNI ${n.vxlan.vni}`}`)}, shape=box, style="filled", fillcolor="#fef7e0"];`);
    out.push(`    ${anchor} -- ${net('vxlan')};`);
    for (const h of (n.hosts ?? []).filter((x) => !x.local)) {
      out.push(`    ${net(`host/${h.hostId}`)} [label=${label(hostLine(h))}, shape=box3d, style=""];`);
      out.push(`    ${net('vxlan')} -- ${net(`host/${h.hostId}`)} [style=dashed, label="VXLAN"];`);
      for (const e of h.endpoints) {
        out.push(`    ${net(`host/${h.hostId}/${e.containerId}`)} [label=${label(`${e.containerId}\n${e.ipv4 ?? ''}`)}];`);
        out.push(`    ${net(`host/${h.hostId}`)} -- ${net(`host/${h.hostId}/${e.containerId}`)};`);
      }
    }
  }
  out.push('  }');
  // Outside the cluster: an edge inside it would pull the host node in.
  if (n.device) out.push(`  ${id('host')} -- ${net('device')};`);
  return out;
}

/** A quoted DOT id. */
function id(s: string): string {
  return `"${s.replace(/["\\]/g, '\\$&')}"`;
}

/** A quoted DOT label; newlines become centred line breaks. */
function label(s: string): string {
  return `"${s.replace(/["\\]/g, '\\$&').replace(/\n/g, '\\n')}"`;
}
