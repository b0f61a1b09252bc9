// Published ports: "-p [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|/udp]", with ranges
// ("8000-8005:9000-9005") and IPv6 host addresses in brackets ("[::1]:8080:80"). Also the
// comma-separated form of the io.tsrun.ports annotation.
import { formatAddress, hostIpsOverlap, tryParseAddress } from './address.js';
import { UserError } from './errors.js';

export type Protocol = 'tcp' | 'udp';

export interface PortMapping {
  /** A specific host address, or undefined for every local address. */
  hostIp?: string | undefined;
  hostPort: number;
  containerPort: number;
  protocol: Protocol;
}

const FORM = /^(?:(\[[^\]]+\]|[^:[\]]+):)?(\d+(?:-\d+)?):(\d+(?:-\d+)?)(?:\/(tcp|udp))?$/i;

export function parsePublish(text: string): PortMapping[] {
  const bad = (why: string) => new UserError(`invalid -p ${JSON.stringify(text)}: ${why}`);
  const m = FORM.exec(text.trim());
  if (!m) throw bad('expected [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|/udp]');
  let hostIp: string | undefined;
  if (m[1] !== undefined) {
    const raw = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
    const parsed = tryParseAddress(raw);
    if (!parsed) throw bad(`${raw} is not an IP address`);
    // The brackets belong to the spelling: [::ffff:127.0.0.1] is IPv6 text for an IPv4 address.
    if (m[1].startsWith('[') !== raw.includes(':')) throw bad('IPv6 host addresses go in brackets, IPv4 ones do not');
    hostIp = formatAddress(parsed);
  }
  const hostRange = portRange(m[2]!, bad);
  const containerRange = portRange(m[3]!, bad);
  const protocol = (m[4]?.toLowerCase() ?? 'tcp') as Protocol;
  const count = hostRange[1] - hostRange[0] + 1;
  if (containerRange[1] - containerRange[0] + 1 !== count && containerRange[0] !== containerRange[1]) {
    throw bad('the host and container port ranges must have the same length');
  }
  const out: PortMapping[] = [];
  for (let i = 0; i < count; i++) {
    const containerPort = containerRange[0] === containerRange[1] ? containerRange[0] : containerRange[0] + i;
    out.push({ ...(hostIp !== undefined ? { hostIp } : {}), hostPort: hostRange[0] + i, containerPort, protocol });
  }
  return out;
}

/**
 * Most mappings one container may ask for (all -p values, or one annotation). Each costs a Store
 * reservation and map elements; the cap keeps an attach (and the hook, under its timeout) short.
 */
export const MAX_PORT_MAPPINGS = 1024;

/** Several -p values (or one annotation), refusing the same host port twice. */
export function parsePublishList(values: string[]): PortMapping[] {
  const all: PortMapping[] = [];
  for (const v of values) {
    all.push(...parsePublish(v));
    if (all.length > MAX_PORT_MAPPINGS) throw new UserError(`too many published ports: at most ${MAX_PORT_MAPPINGS} mappings per container`);
  }
  const byPort = new Map<string, PortMapping[]>();
  for (const p of all) {
    const group = byPort.get(`${p.protocol}/${p.hostPort}`) ?? [];
    const clash = group.find((q) => portsCollide(p, q));
    if (clash) throw new UserError(`host port ${p.hostPort}/${p.protocol}${p.hostIp ? ` on ${p.hostIp}` : ''} is published twice`);
    group.push(p);
    byPort.set(`${p.protocol}/${p.hostPort}`, group);
  }
  return all;
}

export function parsePortsAnnotation(text: string): PortMapping[] {
  return parsePublishList(text.split(',').map((s) => s.trim()).filter(Boolean));
}

export function portKey(p: PortMapping): string {
  return `${p.hostIp ?? '*'}|${p.hostPort}|${p.protocol}`;
}

/** Two mappings collide when they share protocol and port and their host addresses overlap. */
export function portsCollide(a: PortMapping, b: PortMapping): boolean {
  return a.protocol === b.protocol && a.hostPort === b.hostPort && hostIpsOverlap(a.hostIp, b.hostIp);
}

function portRange(text: string, bad: (why: string) => UserError): [number, number] {
  const [lo, hi = lo] = text.split('-').map(Number) as [number, number?];
  for (const p of [lo, hi]) if (!Number.isInteger(p) || p < 1 || p > 65535) throw bad(`port ${p} is outside 1-65535`);
  if (hi! < lo) throw bad(`range ${text} runs backwards`);
  if (hi! - lo > 1000) throw bad(`range ${text} is larger than 1000 ports`);
  return [lo, hi!];
}
