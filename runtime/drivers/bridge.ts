// The bridge driver: a Linux bridge per network and a veth pair per container (the shared pieces
// are in linux-bridge.ts, which the overlay driver builds on too).
import type { NetworkDef } from '../../config/networks.js';
import type { Issue } from '../../config/validate.js';
import type { Rtnl } from '../netlink/rtnl.js';
import type { Transaction } from '../tx.js';
import type { EndpointRecord } from '../records.js';
import type { Logger } from '../log.js';
import type { AttachContext, DetachOptions, DriverEndpoint, NetworkDriver } from './driver.js';
import { attachVeth, ensureBridge, removeOwnBridge, removeVeth } from './linux-bridge.js';

export { BRIDGE_ALIAS_PREFIX, VETH_ALIAS_PREFIX, ensureHostSysctls, hostVethName } from './linux-bridge.js';

export class BridgeDriver implements NetworkDriver {
  validate(net: NetworkDef): Issue[] {
    return net.subnet4 || net.subnet6 ? [] : [{ path: 'subnet', message: `network ${net.name} has no subnet` }];
  }

  async ensureNetwork(net: NetworkDef, host: Rtnl, tx: Transaction, log: Logger): Promise<void> {
    await ensureBridge(net, host, tx, log, { mtu: net.mtu });
  }

  async attach(ctx: AttachContext, tx: Transaction): Promise<DriverEndpoint> {
    return attachVeth(ctx, tx, { mtu: ctx.net.mtu });
  }

  async detach(rec: EndpointRecord, host: Rtnl | undefined, _store?: unknown, opts: DetachOptions = {}): Promise<void> {
    if (host) await removeVeth(host, rec, opts); // already gone: that is done too
  }

  async removeNetwork(net: NetworkDef, host: Rtnl): Promise<void> {
    await removeOwnBridge(net, host);
  }
}
