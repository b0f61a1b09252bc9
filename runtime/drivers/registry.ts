// Which driver serves which `--driver` value. One line per mode; the engine asks here.
import type { NetworkDriverName } from '../../config/networks.js';
import type { NetworkDriver } from './driver.js';
import { BridgeDriver } from './bridge.js';
import { MacvlanDriver } from './macvlan.js';
import { IpvlanDriver } from './ipvlan.js';
import { OverlayDriver } from './overlay.js';

const FACTORIES: Partial<Record<NetworkDriverName, () => NetworkDriver>> = {
  bridge: () => new BridgeDriver(),
  macvlan: () => new MacvlanDriver(),
  ipvlan: () => new IpvlanDriver(),
  overlay: () => new OverlayDriver(),
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
