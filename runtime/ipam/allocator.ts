// Pure range logic for IPAM, no I/O: which addresses of a subnet may be handed out, and in which
// order to try them. The order is host-local's (containernetworking/plugins, allocator/): start
// just after the last address handed out, run to the end of the range, wrap to its start, and
// stop after one full turn, skipping the gateway. Released addresses are therefore reused last,
// which keeps a just-freed address from going to the next container while stale ARP/conntrack
// state for it may still exist, and makes the first candidate free in a sparse pool (O(1)).
import { UserError } from '../../config/errors.js';
import { type Address, type Subnet, contains, formatAddress, lastAddress, parseAddress, parseSubnet } from '../../config/address.js';

export { contains, overlaps } from '../../config/address.js';

/** What a network definition says about one address family. */
export interface PoolSpec {
  subnet: string;
  /** Default: the first usable address of the subnet. */
  gateway?: string | undefined;
  /** Optional narrower range for dynamic allocation (inclusive), like host-local's rangeStart/rangeEnd. */
  rangeStart?: string | undefined;
  rangeEnd?: string | undefined;
}

/** A validated pool: every field is inside the subnet and consistent. */
export interface Pool {
  subnet: Subnet;
  gateway: bigint;
  /** Dynamic allocation range, inclusive. */
  first: bigint;
  last: bigint;
}

/** Longest prefixes that still leave room for a gateway and one container. */
const MAX_PREFIX = { 4: 30, 6: 126 } as const;

/**
 * The addresses a host may use: IPv4 excludes the network and broadcast addresses; IPv6 excludes
 * the subnet-router anycast address (all host bits zero) and has no broadcast.
 */
export function usableRange(subnet: Subnet): { first: bigint; last: bigint } {
  const last = lastAddress(subnet);
  return { first: subnet.network + 1n, last: subnet.family === 4 ? last - 1n : last };
}

/** The first usable address: the conventional gateway (10.88.0.0/16 → 10.88.0.1). */
export function defaultGateway(subnet: Subnet | string): string {
  const s = typeof subnet === 'string' ? parseSubnet(subnet) : subnet;
  return formatAddress({ family: s.family, value: usableRange(s).first });
}

/** Validates a pool definition; `label` names its owner in messages ("network web"). */
export function parsePool(spec: PoolSpec, label = 'network'): Pool {
  const subnet = parseSubnet(spec.subnet, `subnet of ${label}`);
  const max = MAX_PREFIX[subnet.family];
  if (subnet.prefixLength > max) {
    throw new UserError(`subnet ${subnet.cidr} of ${label} is too small: IPv${subnet.family} subnets need a prefix of /${max} or shorter to hold a gateway and a container`);
  }
  const usable = usableRange(subnet);
  const inUsable = (a: Address, noun: string): bigint => {
    checkHostAddress(subnet, a, (text) => `${noun} ${text} of ${label}`);
    return a.value;
  };
  const gateway = spec.gateway === undefined ? usable.first : inUsable(parseAddress(spec.gateway, `gateway of ${label}`), 'gateway');
  const first = spec.rangeStart === undefined ? usable.first : inUsable(parseAddress(spec.rangeStart, `range start of ${label}`), 'range start');
  const last = spec.rangeEnd === undefined ? usable.last : inUsable(parseAddress(spec.rangeEnd, `range end of ${label}`), 'range end');
  if (first > last) {
    throw new UserError(`range of ${label} is empty: start ${format(subnet, first)} is after end ${format(subnet, last)}`);
  }
  if (first === last && first === gateway) {
    throw new UserError(`range of ${label} holds only its gateway ${format(subnet, gateway)}`);
  }
  return { subnet, gateway, first, last };
}

/**
 * Checks that `ip` may be given to a container in `pool` (a static address): inside the subnet,
 * not its network or broadcast address, not the gateway. Static addresses may lie outside the
 * dynamic range (Docker's and podman's rule). Returns the canonical spelling.
 */
export function checkStaticAddress(pool: Pool, ip: string, label = 'network'): string {
  const a = parseAddress(ip, `static address for ${label}`);
  checkHostAddress(pool.subnet, a, (text) => `address ${text} requested on ${label}`);
  const text = formatAddress(a);
  if (a.value === pool.gateway) throw new UserError(`address ${text} requested on ${label} is its gateway`);
  return text;
}

/**
 * Candidate addresses in allocation order: from just after `after` (the last address handed out;
 * ignored when outside the range) to the end of the range, then from its start, ending with
 * `after` itself: each address once. The gateway and `reserved` addresses (canonical text) are
 * skipped. Lazy and BigInt-based, so a /64 costs nothing until iterated.
 */
export function* nextCandidates(pool: Pool, after?: string, reserved?: ReadonlySet<string>): Generator<string, void, undefined> {
  const size = pool.last - pool.first + 1n;
  let start = pool.first;
  if (after !== undefined) {
    const a = tryParse(after);
    if (a && a.family === pool.subnet.family && a.value >= pool.first && a.value <= pool.last) {
      start = a.value === pool.last ? pool.first : a.value + 1n;
    }
  }
  let cur = start;
  for (let i = 0n; i < size; i++) {
    if (cur !== pool.gateway) {
      const text = format(pool.subnet, cur);
      if (!reserved?.has(text)) yield text;
    }
    cur = cur === pool.last ? pool.first : cur + 1n;
  }
}

/** How many addresses the pool can hand out dynamically (the range minus the gateway). */
export function capacity(pool: Pool): bigint {
  const size = pool.last - pool.first + 1n;
  return pool.gateway >= pool.first && pool.gateway <= pool.last ? size - 1n : size;
}

/** `subject` phrases the address for messages: (text) => "gateway 10.88.0.0 of network web". */
function checkHostAddress(subnet: Subnet, a: Address, subject: (text: string) => string): void {
  const what = subject(formatAddress(a));
  if (!contains(subnet, a)) {
    throw new UserError(`${what} is not in subnet ${subnet.cidr}${a.family === subnet.family ? '' : ` (it is IPv${a.family}, the subnet IPv${subnet.family})`}`);
  }
  if (a.value === subnet.network) throw new UserError(`${what} is the network address of subnet ${subnet.cidr}`);
  if (subnet.family === 4 && a.value === lastAddress(subnet)) throw new UserError(`${what} is the broadcast address of subnet ${subnet.cidr}`);
}

function format(subnet: Subnet, value: bigint): string {
  return formatAddress({ family: subnet.family, value });
}

function tryParse(text: string): Address | undefined {
  try {
    return parseAddress(text);
  } catch {
    return undefined;
  }
}

