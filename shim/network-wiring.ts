// How `tsrun run` gets its network namespace: none and host are namespace choices made in the
// spec; networks go through the engine (bridge issue); container:<id> joins another container.
import type { NetworkWiring } from './run.js';
import { UserError } from '../config/errors.js';

export const shimNetworkWiring: NetworkWiring = {
  async wire(o) {
    switch (o.net.kind) {
      case 'none':
        if (o.publish.length > 0) throw new UserError('-p needs a network: --net none has no interfaces to publish on');
        return { kind: 'new' };
      case 'host':
        if (o.publish.length > 0) throw new UserError('-p is not needed with --net host: the container uses the host ports directly');
        return { kind: 'host' };
      case 'container':
        throw new UserError('--net container:<id> is not available yet');
      case 'network':
        throw new UserError(`--net ${o.net.network}: network attachment is not available yet`);
    }
  },
  async release() {},
};
