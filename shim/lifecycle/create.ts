// `tsrun create` and `tsrun start`, and `run -d` as the two in a row. Setup is the foreground
// run's (prepareContainer: same claim, same engine entry, same pinned namespace, same spec
// rewrite); then conmon, not this process, becomes the container's parent, and this process exits.
import { spawn } from 'node:child_process';
import { randomHex } from '../../config/random.js';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { SystemError, UserError } from '../../config/errors.js';
import type { Settings } from '../../config/settings.js';
import type { Logger } from '../../runtime/log.js';
import { processStartTime, readRecord, writeRecord } from '../../runtime/containers.js';
import { handOver, rootOf } from '../../runtime/netns-users.js';
import { prepareContainer, runcPaths, type NetworkWiring, type RunOptions } from '../run.js';
import { faultPause, type Transaction } from '../../runtime/tx.js';
import { hostHierarchies } from '../../runtime/cgroups/hierarchies.js';
import { cgroupProbes, keepCgroupMigrationWarm, keepWarmUntil, warmCgroupMigration } from '../../runtime/cgroups/migration-warmup.js';
import { cgroupsPathFor } from '../../runtime/cgroups/resources.js';
import { awaitStartByte, closeExecFifo, DetachedRuncFailure, lastRuncError, openExecFifo, startInProcess, type ExecFifo, type RuncPaths } from '../runc.js';
import { pollSignals, SETUP_INTERRUPTS } from '../supervise.js';
import { killMonitor, readPid, spawnConmon, type ConmonHandle } from './conmon.js';
import type { DetachOptions } from './detach-options.js';
import { pathsOf, updateLifecycle, writeLifecycle, type ContainerPaths } from './record.js';
import { runcState } from './status.js';

export type { DetachOptions } from './detach-options.js';

export interface RecreateHooks {
  /** Runs once the state directory exists, before conmon opens its log (restart keeps the log). */
  beforeMonitor?(p: ContainerPaths): void;
  restartCount?: number;
  /** Runs once runc create has answered, before the container is recorded (run -d opens the exec
   * fifo there). A failure after it removes the container as any failure of the creation does. */
  afterCreated?(id: string): void;
  /** run -d: startedAt goes into lifecycle.json with the container's pid, in one write before the
   * start, rather than in a write of its own after it (startCreated's `startRecorded`). */
  recordStartWithPid?: boolean;
}

/** `run -d`: create, then start, with `network` wiring it (run.cjs's and the CLI's wire networks;
 * the plain detached door's only none and host). A container that cannot start is removed.
 *
 * A signal (Ctrl-C) before the id is returned removes the container: during the creation
 * createDetached's own handler rolls back; from the moment the container is recorded until it has
 * started (the records, the exec fifo's byte or runc start: a few milliseconds, longer with a
 * poststart hook) it is removed as one that could not start, although it may have started
 * meanwhile, since nobody was told its id. Without a handler there, a signal in that window ended
 * tsrun with the container left created for gc. On success the handlers stay until the process
 * exits (the caller prints the id and exits): a signal then is held, not acted on, as the
 * container runs and its id is being printed. */
export async function createAndStart(o: RunOptions, d: DetachOptions, settings: Settings, log: Logger, network: NetworkWiring): Promise<string> {
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupted ??= sig;
  };
  // Installed before createDetached's, so that the same signal handles stay in place throughout.
  for (const sig of SETUP_INTERRUPTS) process.on(sig, onSignal);
  const checkInterrupted = () => {
    if (interrupted) throw new UserError(`interrupted by ${interrupted} during setup`);
  };
  try {
    const t0 = performance.now();
    // The exec fifo is opened as soon as runc create has answered, before the records: the init
    // then writes its byte and execs the program while they are written, and the byte is there
    // to read when they are done (opened after them, the first read came too early and waited for
    // a timer). Until the id is returned the container is removed on any failure or signal, so
    // starting it before it is recorded leaves nothing more behind than before.
    let fifo: ExecFifo | undefined;
    let id: string;
    try {
      id = await createDetached(o, d, settings, log, network, { afterCreated: (created) => (fifo = openExecFifo(runcPaths(settings), created)), recordStartWithPid: true });
    } catch (err) {
      if (fifo !== undefined) closeExecFifo(fifo);
      throw err;
    }
    const t1 = performance.now();
    await faultPause('container recorded'); // tests: a signal between the records and the start
    try {
      checkInterrupted();
      const startedBy = await startCreated(id, settings, { knownCreated: true, fifo, startRecorded: true });
      // One poll of the event loop first: a signal that came while this process ran without one
      // (the records, a byte that was already there) reaches its handler only there (pollSignals).
      await pollSignals();
      checkInterrupted();
      log.info({ containerId: id, enteredMs: +t0.toFixed(1), createMs: +(t1 - t0).toFixed(1), startMs: +(performance.now() - t1).toFixed(1), startedBy, sinceProcessStartMs: +performance.now().toFixed(1) }, 'detached container running');
    } catch (err) {
      if (fifo !== undefined) closeExecFifo(fifo);
      const { currentView, removeContainer } = await import('./signals.js');
      await removeContainer(settings, log, network, await currentView(settings, id)).catch(() => undefined);
      throw err;
    }
    return id;
  } catch (err) {
    for (const sig of SETUP_INTERRUPTS) process.off(sig, onSignal);
    throw err;
  }
}

/** Creates the container under conmon (runc create); returns its id. */
export async function createDetached(o: RunOptions, d: DetachOptions, settings: Settings, log: Logger, network: NetworkWiring, hooks: RecreateHooks = {}): Promise<string> {
  // runc's first cgroup migration (its init into the container's cgroups, under runc create)
  // waits for an RCU grace period unless one passed just before: started now, it passes while
  // this process sets up (runtime/cgroups/migration-warmup.ts, as the plain run door does).
  warmCgroupMigration(hostHierarchies());
  const instance = randomHex(8);
  let monitor: ConmonHandle | undefined;
  let tSpawn = 0;
  // conmon is started as soon as the id is claimed, held on its start pipe until the bundle is
  // written (spawnConmon): its start-up runs beside the network and the spec.
  const startMonitor = (id: string, tx: Transaction) => {
    const p = pathsOf(settings.runDir, id);
    mkdirSync(p.exitDir, { recursive: true });
    mkdirSync(p.persistDir, { recursive: true });
    hooks.beforeMonitor?.(p); // before conmon opens the log
    tSpawn = performance.now();
    monitor = spawnConmon({
      id,
      paths: p,
      runc: runcPaths(settings),
      tty: d.tty,
      stdin: d.stdin,
      logSizeMax: d.logMaxBytes,
      exitCommand: [process.execPath, path.resolve(process.argv[1]!), 'cleanup', '--instance', instance, id],
      env: monitorEnv(settings),
    });
    // Until start() conmon has created nothing: it goes last, after whatever setup made.
    tx.onRollback('stop conmon', () => stopMonitor(monitor, p));
  };
  // A signal until runc create has answered aborts the creation and rolls it back, as one during
  // prepareContainer does (its own handler): without a handler here, Ctrl-C while runc create ran
  // ended this process at once and left the created container, its conmon, network and published
  // ports behind. Installed before prepareContainer's, the same seven signal handles stay in place
  // throughout (no extra sigaction calls).
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupted ??= sig;
  };
  for (const sig of SETUP_INTERRUPTS) process.on(sig, onSignal);
  try {
    return await createMonitored();
  } finally {
    for (const sig of SETUP_INTERRUPTS) process.off(sig, onSignal);
  }

  async function createMonitored(): Promise<string> {
    const checkInterrupted = () => {
      if (interrupted) throw new UserError(`interrupted by ${interrupted} during setup`);
    };
    const prep = await prepareContainer(o, settings, log, network, { terminal: d.tty, record: { detached: 'setup' }, afterClaim: startMonitor });
    const tPrep = performance.now();
    const { id, tx } = prep;
    const p = pathsOf(settings.runDir, id);
    try {
      // Rolled back first if anything below fails: no monitor may run an exit command for a
      // container that this rollback is removing.
      tx.onRollback('stop conmon', () => stopMonitor(monitor, p));

      checkInterrupted(); // conmon is still held: nothing created yet
      const t0 = performance.now();
      // The byte goes first: conmon's fork and runc create (the bulk of run -d) start at once, and
      // what follows here runs beside them.
      const created = monitor!.start();
      // Kept open for runc's own move, which comes some 10-30 ms after the byte (conmon forks, runc
      // starts and sets the cgroups up): a move every few ms keeps the fast path open until then
      // (for at most 250 ms: the bundle's hooks run after runc's move), and no longer: once the
      // container's cgroup directories exist runc has moved its init, and a move during the rest
      // of runc create (namespaces, mounts, runc init's clones) only holds up runc's forks
      // (cgroupProbes, as the foreground run).
      const hierarchies = hostHierarchies();
      const probes = cgroupProbes(hierarchies, cgroupsPathFor(id));
      const stopWarm = keepWarmUntil(
        () => probes.length > 0 && probes.every((d) => existsSync(d)),
        () => keepCgroupMigrationWarm(hierarchies),
      );
      created.then(stopWarm, stopWarm);
      // lifecycle.json, written while runc create runs: nothing reads it before the container has
      // started (the exit command, which checks its instance, runs once the container has ended),
      // and `ps` meanwhile sees the claim (creating). A failure to write it waits for runc create's
      // answer, as any failure from here does: a rollback while runc create runs could not remove a
      // container it has not yet recorded.
      let recordFailure: unknown;
      try {
        const spec = JSON.parse(readFileSync(path.join(p.bundle, 'config.json'), 'utf8')) as { process?: { args?: string[] } };
        // The bundle is kept absolute: `restart` may run from another directory.
        writeLifecycle(settings.runDir, { id, instance, created: new Date().toISOString(), options: { ...o, bundle: prep.userBundle }, command: spec.process?.args ?? [], tty: d.tty, stdin: d.stdin, logMaxBytes: d.logMaxBytes, stopSignal: d.stopSignal, ...(d.autoRemove === true ? { autoRemove: true } : {}), restartCount: hooks.restartCount });
      } catch (err) {
        // A full run directory (ENOSPC): say what, not "internal error".
        recordFailure = new SystemError(`write the container's record ${p.record}`, err);
      }
      // conmon writes its pid file as it forks, just after the byte, long before runc create has
      // answered: the monitor's part of the records is written meanwhile (recordMonitor).
      const forked = recordFailure === undefined ? recordMonitorWhenForked(settings.runDir, id, p, created) : Promise.resolve(undefined);
      // Not before runc create has answered: a rollback while it runs could not remove a container
      // it has not yet recorded.
      const started = await created;
      if (recordFailure !== undefined) throw recordFailure;
      checkInterrupted();
      // run -d: the exec fifo opened now, so that the init goes on to its program while the records
      // are written (createAndStart reads its byte afterwards).
      hooks.afterCreated?.(id);
      let monitorRecord = await forked;
      if (monitorRecord?.pid !== started.conmonPid) monitorRecord = recordMonitor(settings.runDir, id, started.conmonPid);

      // From here conmon is the owner: gc, ps and a second `create` with this id see it alive. (Not
      // before the container exists: with the monitor as owner and no runc state, ps would show it
      // exited rather than creating.)
      const rec = readRecord(settings.runDir, id)!;
      try {
        writeRecord(settings.runDir, { ...rec, ownerPid: started.conmonPid, ownerStart: monitorRecord.start, detached: 'monitored' });
      } catch (err) {
        throw new SystemError(`write the container's record ${path.join(p.dir, 'container.json')}`, err);
      }
      // run -d: with the start's time, a few milliseconds early (the start follows at once; one
      // that fails removes the container and its records), in this one write instead of a second
      // read, parse and atomic replace of the file after the start (~0.5 ms of CPU).
      updateLifecycle(settings.runDir, id, (r) => {
        r.pid = started.pid;
        r.pidStart = processStartTime(started.pid);
        if (hooks.recordStartWithPid) r.startedAt = new Date().toISOString();
      });
      checkInterrupted();
      prep.log.info({ containerPid: started.pid, conmonPid: started.conmonPid, conmonSpawnedAtMs: +tSpawn.toFixed(1), conmonSpawnedBy: monitor!.spawnedBy, preparedMs: +tPrep.toFixed(1), conmonAtMs: +t0.toFixed(1), conmonMs: +(performance.now() - t0).toFixed(1) }, 'detached container created');
    } catch (err) {
      await tx.rollback();
      throw err;
    }
    return id;
  }
}

/** The monitor's part of the records: lifecycle.json names conmon (rm -f kills it first; a wait
 * for the end watches it), and the network namespace's user entry passes to it. */
function recordMonitor(runDir: string, id: string, conmonPid: number): { pid: number; start: string } {
  const start = processStartTime(conmonPid) ?? '';
  updateLifecycle(runDir, id, (r) => {
    r.conmonPid = conmonPid;
    r.conmonStart = start;
  });
  const root = rootOf(runDir, id);
  if (root !== undefined) handOver(runDir, root, id, conmonPid);
  return { pid: conmonPid, start };
}

/** recordMonitor as soon as conmon's pid file names it (a look every millisecond), while runc
 * creates the container; undefined when runc create answered first or the records could not be
 * written (the caller then records the monitor itself). */
async function recordMonitorWhenForked(runDir: string, id: string, p: ContainerPaths, created: Promise<unknown>): Promise<{ pid: number; start: string } | undefined> {
  let answered = false;
  created.then(
    () => (answered = true),
    () => (answered = true),
  );
  while (!answered) {
    // existsSync first: readPid's readFileSync throws (and builds an Error) at every look before
    // the file exists.
    const pid = existsSync(p.conmonPidFile) ? readPid(p.conmonPidFile) : undefined;
    if (pid !== undefined) {
      try {
        return recordMonitor(runDir, id, pid);
      } catch {
        return undefined;
      }
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  return undefined;
}

/** The conmon this process started (held or forking), and the monitor it forked (its pid file). */
function stopMonitor(monitor: ConmonHandle | undefined, p: ContainerPaths): void {
  monitor?.kill();
  killMonitor(p.conmonPidFile);
}

/** `runc start`: the created container's process runs. */
export async function startCreated(id: string, settings: Settings, o: { knownCreated?: boolean; fifo?: ExecFifo | undefined; startRecorded?: boolean } = {}): Promise<'exec fifo' | 'runc start'> {
  const runc = runcPaths(settings);
  // `run -d` has just created it: no need to ask runc (a process) again.
  const state = o.knownCreated ? { status: 'created' } : await runcState(runc, id);
  if (state?.status !== 'created') {
    throw new UserError(`container ${id} cannot be started: it is ${state?.status === undefined ? 'exited' : state.status}${state?.status === undefined ? ' (tsrun restart starts it again)' : ''}`);
  }
  const p = pathsOf(settings.runDir, id);
  // run -d opened the fifo already (createAndStart); else open it now.
  const how = (await (o.fifo !== undefined ? awaitStartByte(o.fifo) : startInProcess(runc, id))) ? 'exec fifo' : 'runc start';
  if (how === 'runc start') await runcStart(runc, id, p);
  // run -d recorded startedAt with the pid (createDetached's recordStartWithPid).
  if (!o.startRecorded) {
    updateLifecycle(settings.runDir, id, (rec) => {
      rec.startedAt = new Date().toISOString();
    });
  }
  return how;
}

async function runcStart(runc: RuncPaths, id: string, p: ContainerPaths): Promise<void> {
  // A plain spawn: this is on the path of every `run -d`, and loading execa costs ~20 ms.
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(runc.binary, ['--root', runc.root, '--log', p.runcLog, '--log-format', 'json', 'start', id], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stderr }));
  });
  if (r.code !== 0) throw new DetachedRuncFailure(lastRuncError(p.runcLog) ?? (r.stderr.trim() || 'start failed'), true);
}

/** The environment conmon passes to runc and to the exit command: the same settings as this
 * process, whether they came from flags or from the environment. */
export function monitorEnv(settings: Settings): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TSRUN_STORE: settings.store,
    TSRUN_LOG: settings.logFile,
    TSRUN_LOG_LEVEL: settings.logLevel,
    TSRUN_RUNC: settings.runc,
    TSRUN_NFT: settings.nft,
  };
  // resolveSettings puts everything under <root>/run when a root is given, else /run/tsrun.
  if (settings.runDir !== '/run/tsrun') env.TSRUN_ROOT = path.dirname(settings.runDir);
  delete env.TSRUN_DEBUG; // the exit command's stderr goes nowhere
  delete env.NODE_OPTIONS;
  return env;
}
