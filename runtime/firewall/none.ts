// The firewall that does nothing: for hosts without nftables and for tests of other layers.
// Networks still work, but there is no outbound NAT, no published ports and no isolation.
import type { FirewallBackend, FirewallOwners } from './backend.js';

export class NoneFirewall implements FirewallBackend {
  readonly kind = 'none' as const;
  async intact(): Promise<boolean> {
    return true;
  }
  async restore(): Promise<void> {}
  async setUnderlay(): Promise<void> {}
  async ensureBase(): Promise<void> {}
  async addNetwork(): Promise<void> {}
  async removeNetwork(): Promise<void> {}
  async attach(): Promise<void> {}
  async removeEndpoint(): Promise<void> {}
  async listOwners(): Promise<FirewallOwners> {
    return { containers: [], networks: [] };
  }
  async purge(): Promise<number> {
    return 0;
  }
}
