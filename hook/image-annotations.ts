// Annotations that came from the container's image, not from its user. podman (4.x, specgen's
// "annotations from the image") copies an OCI image's manifest annotations into the container's
// spec and marks nothing: an image carrying `io.tsrun.network=web`, `io.tsrun.ports=2222:22`
// reaches the hook's state and tsrun-runc's bundle exactly as `--annotation` does (the user's
// `--annotation` wins on the same key). Whoever built the image would choose the network and
// publish ports on the host.
//
// The spec cannot tell them apart, but the image can be found: podman (and CRI-O) keep it in
// containers/storage, and the container's root is that storage's mount of its layer
// (`<graph>/overlay/<layer>/merged`, `<graph>/vfs/dir/<layer>`, and likewise for btrfs, zfs, aufs
// and devicemapper). `<graph>/<driver>-containers/
// containers.json` names the container's image, and `<graph>/<driver>-images/<image>/` holds its
// manifests ("manifest", and "manifest-<digest>" stored as "=" + base64 of the name). A tsrun key
// whose value is the one an image manifest carries is the image's, and is not honoured: a user
// who gives the same key another value is honoured (podman took the user's). A root outside
// containers/storage (docker, containerd, `podman --rootfs`, runc) has no image to ask: nothing
// is dropped (those engines copy no image annotations).
import { constants, openSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { readRegularFd } from '../config/bundle.js';
import { ANNOTATION_PREFIX } from './annotations.js';

/** The warning when the container's image is in no store tsrun knows: its tsrun keys are ignored. */
export const IMAGE_NOT_FOUND = "the container's image is in no image store tsrun knows (storage.conf additionalimagestores): its io.tsrun.* annotations are ignored, since the image's cannot be told from the user's";

/** containers.json grows with the containers of the storage: ~1 KiB each. */
const STORE_MAX_BYTES = 64 * 1024 * 1024;
/** containers/storage refuses manifests above 4 MiB. */
const MANIFEST_MAX_BYTES = 4 * 1024 * 1024;

/** Reads a regular file of at most `max` bytes (no FIFO, no device), or undefined. */
function readSmall(file: string, max: number): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch {
    return undefined;
  }
  try {
    return readRegularFd(fd, max, (why) => new Error(why));
  } catch {
    return undefined;
  }
}

function parse(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Where each graph driver of containers/storage mounts a layer under its home <graph>/<driver>:
 * <home>/<this>/<layer> (overlay: <home>/<layer>/merged; devicemapper: <home>/mnt/<layer>/rootfs). */
const LAYER_DIRS: Readonly<Record<string, string>> = { vfs: 'dir', btrfs: 'subvolumes', zfs: 'graph', aufs: 'mnt' };

/** The containers/storage layout a container root path belongs to, if it looks like one. */
export function storageOf(rootPath: string): { graph: string; driver: string } | undefined {
  const p = path.resolve(rootPath);
  const up1 = path.dirname(p);
  const up2 = path.dirname(up1);
  const up3 = path.dirname(up2);
  // overlay: <graph>/overlay/<layer>/merged; vfs: <graph>/vfs/dir/<layer>; btrfs, zfs, aufs alike
  if (path.basename(p) === 'merged' && path.basename(up2) === 'overlay') return { graph: path.dirname(up2), driver: 'overlay' };
  const driver = path.basename(up2);
  if (Object.hasOwn(LAYER_DIRS, driver) && LAYER_DIRS[driver] === path.basename(up1)) return { graph: path.dirname(up2), driver };
  if (path.basename(p) === 'rootfs' && path.basename(up2) === 'mnt' && path.basename(up3) === 'devicemapper') return { graph: path.dirname(up3), driver: 'devicemapper' };
  return undefined;
}

/**
 * The additional (read-only) image stores containers/storage is configured with: storage.conf's
 * `additionalimagestores` ($CONTAINERS_STORAGE_CONF, else /etc/containers/storage.conf, else
 * /usr/share/containers/storage.conf, the files podman reads as root). Stores given on podman's
 * command line (--storage-opt) are not seen here: an image there is not found, which fails closed.
 */
export function additionalImageStores(env: NodeJS.ProcessEnv = process.env): string[] {
  for (const file of [env.CONTAINERS_STORAGE_CONF, '/etc/containers/storage.conf', '/usr/share/containers/storage.conf']) {
    if (!file) continue;
    const text = readSmall(file, MANIFEST_MAX_BYTES);
    if (text === undefined) continue;
    // TOML: additionalimagestores = [ "/a", '/b' ] (one line or several); comments dropped first.
    const m = /^\s*additionalimagestores\s*=\s*\[([^\]]*)\]/m.exec(text.replace(/#[^\n"']*$/gm, ''));
    return m ? [...m[1]!.matchAll(/"([^"]+)"|'([^']+)'/g)].map((q) => q[1] ?? q[2]!).filter((d) => path.isAbsolute(d)) : [];
  }
  return [];
}

/**
 * The io.tsrun.* annotations of the manifests of the image the container `id` was made from, or
 * undefined when its root is not a containers/storage layer of a container with that id; 'not
 * found' when containers/storage says the container has an image that is in none of the stores
 * tsrun knows (the primary one, the additional ones of additionalImageStores): what it set cannot
 * be told from the user's request.
 */
export function imageTsrunAnnotations(rootPath: string, id: string, env: NodeJS.ProcessEnv = process.env): Map<string, Set<string>> | 'not found' | undefined {
  const where = storageOf(rootPath);
  if (!where) return undefined;
  const containers = parse(readSmall(path.join(where.graph, `${where.driver}-containers`, 'containers.json'), STORE_MAX_BYTES));
  if (!Array.isArray(containers)) return undefined;
  const entry = containers.find((c) => c !== null && typeof c === 'object' && (c as { id?: unknown }).id === id) as { image?: unknown } | undefined;
  const image = entry?.image;
  if (typeof image !== 'string' || !/^[0-9a-f]{64}$/.test(image)) return undefined;
  // The primary store first, then the additional (read-only) ones: an image pulled into one of
  // those was not found before, and its keys were honoured (fail open).
  let dir = '';
  let names: string[] | undefined;
  for (const store of [where.graph, ...additionalImageStores(env)]) {
    dir = path.join(store, `${where.driver}-images`, image);
    try {
      names = readdirSync(dir);
      break;
    } catch {
      // not in this store
    }
  }
  if (names === undefined) return 'not found';
  const found = new Map<string, Set<string>>();
  for (const file of names) {
    const name = file.startsWith('=') ? Buffer.from(file.slice(1), 'base64').toString('utf8') : file;
    const add = (k: string, v: unknown) => {
      if (!k.startsWith(ANNOTATION_PREFIX) || typeof v !== 'string') return;
      let set = found.get(k);
      if (!set) found.set(k, (set = new Set()));
      set.add(v);
    };
    if (name.startsWith('manifest')) {
      const ann = (parse(readSmall(path.join(dir, file), MANIFEST_MAX_BYTES)) as { annotations?: unknown } | undefined)?.annotations;
      if (ann !== null && typeof ann === 'object') for (const [k, v] of Object.entries(ann as Record<string, unknown>)) add(k, v);
    } else if (name === `sha256:${image}`) {
      // The image's config: its ENV reaches the process environment, which tsrun-runc reads
      // for `--env-keys` wrappers (Docker before 24): the same rule holds for those keys.
      const env = (parse(readSmall(path.join(dir, file), MANIFEST_MAX_BYTES)) as { config?: { Env?: unknown } } | undefined)?.config?.Env;
      if (Array.isArray(env)) {
        for (const kv of env) {
          if (typeof kv !== 'string') continue;
          const eq = kv.indexOf('=');
          if (eq > 0) add(kv.slice(0, eq), kv.slice(eq + 1));
        }
      }
    }
  }
  return found;
}

/**
 * `annotations` without the tsrun keys the container's image supplied (same key, same value in
 * one of its manifests), and which keys those were. Nothing is dropped for a container outside
 * containers/storage; every tsrun key is, with `imageNotFound`, for one whose image
 * containers/storage names but tsrun cannot find (fail closed: an image in a store tsrun does
 * not know could otherwise choose the network and publish ports).
 */
export function dropImageAnnotations(
  annotations: Record<string, string>,
  rootPath: string | undefined,
  id: string,
  env: NodeJS.ProcessEnv = process.env,
): { annotations: Record<string, string>; fromImage: string[]; imageNotFound?: true } {
  const keys = Object.keys(annotations).filter((k) => k.startsWith(ANNOTATION_PREFIX));
  if (keys.length === 0 || rootPath === undefined) return { annotations, fromImage: [] };
  const image = imageTsrunAnnotations(rootPath, id, env);
  if (image === 'not found') {
    return { annotations: Object.fromEntries(Object.entries(annotations).filter(([k]) => !k.startsWith(ANNOTATION_PREFIX))), fromImage: keys, imageNotFound: true };
  }
  if (!image || image.size === 0) return { annotations, fromImage: [] };
  const kept: Record<string, string> = {};
  const fromImage: string[] = [];
  for (const [k, v] of Object.entries(annotations)) {
    if (image.get(k)?.has(v)) fromImage.push(k);
    else kept[k] = v;
  }
  return { annotations: kept, fromImage };
}
