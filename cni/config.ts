// The plugin configuration a runtime writes on stdin, parsed once at the door into typed values
// (SPEC.md section 1 and 3): which tsrun network, and what this attachment asks for (ports,
// addresses, MAC, aliases, bandwidth) from runtimeConfig, args and CNI_ARGS. Pure.
//
// `network` names a network made with `tsrun network create`. Without it, the CNI network's own
// `name` is the tsrun network, created on the first ADD from the inline keys that mirror
// `tsrun network create` (driver, subnet, gateway, ipv6Subnet, ipv6Gateway, parent, mode,
// internal, mtu, bridge, vni, icc) and checked against them afterwards.
import { UserError } from '../config/errors.js';
import { checkNetworkName } from '../config/ids.js';
import { checkDnsName } from '../config/resolv-conf.js';
import { formatAddress, tryParseAddress } from '../config/address.js';
import type { NetworkCreateInput } from '../config/networks.js';
import { parsePublishList, type PortMapping } from '../config/ports.js';
import { CODES, CniError, SUPPORTED_VERSIONS, compareVersions, isSupportedVersion, type CniCommand, type CniEnv, type CniVersion } from './protocol.js';

export interface Bandwidth {
  /** bits per second into the container, and its burst in bits */
  ingressRate?: number | undefined;
  ingressBurst?: number | undefined;
  /** bits per second out of the container */
  egressRate?: number | undefined;
  egressBurst?: number | undefined;
}

export interface ValidAttachment {
  containerID: string;
  ifname: string;
}

export interface PluginConfig {
  cniVersion: CniVersion;
  /** The CNI network name (the conflist's name). */
  name: string;
  /** The tsrun network this attachment goes to. */
  network: string;
  /** Set when the network is defined here rather than by `tsrun network create`. */
  inline?: NetworkCreateInput | undefined;
  ports: PortMapping[];
  ip?: string | undefined;
  ip6?: string | undefined;
  mac?: string | undefined;
  aliases: string[];
  /** Only present when the conflist gives tsrun capabilities.bandwidth: then tsrun applies it
   * (tc), instead of a chained bandwidth plugin. */
  bandwidth?: Bandwidth | undefined;
  dns?: Record<string, unknown> | undefined;
  prevResult?: Record<string, unknown> | undefined;
  validAttachments?: ValidAttachment[] | undefined;
  /** Overrides of the environment's TSRUN_STORE / TSRUN_ROOT / TSRUN_LOG_LEVEL. */
  store?: string | undefined;
  root?: string | undefined;
  logLevel?: string | undefined;
}

const INLINE_KEYS = ['driver', 'subnet', 'gateway', 'ipv6Subnet', 'ipv6Gateway', 'parent', 'mode', 'internal', 'mtu', 'bridge', 'vni', 'icc', 'enableDns'] as const;

const invalid = (msg: string) => new CniError(CODES.invalidConfig, `invalid network config: ${msg}`);
const unsupported = (msg: string) => new CniError(CODES.unsupportedField, `unsupported field: ${msg}`);

/** The cniVersion of a config, for VERSION and for error objects, whatever else is wrong. */
export function peekVersion(text: string): string | undefined {
  try {
    const v = (JSON.parse(text) as { cniVersion?: unknown }).cniVersion;
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

export function parseConfig(text: string, env: CniEnv): PluginConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CniError(CODES.decodingFailure, 'cannot decode the network config on stdin', (err as Error).message);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new CniError(CODES.decodingFailure, 'the network config on stdin is not a JSON object');
  const c = raw as Record<string, unknown>;

  // The spec reads a missing cniVersion as 0.1.0, which tsrun does not speak.
  const version = c.cniVersion === undefined ? '0.1.0' : c.cniVersion;
  if (typeof version !== 'string') throw new CniError(CODES.decodingFailure, 'cniVersion is not a string');
  if (!isSupportedVersion(version)) {
    throw new CniError(CODES.incompatibleVersion, `incompatible CNI versions: config is "${version}", plugin supports [${SUPPORTED_VERSIONS.map((v) => `"${v}"`).join(' ')}]`);
  }
  checkCommandVersion(env.command, version);

  const name = str(c, 'name');
  if (name === undefined) throw invalid('name is required');
  const network = str(c, 'network') ?? name;
  try {
    checkNetworkName(network);
  } catch (err) {
    throw invalid((err as UserError).shortMessage);
  }
  if (c.ipam !== undefined) throw unsupported(`ipam ${JSON.stringify(c.ipam).slice(0, 60)}: tsrun allocates addresses itself; give subnet (and ipv6Subnet) instead`);

  const given = INLINE_KEYS.filter((k) => c[k] !== undefined);
  if (c.network !== undefined && given.length > 0) {
    throw invalid(`network "${network}" names a network made with tsrun network create, so ${given.join(', ')} cannot be set here`);
  }
  const ipMasq = c.ipMasq === undefined ? undefined : bool(c, 'ipMasq');
  const internal = bool(c, 'internal');
  if (ipMasq === false && internal !== true) throw unsupported('ipMasq false: tsrun masquerades every network that is not internal; set internal true for a network with no way out');
  if (ipMasq === true && internal === true) throw invalid('ipMasq true contradicts internal true');

  const inline: NetworkCreateInput | undefined =
    c.network !== undefined
      ? undefined
      : {
          name: network,
          driver: str(c, 'driver'),
          subnet: str(c, 'subnet'),
          gateway: str(c, 'gateway'),
          ipv6Subnet: str(c, 'ipv6Subnet'),
          ipv6Gateway: str(c, 'ipv6Gateway'),
          parent: str(c, 'parent'),
          mode: str(c, 'mode'),
          internal,
          mtu: num(c, 'mtu'),
          bridge: str(c, 'bridge'),
          vni: num(c, 'vni'),
          opts: c.icc === undefined ? [] : [`icc=${bool(c, 'icc')}`],
          dns: bool(c, 'enableDns'),
        };

  const rc = obj(c, 'runtimeConfig') ?? {};
  const args = obj(obj(c, 'args') ?? {}, 'cni') ?? {};
  const ips = addressesFrom(rc.ips, 'runtimeConfig.ips') ?? addressesFrom(args.ips, 'args.cni.ips') ?? addressesFrom(env.args.IP?.split(','), 'CNI_ARGS IP') ?? {};
  const mac = typeof rc.mac === 'string' ? rc.mac : typeof args.mac === 'string' ? args.mac : env.args.MAC;

  return {
    cniVersion: version,
    name,
    network,
    inline,
    ports: portsFrom(rc.portMappings),
    ip: ips.ip,
    ip6: ips.ip6,
    mac: mac === undefined || mac === '' ? undefined : mac.toLowerCase(),
    aliases: aliasesFrom(rc.aliases, name, network),
    bandwidth: bandwidthFrom(rc.bandwidth),
    dns: obj(c, 'dns'),
    prevResult: obj(c, 'prevResult'),
    validAttachments: validAttachmentsFrom(c['cni.dev/valid-attachments']),
    store: str(c, 'store'),
    root: str(c, 'root'),
    logLevel: str(c, 'logLevel'),
  };
}

/** CHECK came with 0.4.0, GC and STATUS with 1.1.0: older configs cannot ask for them. */
function checkCommandVersion(command: CniCommand, version: string): void {
  const since: Partial<Record<CniCommand, string>> = { CHECK: '0.4.0', GC: '1.1.0', STATUS: '1.1.0' };
  const need = since[command];
  if (need !== undefined && compareVersions(version, need) < 0) {
    throw new CniError(CODES.incompatibleVersion, `config version ${version} does not allow ${command} (it needs ${need} or later)`);
  }
}

function str(c: Record<string, unknown>, key: string): string | undefined {
  const v = c[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalid(`${key} must be a string`);
  return v;
}

function num(c: Record<string, unknown>, key: string): string | undefined {
  const v = c[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw invalid(`${key} must be an integer`);
  return String(v);
}

function bool(c: Record<string, unknown>, key: string): boolean | undefined {
  const v = c[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw invalid(`${key} must be true or false`);
  return v;
}

function obj(c: Record<string, unknown>, key: string): Record<string, unknown> | undefined {
  const v = c[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid(`${key} must be an object`);
  return v as Record<string, unknown>;
}

/** runtimeConfig.portMappings → tsrun's mappings (one element per port, as the convention has). */
function portsFrom(v: unknown): PortMapping[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalid('runtimeConfig.portMappings must be a list');
  const specs = v.map((p: unknown, i) => {
    if (typeof p !== 'object' || p === null) throw invalid(`runtimeConfig.portMappings[${i}] must be an object`);
    const m = p as Record<string, unknown>;
    const protocol = m.protocol === undefined || m.protocol === '' ? 'tcp' : String(m.protocol).toLowerCase();
    if (protocol !== 'tcp' && protocol !== 'udp') throw unsupported(`runtimeConfig.portMappings[${i}].protocol ${JSON.stringify(m.protocol)}: tsrun publishes tcp and udp`);
    if (!Number.isInteger(m.hostPort) || !Number.isInteger(m.containerPort)) throw invalid(`runtimeConfig.portMappings[${i}] needs integer hostPort and containerPort`);
    const hostIp = typeof m.hostIP === 'string' && m.hostIP !== '' ? m.hostIP : undefined;
    const host = hostIp === undefined ? '' : hostIp.includes(':') ? `[${hostIp}]:` : `${hostIp}:`;
    return `${host}${m.hostPort as number}:${m.containerPort as number}/${protocol}`;
  });
  try {
    return parsePublishList(specs);
  } catch (err) {
    throw invalid(`runtimeConfig.portMappings: ${(err as UserError).shortMessage.replace(/^invalid -p /, '')}`);
  }
}

/** "10.1.0.5", "10.1.0.5/24", "fd00::5": at most one address per family (one interface). */
function addressesFrom(v: unknown, what: string): { ip?: string; ip6?: string } | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw invalid(`${what} must be a list of addresses`);
  if (v.length === 0) return undefined;
  const out: { ip?: string; ip6?: string } = {};
  for (const text of v as string[]) {
    const ip = tryParseAddress(text.split('/')[0]!);
    if (!ip) throw invalid(`${what}: ${JSON.stringify(text)} is not an IP address`);
    const key = ip.family === 4 ? 'ip' : 'ip6';
    if (out[key] !== undefined) throw unsupported(`${what}: more than one IPv${key === 'ip' ? 4 : 6} address (tsrun gives one interface one address per family)`);
    out[key] = formatAddress(ip);
  }
  return out;
}

/** The convention's list, or podman's {network: [aliases]}; each a DNS name. */
function aliasesFrom(v: unknown, ...names: string[]): string[] {
  if (v === undefined || v === null) return [];
  let list: unknown[] = [];
  if (Array.isArray(v)) list = v;
  else if (typeof v === 'object') {
    const m = v as Record<string, unknown>;
    list = (names.map((n) => m[n]).find(Array.isArray) as unknown[] | undefined) ?? [];
  } else throw invalid('runtimeConfig.aliases must be a list');
  return list.map((a) => {
    try {
      return checkDnsName(String(a), 'runtimeConfig.aliases');
    } catch (err) {
      throw invalid((err as UserError).shortMessage);
    }
  });
}

function bandwidthFrom(v: unknown): Bandwidth | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid('runtimeConfig.bandwidth must be an object');
  const b = v as Record<string, unknown>;
  const out: Bandwidth = {};
  for (const k of ['ingressRate', 'ingressBurst', 'egressRate', 'egressBurst'] as const) {
    if (b[k] === undefined || b[k] === null) continue;
    if (typeof b[k] !== 'number' || !Number.isInteger(b[k]) || (b[k] as number) < 0) throw invalid(`runtimeConfig.bandwidth.${k} must be a non-negative integer`);
    out[k] = b[k] as number;
  }
  if ((out.ingressRate ?? 0) > 0 !== (out.ingressBurst ?? 0) > 0 || (out.egressRate ?? 0) > 0 !== (out.egressBurst ?? 0) > 0) {
    throw invalid('runtimeConfig.bandwidth: a rate needs its burst and a burst its rate');
  }
  return out.ingressRate || out.egressRate ? out : undefined;
}

function validAttachmentsFrom(v: unknown): ValidAttachment[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw invalid('cni.dev/valid-attachments must be a list');
  return v.map((a: unknown, i) => {
    const o = a as Record<string, unknown> | null;
    if (typeof o !== 'object' || o === null || typeof o.containerID !== 'string' || typeof o.ifname !== 'string') {
      throw invalid(`cni.dev/valid-attachments[${i}] needs containerID and ifname`);
    }
    return { containerID: o.containerID, ifname: o.ifname };
  });
}
