// `tsrun port`: docker's output of a container's published ports, as pure functions (unit tests
// cover them): `80/tcp -> 0.0.0.0:8080` lines for every mapping, or only the host side
// (`0.0.0.0:8080`) for one private port, in docker's order (a natural sort of the lines, as its
// CLI's sortorder.NaturalLess: 80/tcp before 443/tcp).
import { UserError } from '../config/errors.js';
import type { PortMapping, Protocol } from '../config/ports.js';

export interface PrivatePort {
  port: number;
  protocol: Protocol;
}

/** PRIVATE_PORT[/PROTO] as docker takes it (tcp when no protocol is given). */
export function parsePrivatePort(text: string): PrivatePort {
  const m = /^(\d{1,5})(?:\/(tcp|udp))?$/i.exec(text);
  const port = m ? Number(m[1]) : NaN;
  if (!m || port < 1 || port > 65535) throw new UserError(`invalid port ${JSON.stringify(text)}: expected PRIVATE_PORT[/tcp|/udp], a port from 1 to 65535`);
  return { port, protocol: (m[2]?.toLowerCase() ?? 'tcp') as Protocol };
}

/** An endpoint's published ports and the families it has (a mapping without a host address is
 * published on every IPv4 address, and on every IPv6 address when the container has one). */
export interface PublishedOn {
  ports: readonly PortMapping[];
  ipv4: boolean;
  ipv6: boolean;
}

/** The host side of one mapping: `0.0.0.0:8080`, `[::]:8080`, `127.0.0.1:8080`, `[::1]:8080`. */
function hostSides(p: PortMapping, e: PublishedOn): string[] {
  if (p.hostIp !== undefined) return [`${p.hostIp.includes(':') ? `[${p.hostIp}]` : p.hostIp}:${p.hostPort}`];
  return [...(e.ipv4 ? [`0.0.0.0:${p.hostPort}`] : []), ...(e.ipv6 ? [`[::]:${p.hostPort}`] : [])];
}

/** docker port's lines; with `only`, the host sides of that private port (none: undefined). */
export function portLines(endpoints: readonly PublishedOn[], only?: PrivatePort): string[] | undefined {
  const lines: string[] = [];
  for (const e of endpoints) {
    for (const p of e.ports) {
      if (only !== undefined && (p.containerPort !== only.port || p.protocol !== only.protocol)) continue;
      for (const h of hostSides(p, e)) lines.push(only !== undefined ? h : `${p.containerPort}/${p.protocol} -> ${h}`);
    }
  }
  if (only !== undefined && lines.length === 0) return undefined;
  return [...new Set(lines)].sort(naturalCompare);
}

/** Runs of digits compare as numbers, the rest as text (docker's sortorder.NaturalLess). */
export function naturalCompare(a: string, b: string): number {
  const ta = a.match(/\d+|\D+/g) ?? [];
  const tb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(ta.length, tb.length); i++) {
    const x = ta[i]!;
    const y = tb[i]!;
    if (x === y) continue;
    const dx = /^\d/.test(x);
    const dy = /^\d/.test(y);
    if (dx && dy) {
      const d = Number(x) - Number(y);
      if (d !== 0) return d;
      return x.length - y.length; // 08 after 8
    }
    return x < y ? -1 : 1;
  }
  return ta.length - tb.length;
}
