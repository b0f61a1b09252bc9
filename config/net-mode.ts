// The --net / io.tsrun.network value: a namespace choice (none, host, container:<id>) or the
// name of a network to attach to ("bridge" is the default network, named "tsrun").
import { UserError } from './errors.js';
import { checkContainerId, checkNetworkName } from './ids.js';

export const DEFAULT_NETWORK = 'tsrun';

export type NetMode =
  | { kind: 'none' }
  | { kind: 'host' }
  | { kind: 'container'; containerId: string }
  | { kind: 'network'; network: string };

export function parseNetMode(text: string): NetMode {
  const value = text.trim();
  if (value === 'none') return { kind: 'none' };
  if (value === 'host') return { kind: 'host' };
  if (value === 'bridge' || value === 'default') return { kind: 'network', network: DEFAULT_NETWORK };
  if (value.startsWith('container:')) {
    const id = value.slice('container:'.length);
    if (id === '') throw new UserError('invalid --net "container:": name the container, as in container:<id>');
    return { kind: 'container', containerId: checkContainerId(id) };
  }
  if (value === '') throw new UserError('invalid --net "": use none, host, bridge, container:<id> or a network name');
  try {
    return { kind: 'network', network: checkNetworkName(value) };
  } catch {
    throw new UserError(`invalid --net ${JSON.stringify(value)}: use none, host, bridge, container:<id> or a network name`);
  }
}
