// What the resolver knows of the Store, kept between reloads, so that a change made for one
// container costs reading that container's records and not every record. An attach or a detach
// asks for a reload naming its container (the control command `reload <id>`), and only
// endpoints/<id>/ is read again: with 200 containers on a network, re-reading all of them made an
// attach on a network with DNS 2.4x slower than the same attach with one container there.
//
// A full read stays for everything else: the first load, the periodic re-read (a change whose
// notification was lost: a killed tsrun, a record removed by hand), any change to the networks (a
// network created or removed brings a bridge, a gateway and host addresses with it), and a reload
// that names no container (network rm, gc).
import type { NetworkDef } from '../../config/networks.js';
import type { Store } from '../store/store.js';
import { NetworkRegistry } from '../networks.js';
import { allEndpoints, endpointsOf, type EndpointRecord } from '../records.js';

export class EndpointCache {
  /** The networks as last read, and their text: a different text means a full read. */
  private nets: { text: string; defs: NetworkDef[] } | undefined;
  private readonly byContainer = new Map<string, EndpointRecord[]>();

  constructor(private readonly store: Store) {}

  /** Reads every network and every record. */
  async loadAll(): Promise<void> {
    const [nets, records] = await Promise.all([this.readNetworks(), allEndpoints(this.store)]);
    this.byContainer.clear();
    for (const r of records) {
      const list = this.byContainer.get(r.containerId);
      if (list) list.push(r);
      else this.byContainer.set(r.containerId, [r]);
    }
    this.nets = nets;
  }

  /**
   * Reads again the records of `containers` only. False (nothing changed here) when that is not
   * enough: nothing loaded yet, or the networks changed since the last full read.
   */
  async update(containers: readonly string[]): Promise<boolean> {
    if (!this.nets) return false;
    const nets = await this.readNetworks();
    if (nets.text !== this.nets.text) return false;
    const fresh = await Promise.all(containers.map(async (id) => [id, await endpointsOf(this.store, id)] as const));
    for (const [id, records] of fresh) {
      if (records.length > 0) this.byContainer.set(id, records);
      else this.byContainer.delete(id);
    }
    return true;
  }

  networks(): NetworkDef[] {
    return this.nets?.defs ?? [];
  }

  /** The networks' definitions as read (their text), '' before the first read. */
  networksText(): string {
    return this.nets?.text ?? '';
  }

  /** The records known of one container. */
  recordsOf(containerId: string): EndpointRecord[] {
    return this.byContainer.get(containerId) ?? [];
  }

  /** Every record known, grouped by container (the order DnsTable takes them in does not matter). */
  records(): EndpointRecord[] {
    return [...this.byContainer.values()].flat();
  }

  private async readNetworks(): Promise<{ text: string; defs: NetworkDef[] }> {
    const defs = await new NetworkRegistry(this.store).list();
    return { text: JSON.stringify(defs), defs };
  }
}
