// The container's /etc/resolv.conf, for every front door that writes a spec (`tsrun run`, detached
// containers): a file generated into the container's state directory and bind-mounted over the
// rootfs's own, through the spec rewrite. The user's bundle is never written.
import { lstatSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Settings } from '../config/settings.js';
import { isHostOnlyNameserver, parseResolvConf, renderContainerResolvConf, type ResolvConf } from '../config/resolv-conf.js';
import type { SpecMount } from '../config/oci.js';
import { SystemError } from '../config/errors.js';

/** What the network wiring decided about a container's name resolution. */
export type DnsPlan =
  /** Its resolv.conf points at the resolver on its network's gateway(s). */
  | { kind: 'resolver'; addresses: string[]; searchDomain?: string | undefined }
  /** docker's behaviour: the host's servers (or --dns), host-only ones left out unless hostNetwork. */
  | { kind: 'copy'; dns: string[]; hostNetwork: boolean }
  /** --net container:<id>: the file of the container whose namespace it joins. */
  | { kind: 'shared'; file: string };

export const RESOLV_CONF_NAME = 'resolv.conf';

export function readHostResolvConf(settings: Settings): ResolvConf {
  try {
    return parseResolvConf(readFileSync(settings.resolvConf, 'utf8'));
  } catch {
    return { nameservers: [], search: [], options: [] };
  }
}

/** True when a copied resolv.conf would be left with no usable server (the host's resolvers are
 * all on its loopback, as with systemd-resolved): such a container needs the resolver instead. */
export function needsResolverToForward(settings: Settings, dns: string[]): boolean {
  if (dns.length > 0) return false;
  return readHostResolvConf(settings).nameservers.every(isHostOnlyNameserver);
}

/**
 * Writes the container's resolv.conf into `containerDir` and returns the mount for it, or
 * undefined when the rootfs has no regular /etc/resolv.conf to mount over (runc would otherwise
 * create one inside the user's rootfs).
 */
export function resolvConfMount(settings: Settings, containerDir: string, rootfs: string, plan: DnsPlan | undefined): SpecMount | undefined {
  if (!plan) return undefined;
  let st;
  try {
    st = lstatSync(path.join(rootfs, 'etc', 'resolv.conf'));
  } catch {
    return undefined;
  }
  if (!st.isFile()) return undefined;
  let source: string;
  if (plan.kind === 'shared') {
    source = plan.file;
  } else {
    const host = readHostResolvConf(settings);
    const text =
      plan.kind === 'resolver'
        ? renderContainerResolvConf({ host, resolver: plan.addresses, searchDomain: plan.searchDomain })
        : renderContainerResolvConf({ host, dns: plan.dns, hostNetwork: plan.hostNetwork });
    source = path.join(containerDir, RESOLV_CONF_NAME);
    try {
      writeFileSync(source, text);
    } catch (err) {
      throw new SystemError(`write the container's resolv.conf ${source}`, err); // ENOSPC: say what, not "internal error"
    }
  }
  return { destination: '/etc/resolv.conf', type: 'bind', source, options: ['rbind', 'rprivate'] };
}
