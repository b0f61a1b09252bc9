// VXLAN ids: one per overlay network, unique in the cluster. Each is claimed with createIfAbsent
// on overlay/vni/<id>, so two hosts creating networks at once can never end up sharing one.
import { ConflictError, UserError } from '../../config/errors.js';
import { OVERLAY_VNI_FIRST, VNI_MAX } from '../../config/networks.js';
import type { Store } from '../store/store.js';
import { clusterOf } from '../store/scoped.js';
import { vniKey } from './keys.js';

/** Overlay networks are defined in the cluster: without one they make no sense. */
export function requireCluster(store: Store, what: string): void {
  if (!clusterOf(store)) throw new UserError(`${what} needs a cluster store: pass --store etcd://HOST:PORT (or set TSRUN_STORE)`);
}

/** Claims `wanted`, or the lowest free id from OVERLAY_VNI_FIRST, for `network`. */
export async function reserveVni(store: Store, network: string, wanted: number | undefined): Promise<number> {
  if (wanted !== undefined) {
    if (await store.createIfAbsent(vniKey(wanted), network)) return wanted;
    const owner = await store.get(vniKey(wanted));
    throw new ConflictError(`--vni ${wanted} is already used by overlay network ${owner ?? '(being removed)'}`);
  }
  const taken = new Set((await store.list('overlay/vni/')).map((e) => Number(e.key.slice('overlay/vni/'.length))));
  for (let vni = OVERLAY_VNI_FIRST; vni <= VNI_MAX; vni++) {
    if (taken.has(vni)) continue;
    if (await store.createIfAbsent(vniKey(vni), network)) return vni;
  }
  throw new UserError('no free VXLAN id left: pass --vni');
}

export async function releaseVni(store: Store, vni: number, network: string): Promise<void> {
  await store.deleteIf(vniKey(vni), network);
}

/** Releases every id reserved in `network`'s name (its definition unreadable, its id unknown). */
export async function releaseVnisOf(store: Store, network: string): Promise<void> {
  for (const e of await store.list('overlay/vni/')) if (e.value === network) await store.deleteIf(e.key, network);
}
