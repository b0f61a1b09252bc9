// What to wire, from the container's annotations. A runtime copies config.json's annotations into
// the state it hands the hook (runc, podman, CRI-O), so the state is read first; the bundle's
// config.json is the fallback for a runtime that leaves them out (podman's poststop state carries
// fewer). Every value is checked here, before anything is touched, and a bad one is reported by
// its annotation name, as the user wrote it.
import path from 'node:path';
import { readBundleJson } from '../config/bundle.js';
import { UserError } from '../config/errors.js';
import { formatAddress, parseAddressOf } from '../config/address.js';
import { parseNetMode, type NetMode } from '../config/net-mode.js';
import { parsePortsAnnotation, type PortMapping } from '../config/ports.js';

export const ANNOTATION_PREFIX = 'io.tsrun.';
export const ANNOTATIONS = {
  network: 'io.tsrun.network',
  ports: 'io.tsrun.ports',
  ip: 'io.tsrun.ip',
  ip6: 'io.tsrun.ip6',
  mac: 'io.tsrun.mac',
} as const;
const KNOWN = new Set<string>(Object.values(ANNOTATIONS));

export interface Wiring {
  mode: NetMode;
  /** io.tsrun.network was given; false means "no annotation: the default network". */
  explicit: boolean;
  ports: PortMapping[];
  ip?: string | undefined;
  ip6?: string | undefined;
  mac?: string | undefined;
}

const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;
/** The io.tsrun.* entries of an annotation map. */
export function tsrunAnnotations(all: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(all ?? {})) if (k.startsWith(ANNOTATION_PREFIX)) out[k] = v;
  return out;
}

/**
 * The tsrun annotations that apply: the state's when it has any, else the bundle's config.json's.
 * `readBundle` is injectable for tests; it is only called when the state has none.
 */
export function selectAnnotations(
  state: { bundle: string; annotations?: Record<string, string> | undefined },
  readBundle: (bundle: string) => Record<string, string> = readBundleAnnotations,
): { annotations: Record<string, string>; source: 'state' | 'config.json' | 'none' } {
  const fromState = tsrunAnnotations(state.annotations);
  if (Object.keys(fromState).length > 0) return { annotations: fromState, source: 'state' };
  const fromBundle = tsrunAnnotations(readBundle(state.bundle));
  if (Object.keys(fromBundle).length > 0) return { annotations: fromBundle, source: 'config.json' };
  return { annotations: {}, source: 'none' };
}

/** Turns tsrun's annotations into a checked wiring request. No annotation: the default network. */
export function wiringFromAnnotations(a: Record<string, string>): Wiring {
  for (const key of Object.keys(a)) {
    if (key.startsWith(ANNOTATION_PREFIX) && !KNOWN.has(key)) {
      throw new UserError(`unknown annotation ${shown(key)}: tsrun reads ${[...KNOWN].join(', ')}`);
    }
  }
  const value = (key: string): string | undefined => {
    const v = a[key];
    return v === undefined ? undefined : v.trim();
  };

  const netText = value(ANNOTATIONS.network);
  let mode: NetMode;
  if (netText === undefined) {
    mode = parseNetMode('bridge');
  } else {
    try {
      mode = parseNetMode(netText);
    } catch {
      throw new UserError(`annotation ${ANNOTATIONS.network}=${shown(netText)}: use none, host, bridge, container:<id> or a network name`);
    }
  }

  const portsText = value(ANNOTATIONS.ports);
  let ports: PortMapping[] = [];
  if (portsText !== undefined && portsText !== '') {
    try {
      ports = parsePortsAnnotation(portsText);
    } catch (err) {
      const why = (err as UserError).shortMessage?.replace(/^invalid -p /, 'invalid mapping ') ?? String(err);
      throw new UserError(`annotation ${ANNOTATIONS.ports}=${shown(portsText)}: ${why}`);
    }
  }

  const ip = address(value(ANNOTATIONS.ip), ANNOTATIONS.ip, 'ipv4');
  const ip6 = address(value(ANNOTATIONS.ip6), ANNOTATIONS.ip6, 'ipv6');
  const macText = value(ANNOTATIONS.mac);
  const mac = macText === undefined || macText === '' ? undefined : macText.toLowerCase();
  if (mac !== undefined && (!MAC.test(mac) || (parseInt(mac.slice(0, 2), 16) & 1) === 1)) {
    throw new UserError(`annotation ${ANNOTATIONS.mac}=${shown(macText!)}: expected a unicast address like 02:42:ac:11:00:02`);
  }

  if (mode.kind !== 'network') {
    const given: string[] = [];
    if (ports.length > 0) given.push(ANNOTATIONS.ports);
    if (ip !== undefined) given.push(ANNOTATIONS.ip);
    if (ip6 !== undefined) given.push(ANNOTATIONS.ip6);
    if (mac !== undefined) given.push(ANNOTATIONS.mac);
    if (given.length > 0) {
      throw new UserError(`annotation ${given[0]} needs a network, but ${ANNOTATIONS.network}=${netText} gives the container ${mode.kind === 'container' ? "another container's interfaces" : mode.kind === 'host' ? "the host's interfaces" : 'no interfaces'}`);
    }
  }
  return { mode, explicit: netText !== undefined, ports, ip, ip6, mac };
}

function address(text: string | undefined, key: string, family: 'ipv4' | 'ipv6'): string | undefined {
  if (text === undefined || text === '') return undefined;
  return formatAddress(parseAddressOf(family === 'ipv4' ? 4 : 6, text, `annotation ${key}=${shown(text)}`));
}

/**
 * The annotations of `<bundle>/config.json` (config/bundle.ts reads it), or {} when there is no
 * such file (at poststop the bundle may be gone). Only its `annotations` are looked at: the
 * runtime has validated the rest already.
 */
export function readBundleAnnotations(bundle: string): Record<string, string> {
  return readBundleTsrun(bundle).annotations;
}

/** The same, with the container's root path (absolute) when config.json names one. */
export function readBundleTsrun(bundle: string): { annotations: Record<string, string>; rootPath?: string | undefined } {
  const doc = readBundleJson(bundle, { missingOk: true });
  if (!doc) return { annotations: {} };
  const rootPath = rootPathOf(doc.dir, doc.json);
  const at = `bundle ${bundle}: config.json: annotations`;
  const ann = (doc.json as { annotations?: unknown } | null)?.annotations;
  if (ann === undefined || ann === null) return { annotations: {}, rootPath };
  if (typeof ann !== 'object' || Array.isArray(ann)) throw new UserError(`${at}: must be an object of strings`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(ann as Record<string, unknown>)) {
    if (!k.startsWith(ANNOTATION_PREFIX)) continue;
    if (typeof v !== 'string') throw new UserError(`${at}.${k}: must be a string`);
    out[k] = v;
  }
  return { annotations: out, rootPath };
}

/** The container root path of a config.json document (absolute), if it names one. */
export function rootPathOf(bundleDir: string, doc: unknown): string | undefined {
  const root = (doc as { root?: { path?: unknown } } | null | undefined)?.root?.path;
  return typeof root === 'string' && root !== '' ? path.resolve(bundleDir, root) : undefined;
}

function shown(s: string): string {
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 57)}...` : s);
}
