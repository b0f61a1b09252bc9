// The MAC a container's interface gets on a network built on a Linux bridge (bridge, overlay).
import { randomBytesSync } from '../hash.js';

/**
 * Docker's scheme: 02:42 and the four bytes of the IPv4 address. A reused address comes back
 * with the same MAC, so every neighbour cache on the segment (the host's, other containers')
 * stays right when an address passes from one container to the next; a random MAC per attach
 * left those caches pointing at a MAC no port had until they aged out (seconds to tens of
 * seconds of a new container unreachable). Unique wherever the address is, which IPAM
 * guarantees (across the cluster for the overlay).
 */
export function macFromIpv4(ip: string): string {
  const b = ip.split('.').map((x) => Number(x).toString(16).padStart(2, '0'));
  return `02:42:${b.join(':')}`;
}

/** A random locally administered unicast MAC. */
export function randomLocalMac(): string {
  const b = randomBytesSync(6);
  b[0] = (b[0]! & 0xfc) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/**
 * The host end's MAC of a veth, given in the creation request: a MAC the kernel picks itself is
 * marked random (addr_assign_type NET_ADDR_RANDOM), and systemd-udevd's default
 * MACAddressPolicy=persistent rewrites such an address moments after the link appears, so the MAC
 * recorded at creation (the veth's identity, see removeVeth) no longer matched. A MAC given at
 * creation is NET_ADDR_SET, which udev leaves alone. Never in 02:42: that prefix is the
 * containers' (macFromIpv4), and the bridge delivers a port's own MAC locally.
 */
export function hostVethMac(): string {
  for (;;) {
    const m = randomLocalMac();
    if (!m.startsWith('02:42:')) return m;
  }
}

/**
 * The container end's MAC, chosen once IPAM has given the addresses: the user's (--mac) wins;
 * else the one derived from the IPv4 address; an endpoint without IPv4 gets a random one.
 * Lower case, as the kernel reports MACs: the record's MAC is compared with the link's.
 */
export function containerMac(given: string | undefined, ipv4: string | undefined): string {
  return (given ?? (ipv4 !== undefined ? macFromIpv4(ipv4) : randomLocalMac())).toLowerCase();
}
