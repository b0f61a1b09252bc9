// Turns the user's bundle spec plus tsrun's flags into the spec runc receives. Pure: the caller
// writes the result into tsrun's state directory, and the user's config.json is never modified.
import type { Spec, SpecMount, SpecNamespace } from '../config/oci.js';
import { applyResourceLimits, type ResourceLimits } from '../runtime/cgroups/resources.js';

/** How the container's network namespace is chosen: none/bridge/… get a new or pinned one,
 * host gets none at all, container:<id> gets the other container's. */
export type NetnsChoice =
  | { kind: 'new' } // runc creates it and brings lo up (`--net none`)
  | { kind: 'host' } // no network namespace: the host's interfaces
  | { kind: 'path'; path: string }; // a namespace tsrun pinned and wired, or another container's

export interface SpecOverrides {
  /** The root filesystem, absolute and free of symlinks (runc refuses a symlinked root). */
  rootfs: string;
  args?: string[] | undefined;
  env?: string[] | undefined;
  hostname?: string | undefined;
  cwd?: string | undefined;
  netns: NetnsChoice;
  resources: ResourceLimits;
  cgroupsPath: string;
  /** On a pure cgroup v2 host the container gets its own cgroup namespace (docker's default
   * there), so it sees its own limits at /sys/fs/cgroup; v1 and hybrid hosts keep the host's. */
  cgroupLayout?: 'v1' | 'hybrid' | 'v2' | undefined;
  annotations?: Record<string, string> | undefined;
  /** `-t`: the process gets a pseudo-terminal (runc makes it; conmon holds it when detached). */
  terminal?: boolean | undefined;
  /** The generated /etc/resolv.conf (shim/resolv-conf.ts); a mount the user's spec already has
   * on that path wins. */
  resolvConf?: SpecMount | undefined;
  /** `--init`: a static init on the host (tini, catatonit), bind-mounted at INIT_PATH and run as
   * PID 1 in front of the container's program. */
  init?: string | undefined;
  /** `-u/--user`, resolved against the root filesystem (shim/user.ts): the process's ids, and
   * HOME for an environment that has none (docker's). */
  user?: { uid: number; gid: number; additionalGids?: number[] | undefined; home: string } | undefined;
}

/** Where --init's binary appears in the container: under /dev, the tmpfs runc mounts, so nothing
 * is created in the user's root filesystem. */
export const INIT_PATH = '/dev/init';

/** The spec runc gets: `spec` with `o` applied, as a copy; `inPlace`: `spec` itself, changed, for a
 * caller whose spec is its own and used for nothing else (the run's, just read from config.json:
 * structuredClone of a 2 KB spec is ~0.1 ms of a cold process before runc's spawn). */
export function rewriteSpec(spec: Spec, o: SpecOverrides, opts: { inPlace?: boolean } = {}): Spec {
  const out: Spec = opts.inPlace === true ? spec : structuredClone(spec);
  // The spec moves to another directory, so a relative root must be anchored to the bundle.
  out.root = { ...out.root, path: o.rootfs };

  if (o.args && o.args.length > 0) out.process.args = [...o.args];
  if (o.env && o.env.length > 0) out.process.env = mergeEnv(out.process.env ?? [], o.env);
  if (o.cwd !== undefined) out.process.cwd = o.cwd;
  if (o.user !== undefined) {
    const { uid, gid, additionalGids, home } = o.user;
    out.process.user = { uid, gid, ...(additionalGids ? { additionalGids } : {}) };
    if (!(out.process.env ?? []).some((e) => e.startsWith('HOME='))) out.process.env = [...(out.process.env ?? []), `HOME=${home}`];
  }
  if (o.hostname !== undefined) out.hostname = o.hostname;
  if (o.terminal !== undefined) out.process.terminal = o.terminal;
  if (o.annotations) out.annotations = { ...out.annotations, ...o.annotations };
  if (o.init !== undefined) {
    // After every other mount (the /dev tmpfs must be there first); read-only, like docker-init.
    const withMounts = out as Spec & { mounts?: SpecMount[] };
    withMounts.mounts = [...(withMounts.mounts ?? []), { destination: INIT_PATH, type: 'bind', source: o.init, options: ['bind', 'ro', 'nosuid', 'nodev'] }];
    out.process.args = [INIT_PATH, '--', ...out.process.args];
  }

  const linux = (out.linux ??= {});
  let namespaces: SpecNamespace[] = (linux.namespaces ?? []).filter((ns) => ns.type !== 'network');
  if (o.netns.kind === 'new') namespaces.push({ type: 'network' });
  if (o.netns.kind === 'path') namespaces.push({ type: 'network', path: o.netns.path });
  // A hostname needs a UTS namespace of its own, or runc would refuse (or rename the host).
  if (out.hostname !== undefined && !namespaces.some((ns) => ns.type === 'uts')) namespaces.push({ type: 'uts' });
  if (o.cgroupLayout === 'v2' && !namespaces.some((ns) => ns.type === 'cgroup')) namespaces.push({ type: 'cgroup' });
  namespaces = sortNamespaces(namespaces);
  linux.namespaces = namespaces;

  if (o.resolvConf) {
    const withMounts = out as Spec & { mounts?: SpecMount[] };
    const mounts = withMounts.mounts ?? [];
    if (!mounts.some((m) => m.destination.replace(/\/+$/, '') === '/etc/resolv.conf')) withMounts.mounts = [...mounts, o.resolvConf];
  }

  linux.resources = applyResourceLimits(linux.resources, o.resources);
  linux.cgroupsPath = o.cgroupsPath;
  return out;
}

/** `--env K=V` replaces K if the bundle sets it, else appends: like docker's -e. */
export function mergeEnv(base: string[], overrides: string[]): string[] {
  const result = [...base];
  for (const entry of overrides) {
    const key = entry.slice(0, entry.indexOf('='));
    const at = result.findIndex((e) => e.slice(0, e.indexOf('=')) === key);
    if (at >= 0) result[at] = entry;
    else result.push(entry);
  }
  return result;
}

const NS_ORDER = ['pid', 'network', 'ipc', 'uts', 'mount', 'user', 'cgroup', 'time'];
function sortNamespaces(list: SpecNamespace[]): SpecNamespace[] {
  return [...list].sort((a, b) => NS_ORDER.indexOf(a.type) - NS_ORDER.indexOf(b.type));
}
