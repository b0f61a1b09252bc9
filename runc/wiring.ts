// tsrun-runc's networking: the hook's own stages, run in-process at the points of runc's
// lifecycle where a runtime would run them. `create` runs createRuntime once runc has made the
// container (its namespaces exist, its process waits for `start`), so the network is there
// before the engine can start it, exactly as with a createRuntime hook; `delete` runs poststop
// once runc has deleted it. Reusing hook/stages.ts means every check the hook makes (host
// networking, container:<id>, a second live container with the id, stale records) holds here too.
//
// A marker per wired container is what `delete` looks for: the shell front tests for that one file
// and otherwise hands `delete` to runc without starting Node. It is keyed by runc's --root and the
// container id (<runDir>/runc-net/by-root<root>/<id>.json): two engines (two runc roots) may use
// one id, and one's `delete --force` must never find the other's marker (it would kill that
// container's init and tear its network down). Markers of the layout before (<runDir>/runc-net/
// <id>.json) are adopted by the delete of the root whose runc holds that container (legacyMarker).
import { readFileSync, rmSync } from 'node:fs';
import { mkdirPrivate, writeFileReplacing } from '../runtime/files.js';
import path from 'node:path';
import type { Settings } from '../config/settings.js';
import type { Logger } from '../runtime/log.js';
import { runStage, type StageOutcome } from '../hook/stages.js';
import type { HookTiming } from '../hook/timing.js';

export interface WiredMarker {
  id: string;
  /** The bundle the engine gave runc (create). */
  bundle: string;
  /** For `run`: the private copy of the bundle, with tsrun's hooks, that runc was given. */
  privateBundle?: string | undefined;
  /** The container's init once runc created it (create), and its start time in clock ticks:
   * `delete --force` kills it and waits for its end itself (see runc/main.ts). */
  pid?: number | undefined;
  pidStart?: string | undefined;
}

/** runc's state root as runc itself picks it: --root, else $XDG_RUNTIME_DIR/runc for a non-root
 * user, else /run/runc; absolute and normalised (the marker's key). */
export function runcRootOf(globals: Map<string, string>, env: NodeJS.ProcessEnv, euid: number = process.geteuid?.() ?? 0): string {
  const given = globals.get('root');
  if (given) return path.resolve(given);
  if (euid !== 0 && env.XDG_RUNTIME_DIR) return path.resolve(env.XDG_RUNTIME_DIR, 'runc');
  return '/run/runc';
}

export function markerDir(settings: Settings, root: string): string {
  return path.join(settings.runDir, 'runc-net', `by-root${root}`);
}

export function markerPath(settings: Settings, root: string, id: string): string {
  return path.join(markerDir(settings, root), `${id}.json`);
}

/** Where markers were before they were keyed by root: one per id for every engine. */
export function legacyMarkerPath(settings: Settings, id: string): string {
  return path.join(settings.runDir, 'runc-net', `${id}.json`);
}

/** Where `run` puts the private copy of a bundle, keyed as the markers are. */
export function privateBundleDir(settings: Settings, root: string, id: string): string {
  return path.join(settings.runDir, 'runc-bundles', `by-root${root}`, id);
}

/** Written before anything is wired: a tsrun-runc killed half-way leaves a marker, so the
 * engine's `delete` still comes to tsrun and tears down what was done. */
export function writeMarker(settings: Settings, root: string, m: WiredMarker): void {
  mkdirPrivate(settings.runDir);
  mkdirPrivate(path.join(settings.runDir, 'runc-net'));
  mkdirPrivate(markerDir(settings, root));
  writeFileReplacing(markerPath(settings, root, m.id), `${JSON.stringify(m)}\n`);
}

function readJson(file: string): WiredMarker | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as WiredMarker;
  } catch {
    return undefined;
  }
}

export function readMarker(settings: Settings, root: string, id: string): WiredMarker | undefined {
  return readJson(markerPath(settings, root, id));
}

export function removeMarker(settings: Settings, root: string, id: string): void {
  rmSync(markerPath(settings, root, id), { force: true });
}

/**
 * A marker of the layout before roots (an upgrade with containers running), adopted into this
 * root's place when runc under this root holds a container of that id made from the marker's
 * bundle (`runcState`: runc's own `state`, pid and bundle): then it is this engine's. Anything
 * else (another engine's container, no container) leaves it where it is, for its owner.
 */
export function adoptLegacyMarker(
  settings: Settings,
  root: string,
  id: string,
  runcState: () => { pid?: number; bundle?: string } | undefined,
): WiredMarker | undefined {
  const legacy = legacyMarkerPath(settings, id);
  const m = readJson(legacy);
  if (!m || m.id !== id) return undefined;
  const state = runcState();
  if (!state || typeof state.bundle !== 'string') return undefined;
  const bundle = m.privateBundle ?? m.bundle;
  if (typeof bundle !== 'string' || path.resolve(state.bundle) !== path.resolve(bundle)) return undefined;
  if (m.pid !== undefined && typeof state.pid === 'number' && state.pid > 0 && state.pid !== m.pid) return undefined;
  writeMarker(settings, root, m);
  rmSync(legacy, { force: true });
  return m;
}

export interface StageRun {
  settings: Settings;
  log: Logger;
  id: string;
  bundle: string;
  annotations: Record<string, string>;
}

/**
 * Evaluates the modules createRuntime will import (engine, store, netlink, firewall), for the
 * time `runc create` runs: runc is another process, so this work overlaps it instead of following
 * it. Never fails: a module that cannot load fails again, and is reported, where it is used.
 */
export async function preloadWiring(): Promise<void> {
  await Promise.all([
    import('../runtime/netns/netns.js'),
    import('../runtime/store/open.js'),
    import('../runtime/records.js'),
    import('../runtime/liveness.js'),
    import('../runtime/context.js'),
    import('../runtime/netns-users.js'),
    // koffi and libnftables (the firewall batch, and koffi again for setns into the container):
    // loading the FFI's native addon is 10-40 ms of the wiring's critical path otherwise.
    import('../runtime/firewall/libnft.js').then((m) => m.libnftAvailable()),
  ]).catch(() => undefined);
}

/** createRuntime for a container runc has just created (its process is `pid`). */
export function wireCreated(r: StageRun & { pid: number }, timing: HookTiming): Promise<StageOutcome> {
  return runStage({
    stage: 'createRuntime',
    state: { ociVersion: '1.0.2', id: r.id, status: 'created', pid: r.pid, bundle: r.bundle, annotations: r.annotations },
    settings: r.settings,
    log: r.log,
    timing,
    imageChecked: true,
  });
}

/** poststop for a container runc has deleted: tears down from the records, idempotent. */
export function unwireDeleted(r: StageRun, timing: HookTiming): Promise<StageOutcome> {
  return runStage({
    stage: 'poststop',
    state: { ociVersion: '1.0.2', id: r.id, status: 'stopped', bundle: r.bundle, annotations: r.annotations },
    settings: r.settings,
    log: r.log,
    timing,
  });
}
