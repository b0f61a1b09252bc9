// How `tsrun run` gets its network namespace: none and host are namespace choices made in the
// spec; a network means a namespace tsrun creates and pins, wired by the engine in this process
// before runc starts; container:<id> joins another container's namespace.
import path from 'node:path';
import type { NetworkWiring } from './run.js';
import { UserError } from '../config/errors.js';

function pinPath(runDir: string, containerId: string): string {
  return path.join(runDir, 'netns', containerId);
}

export const shimNetworkWiring: NetworkWiring = {
  async wire(o, containerId, settings, tx, log) {
    switch (o.net.kind) {
      case 'none':
        if (o.publish.length > 0) throw new UserError('-p needs a network: --net none has no interfaces to publish on');
        return { kind: 'new' };
      case 'host':
        if (o.publish.length > 0) throw new UserError('-p is not needed with --net host: the container uses the host ports directly');
        return { kind: 'host' };
      case 'container':
        throw new UserError('--net container:<id> is not available yet');
      case 'network': {
        const { createPinnedNetns, deletePinnedNetns } = await import('../runtime/netns/netns.js');
        const { openEngine } = await import('../runtime/context.js');
        const pin = pinPath(settings.runDir, containerId);
        await tx.step('create the container network namespace', () => createPinnedNetns(pin), () => deletePinnedNetns(pin));
        const handle = await openEngine(settings, log);
        tx.onRollback('close the store', () => handle.close());
        const network = o.net.network;
        await tx.step(
          `attach to network ${network}`,
          () => handle.engine.attach({ containerId, netnsPath: pin, network, ip: o.ip, ip6: o.ip6, mac: o.mac, ports: o.publish }),
          async () => void (await handle.engine.detach(containerId)),
        );
        return { kind: 'path', path: pin };
      }
    }
  },

  async release(containerId, _stale, settings, log) {
    const { deletePinnedNetns } = await import('../runtime/netns/netns.js');
    const { openEngine } = await import('../runtime/context.js');
    const handle = await openEngine(settings, log);
    try {
      await handle.engine.detach(containerId);
    } finally {
      await handle.close();
    }
    deletePinnedNetns(pinPath(settings.runDir, containerId));
  },
};
