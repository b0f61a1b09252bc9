// Registering the hook with runtimes: a hooks.d directory (podman --hooks-dir, containers.conf
// hooks_dir, CRI-O's hooks_dir) or the hooks of one bundle's config.json (plain runc).
//
// Runtimes run hooks with a clean environment (podman's poststop gets nothing but PWD, no PATH),
// so a registration carries everything: absolute paths of node and tsrun's entry point, and the
// settings in force when it was made (state root, store, log, the nft binary) in the hook's env.
//
// hooks.d: one file per stage. A hooks.d file has a single `args` list for all of its stages, and
// the state JSON does not say which stage is running, so the stage must be in the args: hence
// <name>-createRuntime.json and <name>-poststop.json rather than one file listing both.
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { writeFileReplacing } from '../runtime/files.js';
import path from 'node:path';
import { UserError } from '../config/errors.js';
import { loadBundleConfig } from '../config/bundle.js';
import { STAGES, isStage, type Stage } from './state.js';

/** How a runtime starts tsrun's hook: all absolute, all recorded. */
export interface HookCommand {
  /** Absolute path of what runs the entry: the node binary for a bundle file (tsrun.cjs), /bin/sh
   * for a registration through the old sh launcher (dist/bundle/tsrun, a node script with a shell
   * line since the launcher went: it still runs that way). */
  node: string;
  /** Absolute path of tsrun's entry point (dist/bundle/tsrun or dist/bundle/tsrun.cjs). */
  entry: string;
  /** KEY=VALUE lines: the settings the hook must run with. */
  env: string[];
  /** Seconds before the runtime kills the hook. */
  timeout: number;
}

/** The settings to record, as resolved by the registering command. */
export interface RecordedSettings {
  /** TSRUN_ROOT when one was in force (absolute); otherwise the FHS defaults apply. */
  root?: string | undefined;
  store: string;
  logFile: string;
  logLevel: string;
  /** Absolute path of nft (the hook must not look it up in a PATH it does not have). */
  nft: string;
}

export const DEFAULT_TIMEOUT_S = 30;
export const SETUP_STAGES: Stage[] = ['createRuntime', 'prestart'];

export function hookEnv(s: RecordedSettings): string[] {
  const env = [];
  if (s.root !== undefined) env.push(`TSRUN_ROOT=${s.root}`);
  env.push(`TSRUN_STORE=${s.store}`, `TSRUN_LOG=${s.logFile}`, `TSRUN_LOG_LEVEL=${s.logLevel}`, `TSRUN_NFT=${s.nft}`);
  return env;
}

/**
 * How a runtime should start tsrun's hook: node with the bundle's entry (tsrun.cjs), never the sh
 * launcher. Runtimes run a hook with the environment its registration records and nothing else, so
 * the launcher's one choice (TSRUN_SNAPSHOT=1: the door's start-up snapshot) could never be made
 * for a hook; it only cost each hook process a sh (~3 ms of a cold createRuntime or poststop,
 * measured: docs/hook-cold.md). `entry` may be the entry script dist/bundle/tsrun (the launcher's path): its tsrun.cjs is
 * registered instead.
 */
export function hookRunner(node: string, entry: string): { node: string; entry: string } {
  const beside = path.join(path.dirname(entry), 'tsrun.cjs');
  if (path.basename(entry) === 'tsrun' && existsSync(beside)) return { node, entry: beside };
  return { node, entry };
}

export function hookCommand(node: string, entry: string, settings: RecordedSettings, timeout = DEFAULT_TIMEOUT_S): HookCommand {
  for (const [what, p] of [['node', node], ['entry point', entry], ['nft', settings.nft]] as const) {
    if (!path.isAbsolute(p)) throw new UserError(`the hook needs absolute paths: ${what} is ${JSON.stringify(p)}`);
  }
  if (!Number.isInteger(timeout) || timeout < 1 || timeout > 3600) throw new UserError(`invalid --timeout ${timeout}: use 1-3600 seconds`);
  return { node, entry, env: hookEnv(settings), timeout };
}

/** One runtime-spec hook entry (config.json `hooks.<stage>[]`, and `hook` in a hooks.d file). */
export function ociHookEntry(cmd: HookCommand, stage: Stage): { path: string; args: string[]; env: string[]; timeout: number } {
  return { path: cmd.node, args: [cmd.node, cmd.entry, 'hook', stage], env: [...cmd.env], timeout: cmd.timeout };
}

/** Parses `--stages createRuntime,poststop` and checks the combination. */
export function parseStages(text: string): Stage[] {
  const names = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new UserError('--stages is empty: use e.g. createRuntime,poststop');
  const stages: Stage[] = [];
  for (const n of names) {
    if (!isStage(n)) throw new UserError(`invalid --stages: unknown stage ${JSON.stringify(n)} (stages: ${STAGES.join(', ')})`);
    if (n === 'startContainer') {
      throw new UserError('invalid --stages: startContainer hooks run inside the container, where node and tsrun are not installed');
    }
    if (!stages.includes(n)) stages.push(n);
  }
  if (stages.some((s) => SETUP_STAGES.includes(s)) && !stages.includes('poststop')) {
    throw new UserError('invalid --stages: add poststop, or nothing tears the network down when the container is deleted');
  }
  return stages;
}

/** `--annotation KEY=REGEX` pairs. */
export function parseAnnotationConditions(values: string[]): [string, string][] {
  return values.map((v) => {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new UserError(`invalid --annotation ${JSON.stringify(v)}: expected KEY=REGEX, e.g. io.tsrun.network=.+`);
    const key = v.slice(0, eq);
    const regex = v.slice(eq + 1);
    try {
      new RegExp(regex);
    } catch (err) {
      throw new UserError(`invalid --annotation ${JSON.stringify(v)}: ${(err as Error).message}`);
    }
    return [key, regex];
  });
}

/**
 * The hooks.d `when`: every container, or those whose annotations match all the conditions.
 * The runtimes treat the keys as regular expressions too, so a key is escaped and anchored: it
 * names one annotation exactly. The value is the user's regex, as given.
 */
export function whenClause(conditions: [string, string][]): { always: true } | { annotations: Record<string, string> } {
  if (conditions.length === 0) return { always: true };
  const annotations: Record<string, string> = {};
  for (const [key, regex] of conditions) annotations[`^${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`] = regex;
  return { annotations };
}

export function hooksDFile(cmd: HookCommand, stage: Stage, when: ReturnType<typeof whenClause>): Record<string, unknown> {
  return { version: '1.0.0', hook: ociHookEntry(cmd, stage), when, stages: [stage] };
}

export function hooksDFileName(name: string, stage: Stage): string {
  return `${name}-${stage}.json`;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function checkName(name: string): string {
  if (!NAME.test(name)) throw new UserError(`invalid --name ${JSON.stringify(name)}: use 1-64 characters from [A-Za-z0-9_.-]`);
  return name;
}

/** Writes one hooks.d file per stage (atomically: podman and CRI-O may read the directory at
 * any moment); returns their paths. Installing again replaces them. */
export function installHooksDir(dir: string, opts: { name: string; stages: Stage[]; cmd: HookCommand; conditions: [string, string][] }): string[] {
  const name = checkName(opts.name);
  const abs = path.resolve(dir);
  mkdirSync(abs, { recursive: true });
  const when = whenClause(opts.conditions);
  const written: string[] = [];
  for (const stage of opts.stages) {
    const file = path.join(abs, hooksDFileName(name, stage));
    writeAtomically(file, `${JSON.stringify(hooksDFile(opts.cmd, stage, when), null, 2)}\n`, 0o644);
    written.push(file);
  }
  // Stages registered before but not now would keep firing: remove them.
  for (const stage of STAGES) if (!opts.stages.includes(stage)) removeIfOurs(path.join(abs, hooksDFileName(name, stage)));
  return written;
}

/** Removes tsrun's hooks.d files of that name; returns the paths removed (none is fine). */
export function uninstallHooksDir(dir: string, name: string): string[] {
  checkName(name);
  const abs = path.resolve(dir);
  if (!existsSync(abs)) return [];
  const removed: string[] = [];
  const ours = new Set(STAGES.map((s) => hooksDFileName(name, s)));
  for (const f of readdirSync(abs)) {
    if (!ours.has(f)) continue;
    if (removeIfOurs(path.join(abs, f))) removed.push(path.join(abs, f));
  }
  return removed;
}

/** A file is tsrun's when its hook runs `<entry> hook <stage>`; someone else's is left alone. */
function removeIfOurs(file: string): boolean {
  let json: { hook?: { args?: unknown } };
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as typeof json;
  } catch {
    return false;
  }
  const args = json.hook?.args;
  if (!Array.isArray(args) || args[2] !== 'hook' || typeof args[3] !== 'string' || !isStage(args[3])) return false;
  unlinkSync(file);
  return true;
}

/** True for a hook entry that runs tsrun's hook (any stage). */
export function isTsrunHookEntry(h: unknown, entry?: string): boolean {
  const args = (h as { args?: unknown } | null)?.args;
  if (!Array.isArray(args) || args[2] !== 'hook' || typeof args[3] !== 'string' || !isStage(args[3])) return false;
  if (entry === undefined || args[1] === entry) return true;
  if (typeof args[1] !== 'string') return false;
  // A registration through the launcher (dist/bundle/tsrun, as tsrun registered hooks before) and
  // one of tsrun.cjs are the same hook: registering again replaces either.
  const name = (p: string) => (path.basename(p) === 'tsrun' ? 'tsrun.cjs' : path.basename(p));
  return name(args[1]) === name(entry);
}

/**
 * A copy of the spec with tsrun's hooks in it: the setup stage and poststop. Hooks already there
 * stay, in their order; an earlier registration of tsrun's is replaced, not repeated.
 */
export function withTsrunHooks(spec: Record<string, unknown>, cmd: HookCommand, setupStage: Stage): Record<string, unknown> {
  if (!SETUP_STAGES.includes(setupStage)) throw new UserError(`invalid --stage ${setupStage}: use createRuntime or prestart`);
  const hooks: Record<string, unknown[]> = { ...((spec.hooks as Record<string, unknown[]> | undefined) ?? {}) };
  for (const stage of STAGES) {
    const list = hooks[stage];
    if (!Array.isArray(list)) continue;
    const kept = list.filter((h) => !isTsrunHookEntry(h, cmd.entry));
    if (kept.length > 0) hooks[stage] = kept;
    else delete hooks[stage];
  }
  for (const stage of [setupStage, 'poststop'] as const) hooks[stage] = [...(hooks[stage] ?? []), ociHookEntry(cmd, stage)];
  return { ...spec, hooks };
}

/** Adds tsrun's hooks to `<bundle>/config.json` in place (the point of the command). */
export function addHooksToBundle(bundle: string, cmd: HookCommand, setupStage: Stage): string {
  const { file, raw } = loadBundleConfig(bundle);
  const updated = withTsrunHooks(raw, cmd, setupStage);
  writeAtomically(file, `${JSON.stringify(updated, null, 2)}\n`, statSync(file).mode & 0o7777);
  return file;
}

/** A random, exclusively created temporary name (runtime/files.ts): the bundle directory may be
 * writable by someone who would plant a symlink at a predictable one. */
function writeAtomically(file: string, text: string, mode: number): void {
  try {
    writeFileReplacing(file, text, mode);
  } catch (err) {
    throw new UserError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
