// `tsrun network connect|disconnect`: the decisions that need no kernel and no Store, kept apart so
// unit tests cover them: which containers can be connected at all (docker's refusals), the name of
// the next interface inside (eth1, eth2…), and how a connection changes the options a detached
// container is created again with (restart): connections are part of its configuration, as
// docker keeps them in the container's HostConfig/NetworkSettings.
import { UserError } from '../config/errors.js';
import type { NetMode } from '../config/net-mode.js';
import type { NetworkConnection, RunOptions } from './run.js';

export type { NetworkConnection };

/**
 * Why a container whose network mode is `mode` cannot be connected to (or disconnected from) a
 * network; undefined for a container on a network. docker's words (runconfig/errors.go): a
 * container in the host's namespace, one without interfaces, one sharing another's namespace.
 */
export function modeRefusal(mode: NetMode, id: string, verb: 'connect' | 'disconnect'): string | undefined {
  switch (mode.kind) {
    case 'host':
      return `container ${id} uses the host's network (--net host): a container cannot be disconnected from the host network or connected to another network`;
    case 'none':
      return `container ${id} has no network (--net none): it cannot be ${verb === 'connect' ? 'connected to' : 'disconnected from'} a network (docker's "private (none) mode")`;
    case 'container':
      return `container ${id} shares the network namespace of container ${mode.containerId} (--net container:${mode.containerId}): ${verb} that container instead`;
    default:
      return undefined;
  }
}

/** The interface name inside for a new connection: the lowest ethN (N ≥ 1) not in `used` (the
 * container's endpoints and the links its namespace already has). */
export function nextIfname(used: Iterable<string>): string {
  const taken = new Set(used);
  for (let n = 1; n < 10_000; n++) if (!taken.has(`eth${n}`)) return `eth${n}`;
  throw new UserError('no free interface name ethN in the container');
}

/** Every network a detached container's configuration names: its own (--net) first, then the
 * connections in the order they were made. */
export function configuredNetworks(o: RunOptions): string[] {
  return [...(o.net.kind === 'network' ? [o.net.network] : []), ...(o.connections ?? []).map((c) => c.network)];
}

/** The options with `c` connected (restart attaches it as eth1, eth2… in this order). */
export function withConnection(o: RunOptions, c: NetworkConnection): RunOptions {
  return { ...o, connections: [...(o.connections ?? []), c] };
}

/**
 * The options without `network`. The container's own network (--net) given up passes that role
 * to its first connection (with that connection's address, MAC and aliases; the published ports
 * went with the network that carried them, as in docker). Refused for the last network: tsrun has
 * no "network container without a network" (`--net none` is another namespace setup), so the one
 * line says what to do instead.
 */
export function withoutNetwork(o: RunOptions, network: string, id: string): RunOptions {
  const connections = o.connections ?? [];
  if (o.net.kind === 'network' && o.net.network === network) {
    const [next, ...rest] = connections;
    if (next === undefined) throw new UserError(`container ${id}: network ${network} is its only network (connect it to another first, or stop it)`);
    const { connections: _old, ...base } = o;
    return {
      ...base,
      net: { kind: 'network', network: next.network },
      ip: next.ip,
      ip6: next.ip6,
      mac: next.mac,
      networkAliases: next.aliases ?? [],
      publish: [],
      ...(rest.length > 0 ? { connections: rest } : {}),
    };
  }
  const rest = connections.filter((c) => c.network !== network);
  if (rest.length === connections.length) throw new UserError(`container ${id} is not connected to network ${network}`);
  const { connections: _old, ...base } = o;
  return rest.length > 0 ? { ...base, connections: rest } : base;
}
