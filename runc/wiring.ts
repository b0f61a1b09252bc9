// tsrun-runc's networking: the hook's own stages, run in-process at the points of runc's
// lifecycle where a runtime would run them. `create` runs createRuntime once runc has made the
// container (its namespaces exist, its process waits for `start`), so the network is there
// before the engine can start it, exactly as with a createRuntime hook; `delete` runs poststop
// once runc has deleted it. Reusing hook/stages.ts means every check the hook makes (host
// networking, container:<id>, a second live container with the id, stale records) holds here too.
//
// A marker per wired container (<runDir>/runc-net/<id>.json) is what `delete` looks for: the
// shell front tests for that one file and otherwise hands `delete` to runc without starting Node.
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

export function markerDir(settings: Settings): string {
  return path.join(settings.runDir, 'runc-net');
}

export function markerPath(settings: Settings, id: string): string {
  return path.join(markerDir(settings), `${id}.json`);
}

/** Written before anything is wired: a tsrun-runc killed half-way leaves a marker, so the
 * engine's `delete` still comes to tsrun and tears down what was done. */
export function writeMarker(settings: Settings, m: WiredMarker): void {
  mkdirPrivate(markerDir(settings));
  writeFileReplacing(markerPath(settings, m.id), `${JSON.stringify(m)}\n`);
}

export function readMarker(settings: Settings, id: string): WiredMarker | undefined {
  try {
    return JSON.parse(readFileSync(markerPath(settings, id), 'utf8')) as WiredMarker;
  } catch {
    return undefined;
  }
}

export function removeMarker(settings: Settings, id: string): void {
  rmSync(markerPath(settings, id), { force: true });
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
