// Which driver serves which `--driver` value. One line per mode; the engine asks here.
import type { NetworkDriverName } from '../../config/networks.js';
import type { NetworkDriver } from './driver.js';
import { BridgeDriver } from './bridge.js';

const FACTORIES: Partial<Record<NetworkDriverName, () => NetworkDriver>> = {
  bridge: () => new BridgeDriver(),
};

const made = new Map<NetworkDriverName, NetworkDriver>();

/** The driver for `name`, or undefined when this build has none. */
export function driverFor(name: NetworkDriverName): NetworkDriver | undefined {
  let d = made.get(name);
  if (!d) {
    const factory = FACTORIES[name];
    if (!factory) return undefined;
    d = factory();
    made.set(name, d);
  }
  return d;
}
