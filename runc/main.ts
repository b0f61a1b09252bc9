// tsrun-runc's Node side: the commands the shell front (runc/tsrun-runc.sh) hands it, which are
// `create` and `run` of a bundle that mentions io.tsrun., `delete` of a container tsrun-runc
// wired, `--version`, and whatever the front could not parse. Anything without tsrun annotations
// goes to runc unchanged here too, so the front is only ever an optimisation.
//
//   create  runc create as given → createRuntime (hook/stages.ts) for the new container's
//           namespace → exit 0; if wiring fails, the container is force-deleted and the failure
//           is reported the way runc reports its own (runc-log.ts), exit 1
//   run     runc has no "between create and start" to offer here, so runc is handed a private
//           copy of the bundle whose config.json carries tsrun's hooks (hook/register.ts); the
//           engine's bundle is never touched
//   delete  runc delete as given → poststop (teardown from the records) once the container is
//           gone → runc's own status
import { realpathSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError, userFacingMessage } from '../config/errors.js';
import { checkContainerId } from '../config/ids.js';
import { resolveSettings, type Settings } from '../config/settings.js';
import { ANNOTATION_PREFIX, readBundleTsrun, wiringFromAnnotations } from '../hook/annotations.js';
import { dropImageAnnotations, IMAGE_NOT_FOUND } from '../hook/image-annotations.js';
import { HookTiming } from '../hook/timing.js';
import { resolveBinary } from '../runtime/binaries.js';
import { isAlive, processStartTime } from '../runtime/containers.js';
import { killAndWait } from '../runtime/process-exit.js';
import { mkdirPrivate, writeFileReplacing } from '../runtime/files.js';
import { createLogger, type Logger } from '../runtime/log.js';
import { flagIsTrue, parseRuncArgs, type RuncArgs } from './args.js';
import { exitLike, queryRunc, runRunc, type RuncOutcome } from './exec-runc.js';
import { loadBundle } from '../shim/bundle.js';
import { reportRuncError } from './runc-log.js';
import { adoptLegacyMarker, preloadWiring, privateBundleDir, readMarker, removeMarker, runcRootOf, unwireDeleted, wireCreated, writeMarker, type WiredMarker } from './wiring.js';

declare const TSRUN_BUILD: { version: string; commit: string } | undefined;

export interface RuncMainOptions {
  entryMs?: number;
  env?: NodeJS.ProcessEnv;
}

interface Ctx {
  argv: string[];
  args: RuncArgs;
  settings: Settings;
  runc: string;
  /** runc's state root for this engine (--root or runc's default): markers are keyed by it. */
  root: string;
  env: NodeJS.ProcessEnv;
  /** Where a wiring command's time goes (Node start-up, module loading, work), for its log lines. */
  timing: HookTiming;
  /** Global flags for tsrun-runc's own runc calls: the engine's, minus its log (a query that
   * fails on purpose must not put an error line into the engine's log). */
  quietGlobals: string[];
}

/** The front door as runc/entry.ts and the start-up snapshot (scripts/snapshot-entry.cjs) call it. */
export function door(args: string[], entryMs?: number): Promise<number> {
  return runcMain(args, { entryMs });
}

export async function runcMain(argv: string[], opts: RuncMainOptions = {}): Promise<number> {
  const env = opts.env ?? process.env;
  const args = parseRuncArgs(argv);
  const target = { file: args.globals.get('log'), format: args.globals.get('log-format') };
  let runc: string;
  try {
    runc = resolveBinary(env.TSRUN_RUNC || 'runc', env);
  } catch (err) {
    reportRuncError(target, `tsrun-runc: ${userFacingMessage(err)}`);
    return 1;
  }
  const settings = resolveSettings(env);
  const quietGlobals = [...args.globals].filter(([k]) => k !== 'log' && k !== 'log-format').map(([k, v]) => `--${k}=${v}`);
  const ctx: Ctx = { argv, args, settings, runc, root: runcRootOf(args.globals, env), env, timing: new HookTiming(opts.entryMs), quietGlobals };
  try {
    if (args.version) return version(runc);
    switch (args.command) {
      case 'create':
        return await create(ctx);
      case 'run':
        return await run(ctx);
      case 'delete':
        return await del(ctx);
      default:
        return passThrough(ctx);
    }
  } catch (err) {
    reportRuncError(target, `${args.command ? `tsrun-runc ${args.command}` : 'tsrun-runc'}: ${userFacingMessage(err)}`);
    return 1;
  }
}

async function passThrough(ctx: Ctx): Promise<number> {
  const fds = Number(ctx.args.flags.get('preserve-fds') ?? 0);
  return exitLike(await runRunc(ctx.runc, ctx.argv, { preserveFds: Number.isInteger(fds) && fds > 0 && fds < 1024 ? fds : 0 }));
}

/** The container id and tsrun annotations of a create/run, or undefined when tsrun has no part
 * in it (no annotations, host or none networking, or input runc itself must judge). */
function tsrunPart(ctx: Ctx): { id: string; bundle: string; annotations: Record<string, string>; fromImage: string[] } | undefined {
  const id = ctx.args.positionals[0];
  if (id === undefined) return undefined;
  try {
    checkContainerId(id);
  } catch {
    return undefined; // runc refuses it with its own message
  }
  const bundle = path.resolve(ctx.args.flags.get('bundle') || '.');
  let annotations: Record<string, string>;
  let fromImage: string[];
  let imageNotFound: true | undefined;
  try {
    const read = readBundleTsrun(bundle);
    annotations = read.annotations;
    if (Object.keys(annotations).length === 0 && ctx.env.TSRUN_RUNC_ENV_KEYS === '1') annotations = annotationsFromEnv(bundle);
    // What the container's image set (podman copies its manifest's annotations, and its ENV is
    // the process's) is not the user's request: an image must not choose a network or publish
    // ports on the host (hook/image-annotations.ts).
    ({ annotations, fromImage, imageNotFound } = dropImageAnnotations(annotations, read.rootPath, id, ctx.env));
  } catch {
    return undefined; // an unreadable or malformed config.json: runc's own error says so
  }
  if (fromImage.length > 0) logger(ctx, id, ctx.args.command ?? 'create').warn({ fromImage }, imageNotFound ? IMAGE_NOT_FOUND : 'annotations set by the container\'s image are not honoured');
  if (Object.keys(annotations).length === 0) return undefined;
  // Checked before runc is called: a bad annotation creates nothing.
  const wiring = wiringFromAnnotations(annotations);
  if (wiring.mode.kind === 'none' || wiring.mode.kind === 'host') return undefined;
  return { id, bundle, annotations, fromImage };
}

/**
 * The same keys as process environment variables (`docker run -e io.tsrun.network=web`), for
 * engines that cannot set OCI annotations: Docker before API 1.43 (Docker 24), such as Debian's
 * 20.10. Read only when the bundle has no tsrun annotation, through the shim's bundle loader
 * (the hook's reader looks at annotations only), and only when the wrapper was installed with
 * `--env-keys` (TSRUN_RUNC_ENV_KEYS=1): the process environment includes the image's own ENV,
 * so otherwise whoever built the image would choose its network and publish its ports on the
 * host for a user who asked for `--network none`.
 */
function annotationsFromEnv(bundleDir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of loadBundle(bundleDir).spec.process.env ?? []) {
    const eq = kv.indexOf('=');
    if (kv.startsWith(ANNOTATION_PREFIX) && eq > 0) out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

function logger(ctx: Ctx, id: string, command: string): Logger {
  return createLogger({ file: ctx.settings.logFile, level: ctx.settings.logLevel, debug: ctx.settings.debug, bindings: { containerId: id, stage: `tsrun-runc ${command}` } });
}

async function create(ctx: Ctx): Promise<number> {
  const part = tsrunPart(ctx);
  if (!part) return passThrough(ctx);
  const { id, bundle, annotations } = part;
  const log = logger(ctx, id, 'create');
  // A marker already there belongs to a container with this id that tsrun-runc wired: runc is
  // about to refuse the duplicate, and that container's marker must stay for its own delete. (If
  // it is stale, from a crash, runc creates the new one and the stage clears the stale record.)
  const earlier = readMarker(ctx.settings, ctx.root, id) !== undefined;
  if (!earlier) writeMarker(ctx.settings, ctx.root, { id, bundle });
  const creating = runRunc(ctx.runc, ctx.argv, { preserveFds: Number(ctx.args.flags.get('preserve-fds') ?? 0) || 0 });
  await ctx.timing.load(preloadWiring); // while runc creates the container
  const created = await creating;
  if (created.code !== 0) {
    if (!earlier) removeMarker(ctx.settings, ctx.root, id);
    return exitLike(created);
  }
  if (earlier) writeMarker(ctx.settings, ctx.root, { id, bundle });
  try {
    const pid = containerPid(ctx, id);
    writeMarker(ctx.settings, ctx.root, { id, bundle, pid, pidStart: processStartTime(pid) });
    const outcome = await wireCreated({ settings: ctx.settings, log, id, bundle, annotations, pid }, ctx.timing);
    log.info({ ...outcome, ...ctx.timing.summary() }, 'tsrun-runc create: wired');
    return 0;
  } catch (err) {
    log.error({ err }, 'tsrun-runc create: wiring failed, deleting the container');
    queryRunc(ctx.runc, [...ctx.quietGlobals, 'delete', '--force', id]);
    removeMarker(ctx.settings, ctx.root, id);
    throw err;
  }
}

/** The container's process: from --pid-file (engines always pass one), else runc's state. */
function containerPid(ctx: Ctx, id: string): number {
  const pidFile = ctx.args.flags.get('pid-file');
  let text: string | undefined;
  if (pidFile) {
    try {
      text = readFileSync(path.resolve(pidFile), 'utf8');
    } catch {
      text = undefined;
    }
  }
  if (text === undefined) {
    const state = queryRunc(ctx.runc, [...ctx.quietGlobals, 'state', id]);
    text = state === undefined ? undefined : String((JSON.parse(state) as { pid?: number }).pid ?? '');
  }
  const pid = Number(text?.trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new UserError(`cannot find the process of container ${id} that runc created`);
  return pid;
}

async function del(ctx: Ctx): Promise<number> {
  const id = ctx.args.positionals[0];
  const marker = id === undefined ? undefined : safeMarker(ctx, id);
  if (id === undefined || !marker) return passThrough(ctx);
  const log = logger(ctx, id, 'delete');
  const unwire = async () => {
    const outcome = await unwireDeleted({ settings: ctx.settings, log, id, bundle: marker.bundle, annotations: {} }, ctx.timing);
    log.info({ ...outcome, ...ctx.timing.summary() }, 'tsrun-runc delete: torn down');
  };
  const done = (deleted: RuncOutcome) => {
    if (marker.privateBundle) rmSync(marker.privateBundle, { recursive: true, force: true });
    removeMarker(ctx.settings, ctx.root, id);
    return exitLike(deleted);
  };
  if (await initEnded(ctx, marker)) {
    // The container can no longer run: runc's delete and the teardown need nothing of each
    // other, so they go side by side. Should runc still fail (the container stays), the marker
    // stays too and the engine's next delete comes back here; the teardown is idempotent.
    const [deleted, unwired] = await Promise.allSettled([runRunc(ctx.runc, ctx.argv), unwire()]);
    const outcome = deleted.status === 'fulfilled' ? deleted.value : { code: 1 };
    if (unwired.status === 'rejected') throw unwired.reason;
    if (outcome.code !== 0 && queryRunc(ctx.runc, [...ctx.quietGlobals, 'state', id]) !== undefined) return exitLike(outcome);
    return done(outcome);
  }
  const deleted = await runRunc(ctx.runc, ctx.argv);
  // A refused delete (still running, no --force) leaves the container and its network alone.
  if (deleted.code !== 0 && queryRunc(ctx.runc, [...ctx.quietGlobals, 'state', id]) !== undefined) return exitLike(deleted);
  await unwire();
  return done(deleted);
}

/**
 * Whether the container's init (recorded at create) has ended, ending it first for `--force`.
 * `runc delete --force` of a live container SIGKILLs its init and then sleeps 100 ms before it
 * first looks whether it has ended: tsrun-runc sends the same SIGKILL to the same process (its
 * start time checked) and sees it end within milliseconds; runc, given the engine's words
 * unchanged, then finds the container stopped and only destroys it (killing what is left in the
 * cgroup of a container without a pid namespace of its own, as it always does). A process that
 * does not end (a frozen cgroup), or a marker without a pid (`run`), is left to runc as before.
 */
async function initEnded(ctx: Ctx, marker: WiredMarker): Promise<boolean> {
  if (marker.pid === undefined || marker.pidStart === undefined) return false;
  if (flagIsTrue(ctx.args.flags.get('force'))) return killAndWait(marker.pid, marker.pidStart, 500);
  return !isAlive(marker.pid, marker.pidStart);
}

function safeMarker(ctx: Ctx, id: string): WiredMarker | undefined {
  try {
    checkContainerId(id);
  } catch {
    return undefined;
  }
  return (
    readMarker(ctx.settings, ctx.root, id) ??
    // Written before markers were keyed by root (a container of the tsrun-runc before an upgrade):
    // this engine's only if runc under this root holds that container.
    adoptLegacyMarker(ctx.settings, ctx.root, id, () => {
      const text = queryRunc(ctx.runc, [...ctx.quietGlobals, 'state', id]);
      try {
        return text === undefined ? undefined : (JSON.parse(text) as { pid?: number; bundle?: string });
      } catch {
        return undefined;
      }
    })
  );
}

async function run(ctx: Ctx): Promise<number> {
  const part = tsrunPart(ctx);
  if (!part) return passThrough(ctx);
  const { id } = part;
  // A live container with this id: runc refuses the duplicate with its own message, and nothing
  // of that container's (its private bundle, its network) may be touched on the way.
  if (queryRunc(ctx.runc, [...ctx.quietGlobals, 'state', id]) !== undefined) return passThrough(ctx);
  const privateBundle = await writePrivateBundle(ctx, part.bundle, id);
  writeMarker(ctx.settings, ctx.root, { id, bundle: part.bundle, privateBundle });
  const words: string[] = [...ctx.args.globalWords, 'run', '--bundle', privateBundle];
  for (const [k, v] of ctx.args.flags) if (k !== 'bundle') words.push(`--${k}=${v}`);
  words.push('--', ...ctx.args.positionals);
  const outcome = await runRunc(ctx.runc, words, { preserveFds: Number(ctx.args.flags.get('preserve-fds') ?? 0) || 0 });
  const stays = (flagIsTrue(ctx.args.flags.get('detach')) || flagIsTrue(ctx.args.flags.get('keep'))) && queryRunc(ctx.runc, [...ctx.quietGlobals, 'state', id]) !== undefined;
  if (!stays) {
    // runc has deleted the container and its poststop hook tore the network down; this catches
    // a hook that could not run (the records say whether anything is left).
    const log = logger(ctx, id, 'run');
    await unwireDeleted({ settings: ctx.settings, log, id, bundle: part.bundle, annotations: {} }, ctx.timing);
    rmSync(privateBundle, { recursive: true, force: true });
    removeMarker(ctx.settings, ctx.root, id);
  }
  return exitLike(outcome);
}

/** A copy of the engine's bundle for `run`: its config.json with tsrun's hooks, the root and
 * relative bind sources made absolute (runc resolves them from the bundle directory). */
async function writePrivateBundle(ctx: Ctx, bundleDir: string, id: string): Promise<string> {
  const { hookCommand, hookRunner, withTsrunHooks } = await import('../hook/register.js');
  const bundle = loadBundle(bundleDir);
  const spec = { ...(bundle.spec as Record<string, unknown>) } as Record<string, any>;
  spec.root = { ...spec.root, path: bundle.rootfs };
  if (Array.isArray(spec.mounts)) {
    spec.mounts = spec.mounts.map((m: Record<string, unknown>) =>
      typeof m.source === 'string' && !m.source.startsWith('/') && isBind(m) ? { ...m, source: path.resolve(bundle.dir, m.source) } : m,
    );
  }
  const root = ctx.env.TSRUN_ROOT ? path.resolve(ctx.env.TSRUN_ROOT) : undefined;
  const self = hookRunner(realpathSync(process.execPath), path.join(path.dirname(fileURLToPath(import.meta.url)), 'tsrun.cjs'));
  const cmd = hookCommand(self.node, self.entry, {
    root,
    store: ctx.settings.store,
    logFile: ctx.settings.logFile,
    logLevel: ctx.settings.logLevel,
    nft: resolveBinary(ctx.settings.nft, ctx.env),
  });
  // The copy carries the process's environment (`-e` secrets): private, as `tsrun run`'s own
  // rewritten bundle is (a state root that another path made 0755 is tightened first).
  mkdirPrivate(ctx.settings.runDir);
  mkdirPrivate(path.join(ctx.settings.runDir, 'runc-bundles'));
  const dir = privateBundleDir(ctx.settings, ctx.root, id);
  mkdirPrivate(dir);
  writeFileReplacing(path.join(dir, 'config.json'), `${JSON.stringify(withTsrunHooks(spec, cmd, 'createRuntime'), null, 2)}\n`);
  return dir;
}

function isBind(m: Record<string, unknown>): boolean {
  return m.type === 'bind' || (Array.isArray(m.options) && m.options.some((o) => o === 'bind' || o === 'rbind'));
}

/** runc's three-line shape, naming tsrun-runc, with the spec version of the runc underneath. */
function version(runc: string): number {
  const build = typeof TSRUN_BUILD !== 'undefined' && TSRUN_BUILD ? TSRUN_BUILD : { version: 'dev', commit: 'unknown' };
  const spec = /^spec: (.+)$/m.exec(queryRunc(runc, ['--version']) ?? '')?.[1] ?? 'unknown';
  process.stdout.write(`tsrun-runc version ${build.version}\ncommit: ${build.commit}\nspec: ${spec}\n`);
  return 0;
}

/** Compiles the paths every tsrun-runc run takes (for the build's V8 code cache). No I/O. */
export function warmUp(): void {
  parseRuncArgs(['--root', '/run/x', '--log=/l', '--log-format', 'json', 'create', '--bundle', '/b', '--pid-file', '/p', '--console-socket', '/s', 'id']);
  parseRuncArgs(['--root=/run/x', 'delete', '--force', 'id']);
  wiringFromAnnotations({ 'io.tsrun.network': 'web', 'io.tsrun.ports': '8080:80' });
}
