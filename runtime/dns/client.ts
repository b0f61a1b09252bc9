// How tsrun commands talk to the resolver: ask it to reload (starting it first when an attach
// needs it), restart it when it died, ask for its statistics.
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Settings } from '../../config/settings.js';
import type { Logger } from '../log.js';
import { controlAddress, pidfilePath, resolverState } from './paths.js';
import { resolverRequestSync } from './control-sync.js';
import { closeInherited } from '../inherited-fds.js';

const START_TIMEOUT_MS = 15_000;
const REQUEST_TIMEOUT_MS = 10_000;

let blocking = false;

/** This process asks the resolver synchronously when it can (control-sync.ts): for the hook's and
 * the CNI plugin's short processes, which wait for the answer with nothing else to do and would
 * otherwise load node:net for one request. Never for a long-lived process (the agent). */
export function askResolverBlocking(): void {
  blocking = true;
}

/** Sends one command; the reply line, or undefined when no resolver listens. */
export async function resolverRequest(runDir: string, command: string, timeoutMs = REQUEST_TIMEOUT_MS): Promise<string | undefined> {
  if (blocking) {
    const r = resolverRequestSync(runDir, command, timeoutMs);
    if (r !== 'unavailable') return r.reply;
  }
  return new Promise((resolve, reject) => {
    const c = net.connect(controlAddress(runDir));
    let buf = '';
    let connected = false;
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`the resolver did not answer ${command} within ${timeoutMs} ms`));
    }, timeoutMs);
    c.on('connect', () => {
      connected = true;
      c.write(`${command}\n`);
    });
    c.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      c.destroy();
      const line = buf.slice(0, nl);
      // "error stopping": it is on its way out; the caller treats it as not running.
      resolve(line.startsWith('error stopping') ? undefined : line);
    });
    c.on('error', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
    c.on('close', () => {
      clearTimeout(timer);
      if (connected && buf.indexOf('\n') < 0) resolve(undefined);
    });
  });
}

/** The entry point of `tsrun resolver`: the bundle's tsrun.cjs, beside this module's bundle
 * (cli.cjs, hook.cjs), or built from dist/runtime/dns/ when running unbundled. */
export function tsrunEntry(): string {
  return bundleFile('tsrun.cjs');
}

/** The resolver's own bundle (runtime/dns/main.ts), beside tsrun.cjs. */
export function resolverEntry(): string {
  return bundleFile('resolver.cjs');
}

function bundleFile(name: string): string {
  const here = fileURLToPath(import.meta.url);
  const beside = path.join(path.dirname(here), name);
  if (here.endsWith('.cjs') && existsSync(beside)) return beside;
  return path.resolve(path.dirname(here), '../../bundle', name);
}

/**
 * The resolver's command line. It is the one resident tsrun process, so it runs from its own
 * small bundle (runtime/dns/main.ts: the Store, the table and the wire code, ~160 KB) rather
 * than the CLI's (~420 KB with commander, the engine and the drivers); `tsrun resolver` (the
 * CLI) is the fallback for a tree built without it.
 * A small young generation (--max-semi-space-size=2, in MiB): a long-lived server that
 * allocates per query otherwise grows its heap to V8's default semi-spaces (16 MiB each) for
 * little gain. No --jitless and no --max-lazy: the per-query path must be optimized code.
 * (--optimize-for-size measured 3-8 MiB less, but its effect on the latency tail could not be
 * told apart from the noise of a loaded machine: not taken.)
 */
export function resolverCommand(): string[] {
  const own = resolverEntry();
  // --expose-gc: the resolver collects once after reloads settle (server.ts collectSoon).
  const flags = ['--max-semi-space-size=2', '--expose-gc'];
  return existsSync(own) ? [...flags, own] : [...flags, tsrunEntry(), 'resolver'];
}

/** A resolver this process started, and, once it has started or failed, what it said. */
export interface StartedResolver {
  /** The reason it gave for failing to start (its one line), once it exited with one; else undefined. */
  failure(): string | undefined;
  /** Stops listening to it (the resolver lives on, detached). */
  close(): void;
}

/**
 * Starts a resolver in the background, in this process's network namespace. With `report`, it is
 * given a pipe (descriptor 3) that it closes once it serves, or writes its failure to before it
 * exits: a resolver that cannot start (a full or read-only run directory: its pidfile) is known at
 * once, where the caller used to wait out START_TIMEOUT_MS for it.
 */
export function spawnResolver(settings: Settings, opts: { report?: boolean } = {}): StartedResolver {
  // stdio ignored: a resolver started from a hook must not hold the runtime's pipes open (runc
  // waits for its hooks' output to close); nor any other descriptor of the caller's
  // (runtime/inherited-fds.ts). The report pipe is this process's own, closed by the resolver
  // as soon as it serves.
  closeInherited();
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '', TSRUN_RESOLVER_SETTINGS: JSON.stringify(settings), TSRUN_RESOLVER_REPORT_FD: '3' };
  if (!opts.report) delete env.TSRUN_RESOLVER_REPORT_FD;
  const child = spawn(process.execPath, resolverCommand(), {
    detached: true,
    stdio: opts.report ? ['ignore', 'ignore', 'ignore', 'pipe'] : 'ignore',
    env,
  });
  child.unref();
  const pipe = opts.report ? (child.stdio[3] as net.Socket | null) : null;
  let said = '';
  let exited: number | null | undefined;
  pipe?.unref();
  pipe?.on('data', (d: Buffer) => void (said += d.toString()));
  pipe?.on('error', () => {});
  child.once('exit', (code) => void (exited = code));
  child.once('error', () => void (exited = -1)); // no node to run: as good as failed
  return {
    failure: () => (exited !== undefined && exited !== 0 ? said.trim().split('\n')[0] || `it exited with status ${exited}` : undefined),
    close: () => pipe?.destroy(),
  };
}

/** Raised when the resolver an attach started could not start: one line, its own reason. */
export class ResolverStartError extends Error {
  override name = 'ResolverStartError';
}

/**
 * Makes the resolver's table current: asks a running one to reload, or starts one when `start`
 * (an attach that needs it) and waits until it has loaded the Store. `containers`: the change
 * was made for these containers only, so the resolver re-reads only their records (a reload of
 * every record grew an attach with the number of containers on the host). Throws
 * ResolverStartError when the resolver it started failed and none runs.
 */
export async function syncResolver(settings: Settings, log: Logger, opts: { start: boolean; containers?: readonly string[] | undefined }): Promise<boolean> {
  const command = opts.containers && opts.containers.length > 0 ? `reload ${opts.containers.join(' ')}` : 'reload';
  const first = await reload(settings.runDir, command);
  if (first !== undefined) return answered(first, log);
  if (!opts.start) return false;
  let started = spawnResolver(settings, { report: true });
  try {
    const deadline = Date.now() + START_TIMEOUT_MS;
    let delay = 20;
    let respawned = Date.now();
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 200);
      const r = await reload(settings.runDir, command);
      if (r !== undefined) return answered(r, log);
      // The one we started failed (and no other runs): say why now rather than wait it out.
      const failure = started.failure();
      if (failure !== undefined && resolverState(settings.runDir) !== 'running') {
        throw new ResolverStartError(`the DNS resolver could not start: ${failure.replace(/^tsrun resolver: /, '')}`);
      }
      // The one we started may have lost a race with a resolver that was exiting: start another.
      if (Date.now() - respawned > 3000 && resolverState(settings.runDir) !== 'running') {
        started.close();
        started = spawnResolver(settings, { report: true });
        respawned = Date.now();
      }
    }
  } finally {
    started.close();
  }
  log.warn('the DNS resolver did not start in time: names will resolve once it runs');
  return false;
}

/** One reload request; a resolver from before `reload <id>` existed (it outlives an upgrade)
 * refuses it as an unknown command, and is asked for a full reload instead. */
async function reload(runDir: string, command: string): Promise<string | undefined> {
  const reply = await resolverRequest(runDir, command);
  if (command !== 'reload' && reply?.startsWith('error unknown command')) return resolverRequest(runDir, 'reload');
  return reply;
}

/** A running resolver answered: "ok N", or the error its reload met (it keeps serving its last
 * table, and a restart would meet the same store). */
function answered(reply: string, log: Logger): boolean {
  if (!reply.startsWith('ok')) log.warn({ reply }, 'the DNS resolver could not reload');
  return true;
}

/**
 * Supervision, for every tsrun command: a pidfile whose process is dead means the resolver died
 * without exiting (a clean exit removes it). Restart it; it reloads the Store and exits by
 * itself if nothing needs it any more. Costs one file read when all is well.
 */
export function reviveResolver(settings: Settings, log: Logger): 'running' | 'restarted' | 'absent' {
  const state = resolverState(settings.runDir);
  if (state !== 'dead') return state;
  log.warn('the DNS resolver died: restarting it');
  rmSync(pidfilePath(settings.runDir), { force: true });
  spawnResolver(settings);
  return 'restarted';
}
