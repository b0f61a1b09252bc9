// The firewall step of an attach, made leak-proof. A batch can fail after the kernel applied it:
// a signal interrupting libnftables while it reads nf_tables' answer is reported as "Interrupted
// system call" for a committed batch. The transaction registers an undo only for a step that
// succeeded, so such an attach rolled back everything but its elements, and the orphaned
// port-map entry refused every later container that published the same port (and pointed the
// port at an address IPAM would hand on). On any failure, whatever carries this container's owner
// tag goes: purge is owner-aware, so it never touches another container's elements, including
// the one a real conflict was about, nor this container's elements of its endpoints on other
// networks (`others`, read only on failure): purged too, the container lost its published ports
// there and, its port guard's elements gone, every frame of that port (the guard drops a port it
// does not know).
import type { Logger } from '../log.js';
import type { FirewallBackend, FirewallEndpoint, FirewallNetwork } from './backend.js';

export async function attachOrPurge(firewall: FirewallBackend, net: FirewallNetwork, ep: FirewallEndpoint, log: Logger, others: () => Promise<FirewallEndpoint[]> = async () => []): Promise<void> {
  try {
    await firewall.attach(net, ep);
  } catch (err) {
    try {
      const purged = await firewall.purge({ container: ep.containerId, keep: await others() });
      if (purged > 0) log.warn({ container: ep.containerId, purged }, 'the failed firewall batch had been applied: its elements removed');
    } catch (purgeErr) {
      log.warn({ container: ep.containerId, err: String(purgeErr) }, 'could not purge the elements of a failed firewall batch (tsrun gc removes them)');
    }
    throw err;
  }
}
