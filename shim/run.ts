// `tsrun run`: bundle → spec rewrite → network → runc run → supervise → clean up.
// Setup is one Transaction; the same undo steps are the teardown when the container ends, so a
// failure at any point and a normal exit leave exactly the same (empty) state behind.
import { mkdirPrivate, PRIVATE_DIR_MODE, writeFileExclusive } from '../runtime/files.js';
import path from 'node:path';
import type { Settings } from '../config/settings.js';
import type { NetMode } from '../config/net-mode.js';
import type { PortMapping } from '../config/ports.js';
import { SystemError, UserError } from '../config/errors.js';
import { generateContainerId } from '../config/ids.js';
import type { Logger } from '../runtime/log.js';
import { Transaction, faultPause } from '../runtime/tx.js';
import { claimContainer, containerDir, removeContainerDir, warmRemoval, type ContainerRecord } from '../runtime/containers.js';
import { cgroupsPathFor, type ResourceLimits } from '../runtime/cgroups/resources.js';
import { descendantsOf, emptyCgroup, removeCgroup } from '../runtime/cgroups/cleanup.js';
import { hostHierarchies, layoutOf } from '../runtime/cgroups/hierarchies.js';
import { loadBundle } from './bundle.js';
import { rewriteSpec, type NetnsChoice } from './spec-rewrite.js';
import type { Spec } from '../config/oci.js';
import { RESOLV_CONF_NAME, resolvConfMount, type DnsPlan } from './resolv-conf.js';
import { lastRuncError, runcFailureStatus, runcKill, runcNotFound, runcPaths, runcPathsForSpawn, removeRuncState, spawnRuncRun, type RuncPaths } from './runc.js';
import { DEFAULT_STOP_TIMEOUT_S, exitStatusOf, holdSignals, pollSignals, superviseChild, SETUP_INTERRUPTS, type ChildExit } from './supervise.js';
import { findInit } from './init.js';
import { resolveUser } from './user.js';
import type { InheritingChild } from './spawn-inherit.js';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { cgroupProbes, keepCgroupMigrationWarm, keepWarmUntil } from '../runtime/cgroups/migration-warmup.js';
import { killMonitor, pathsOf } from './lifecycle/record.js';
import { makeGate, rememberEnd, withGateHook } from './runc-gate.js';

export interface RunOptions {
  bundle: string;
  name?: string | undefined;
  args: string[];
  env: string[];
  hostname?: string | undefined;
  cwd?: string | undefined;
  net: NetMode;
  publish: PortMapping[];
  ip?: string | undefined;
  ip6?: string | undefined;
  mac?: string | undefined;
  /** --network-alias: more DNS names on the network. */
  networkAliases?: string[] | undefined;
  /** --dns: upstream servers. */
  dns?: string[] | undefined;
  resources: ResourceLimits;
  /** `--init`: a minimal init (tini, catatonit) runs as PID 1, forwards signals, reaps zombies. */
  init?: boolean | undefined;
  /** `--stop-timeout`: seconds from a stop signal (SIGINT/SIGTERM) to SIGKILL; docker's 10 s. */
  stopTimeoutS?: number | undefined;
  /** `-u/--user USER[:GROUP]` as given (checked); resolved against the rootfs at each creation. */
  user?: string | undefined;
  /** `tsrun network connect`: more networks of a detached container, attached as eth1, eth2… in
   * this order each time it is created (restart); `run` itself never sets it. */
  connections?: NetworkConnection[] | undefined;
}

/** One `tsrun network connect` of a container (shim/connect-plan.ts). */
export interface NetworkConnection {
  network: string;
  ip?: string | undefined;
  ip6?: string | undefined;
  mac?: string | undefined;
  aliases?: string[] | undefined;
}

/** The namespace choice, and what the container's resolv.conf should say. `attach`: asked to
 * defer it (WireOptions.deferAttach), the wiring left to do once runc has started; it says what the
 * resolv.conf should say then (`dns` is what it says until then). `late`: asked the same, steps
 * runc does not need (the --net none owner's registration), for the caller to run right after
 * runc's spawn, before its setup ends (steps of its transaction: a failure rolls them back). */
export type WiredNetns = NetnsChoice & { dns?: DnsPlan | undefined; attach?: (() => Promise<DnsPlan>) | undefined; late?: (() => Promise<void>) | undefined };

export interface WireOptions {
  /** The caller starts runc before the end of its setup (PreparedContainer.finish): held at a gate
   * (shim/runc-gate.ts) while it attaches, and in any case while it runs `late`. */
  deferAttach?: boolean | undefined;
}

/** What the network part of `run` needs from the engine; set up inside the run's transaction. */
export interface NetworkWiring {
  wire(o: RunOptions, containerId: string, settings: Settings, tx: Transaction, log: Logger, opts?: WireOptions): Promise<WiredNetns>;
  /** Undo what wire() did for a container whose supervising process died (idempotent). */
  release(containerId: string, stale: ContainerRecord | undefined, settings: Settings, log: Logger): Promise<void>;
}

export { runcPaths };

/** A container whose state directory, network and runc spec are ready; `tx` undoes all of it. */
export interface PreparedContainer {
  id: string;
  /** tsrun's state directory for the container; the spec runc reads is in `<dir>/bundle`. */
  dir: string;
  bundleDir: string;
  /** The user's bundle, as given. */
  userBundle: string;
  runc: RuncPaths;
  tx: Transaction;
  log: Logger;
  /** With PrepareExtras.overlapRunc: the rest of the setup, run once right after runc was started
   * (the --net none owner's registration; where runc starts held at a gate, shim/runc-gate.ts, the
   * attach and the resolv.conf, the setup's last look for a signal, then the gate opened, which
   * lets runc go on). Throws as the setup would (the caller kills runc and rolls back). Resolves
   * with the signals that came since runc's spawn without aborting the setup (no gate): the
   * caller forwards them to the container once runc can take them. */
  finish?: (() => Promise<NodeJS.Signals[]>) | undefined;
}

export interface PrepareExtras {
  /** Extra fields for the container record (the detached front door records its monitor). */
  record?: Partial<Omit<ContainerRecord, 'id' | 'ownerPid' | 'bundle' | 'ownerStart' | 'created'>>;
  /** Overrides process.terminal in the spec (`-t`; a detached container without -t must have none). */
  terminal?: boolean | undefined;
  /** Runs once the id is claimed (its state directory exists), before the network and the spec:
   * the detached door starts conmon here, held on its start pipe, so that conmon's own start-up
   * runs beside the rest of the setup. */
  afterClaim?(id: string, tx: Transaction): void;
  /** The foreground run: runc starts before the setup's last look for a signal, and before the
   * network is attached, held at a gate until it is (PreparedContainer.finish). */
  overlapRunc?: boolean | undefined;
}

/**
 * Everything before runc, shared by foreground `run` and detached `run -d`/`create`: claim the id,
 * wire the network (same engine entry), rewrite the spec into the state directory. On failure it
 * has rolled back; on success the caller owns `tx` (rollback = teardown).
 */
export async function prepareContainer(o: RunOptions, settings: Settings, log: Logger, network: NetworkWiring, extras: PrepareExtras = {}): Promise<PreparedContainer> {
  // runc by its bare name when the exec's PATH search finds what tsrun's would (runcPathsForSpawn):
  // the run starts it only through such a search; a runc found nowhere is one line after the spawn.
  const runc = runcPathsForSpawn(settings);
  const bundle = loadBundle(o.bundle);
  if (o.cwd !== undefined && !o.cwd.startsWith('/')) throw new UserError(`invalid --cwd ${JSON.stringify(o.cwd)}: must be an absolute path`);
  // Before anything is made: a name the root filesystem does not have is one line, nothing left.
  const user = o.user === undefined ? undefined : resolveUser(bundle.rootfs, o.user);
  const id = o.name ?? generateContainerId();
  const clog = log.child({ containerId: id });

  // A signal during setup aborts it (and rolls back); once runc runs, signals go to the container.
  let interrupted: NodeJS.Signals | undefined;
  // Every one, in order: those that come once runc is on its way are forwarded (finish).
  const seen: NodeJS.Signals[] = [];
  const onSignal = (sig: NodeJS.Signals) => {
    interrupted = sig;
    seen.push(sig);
  };
  for (const sig of SETUP_INTERRUPTS) process.on(sig, onSignal);
  const checkInterrupted = () => {
    if (interrupted) throw new UserError(`interrupted by ${interrupted} during setup`);
  };

  const tx = new Transaction(clog);
  const dir = containerDir(settings.runDir, id);
  // What a foreground run leaves in its state directory, removed by name at teardown (no listing;
  // anything else there and the whole tree goes as before). A detached container's monitor adds its
  // own files: that directory is listed.
  const stateEntries: string[] | undefined = extras.afterClaim === undefined ? ['bundle/config.json', 'bundle/', 'runc.log', 'pid'] : undefined;
  try {
    await tx.step(
      'claim container id',
      () => claimContainer(settings.runDir, { ...extras.record, id, ownerPid: process.pid, bundle: bundle.dir }, (stale) => cleanupStale(stale, id, runc, network, settings, clog)),
      () => removeContainerDir(settings.runDir, id, stateEntries),
    );
    extras.afterClaim?.(id, tx);
    const cgroupsPath = cgroupsPathFor(id);
    // The container's own cgroup only: tsrun's parent stays, as a detached container's cleanup
    // leaves it (docs/detached.md) and docker keeps /docker. Removing an emptied v1 parent costs
    // every hierarchy an rmdir and the next runc a mkdir (~0.7 ms over 10 hierarchies), and an
    // rmdir between a concurrent runc's mkdir of the parent and of its container's directory fails
    // that runc. The test suite's global teardown removes an empty parent (test/harness/reap-pins.ts).
    tx.onRollback('remove cgroup', () => void removeCgroup(cgroupsPath, undefined, { keepParents: true }));
    tx.onRollback('remove runc state', () => removeRuncState(runc, id));

    const { dns: wiredDns, attach, late, ...netns } = await network.wire(o, id, settings, tx, clog, extras.overlapRunc === true ? { deferAttach: true } : undefined);
    let dns = wiredDns;
    // runc held at a gate while the attach runs (shim/runc-gate.ts); without one, attached now.
    const gate = attach !== undefined ? makeGate() : undefined;
    if (gate !== undefined) tx.onRollback('close the gate', () => gate.close());
    else if (attach !== undefined) dns = await attach();
    checkInterrupted();

    const resolvConf = resolvConfMount(settings, dir, bundle.rootfs, dns);
    if (resolvConf?.source === path.join(dir, RESOLV_CONF_NAME)) stateEntries?.unshift(RESOLV_CONF_NAME);
    const spec = rewriteSpec(bundle.spec, {
      rootfs: bundle.rootfs,
      args: o.args,
      env: o.env,
      hostname: o.hostname,
      cwd: o.cwd,
      netns,
      resources: o.resources,
      cgroupsPath,
      cgroupLayout: layoutOf(hostHierarchies()),
      terminal: extras.terminal,
      resolvConf,
      init: o.init ? findInit() : undefined,
      user,
    }, { inPlace: true }); // bundle.spec is this run's own, read just now, and used for nothing else
    if (gate !== undefined) spec.hooks = withGateHook<NonNullable<Spec['hooks']>[string][number]>(spec.hooks, { ...gate.hook });
    const runBundle = path.join(dir, 'bundle');
    // config.json carries the -e values: 0600 in a 0700 directory. Both are new in the state
    // directory this process claimed exclusively (nothing is there to replace, nobody else writes
    // there): made, not replaced, which spares a stat, a chmod, a /dev/urandom read for a temporary
    // name and a rename (writeFileExclusive). The state directory itself is 0700 as the claim made it.
    try {
      mkdirSync(runBundle, { mode: PRIVATE_DIR_MODE });
      writeFileExclusive(path.join(runBundle, 'config.json'), JSON.stringify(spec));
    } catch (err) {
      throw new SystemError(`write the container's spec into ${runBundle}`, err); // ENOSPC: say what, not "internal error"
    }
    mkdirPrivate(runc.root);
    await faultPause('set up'); // tests: a signal at the end of the setup
    // What a handler has seen already (a signal while the event loop ran: an await above, the
    // fault pause) aborts here, before runc exists: a look at a flag.
    checkInterrupted();
    if (extras.overlapRunc === true) {
      // The foreground run: what runc does not need comes right after runc's spawn, while runc
      // starts up, instead of before it (off the critical path of a cold process's main thread):
      // the --net none owner's registration (`late`, ~0.35 ms). A failure there aborts the setup as
      // one before the spawn did: the caller kills the runc it just started (its runc init, known
      // by identity) and rolls back; 125 and one line. (The record stays before the spawn: without
      // it a tsrun killed there would hold the id for 2 s, a claim in progress to everyone else.)
      // A signal from here on is the container's: runc is on its way to start it, and docker and
      // runc users expect a Ctrl-C then to reach it, not to undo the run. Those seen until the
      // supervision takes over are handed to it (held until runc can take them: runContainer), so
      // no poll of the event loop for them is needed here (~0.4 ms, the process's first
      // setImmediate). With a gate (a network to attach) runc cannot start the container before
      // the gate opens: a signal until then still aborts the run (125, nothing left), what the
      // attach's own failure does, at the setup's last look for a signal (pollSignals: a signal
      // that came during a synchronous stretch reaches its handler only at a poll of the loop).
      const finish = async (): Promise<NodeJS.Signals[]> => {
        try {
          await faultPause('spawned'); // tests: tsrun held (or stopped) right after runc's spawn
          await late?.();
          if (gate !== undefined && attach !== undefined) {
            const attached = await attach();
            // The resolv.conf runc has bind-mounted already, rewritten in place (same inode) when the
            // attach says otherwise (a resolver's addresses); the container has not started.
            if (resolvConf !== undefined && JSON.stringify(attached) !== JSON.stringify(dns)) resolvConfMount(settings, dir, bundle.rootfs, attached);
            await faultPause('gate'); // tests: tsrun held (or killed) while runc waits at the gate
            await pollSignals();
            checkInterrupted();
            gate.open();
          }
          return [...seen];
        } finally {
          for (const sig of SETUP_INTERRUPTS) process.off(sig, onSignal);
        }
      };
      return { id, dir, bundleDir: runBundle, userBundle: bundle.dir, runc, tx, log: clog, finish };
    }
    // run -d, create: their own steps follow; the look for a signal is here.
    await pollSignals();
    checkInterrupted();
  } catch (err) {
    for (const sig of SETUP_INTERRUPTS) process.off(sig, onSignal);
    await tx.rollback();
    throw err;
  }
  for (const sig of SETUP_INTERRUPTS) process.off(sig, onSignal);
  return { id, dir, bundleDir: path.join(dir, 'bundle'), userBundle: bundle.dir, runc, tx, log: clog };
}

/** runc's console (`-t` in the foreground, `tsrun exec -t`) is this process's controlling
 * terminal; without one runc fails only after the setup, with "open /dev/tty: no such device or
 * address". Checked first, with what to do instead, as docker does. */
export function requireTerminal(): void {
  try {
    closeSync(openSync('/dev/tty', 'r'));
  } catch {
    throw new UserError('the input device is not a TTY: drop -t (and keep -i to pass stdin), or run from a terminal');
  }
}

/** `spawn` starts runc (default: shim/spawn-inherit.ts); run.cjs's door passes one that uses
 * posix_spawn once koffi is loaded (shim/spawn-vfork.ts). */
export async function runContainer(o: RunOptions, settings: Settings, log: Logger, network: NetworkWiring, terminal?: boolean, spawn?: (file: string, args: readonly string[]) => InheritingChild): Promise<number> {
  if (terminal === true) requireTerminal();
  // No signal may end tsrun from here on: a second Ctrl-C would leave the network half removed.
  // During setup a signal also aborts it (prepareContainer's own handler); while the container runs,
  // signals are forwarded to it. They stay held until tsrun exits (just after teardown, or after
  // the setup's rollback), so the container's status is what tsrun exits with. Held from before
  // the setup, the process keeps one handler per signal throughout: the setup's handlers come and
  // go without the kernel's handlers being removed and installed again (7 signals, ~70 syscalls).
  const hold = holdSignals();
  const { id, dir, bundleDir, runc, tx, log: clog, finish } = await prepareContainer(o, settings, log, network, { terminal, overlapRunc: true });
  const pidFile = path.join(dir, 'pid');
  const runcLog = path.join(dir, 'runc.log');
  const started = performance.now();
  let status: number;
  try {
    const stopTimeoutS = o.stopTimeoutS ?? DEFAULT_STOP_TIMEOUT_S;
    // runc's cgroup wait (migration-warmup.ts), started or kept open: a move now, and one every few
    // ms until runc's own move is done (see the probes below), for at most 250 ms. The fast path stays open about one grace period
    // after the last move, and runc's move comes 7-40 ms after it starts (its own start-up, slower
    // on a loaded machine): after a single move right before the spawn, runc's first cgroup.procs
    // write waited a whole grace period (2-16 ms) in 7 of 15 runs, with these moves in none
    // (perf trace of runc's writes, load ~8).
    // The first move comes right after the spawn, not before it: runc's own move is milliseconds
    // away either way, and runc starts ~0.1-0.3 ms sooner (a move's main-thread time).
    const hierarchies = hostHierarchies();
    let stopWarm = (): void => undefined;
    let exit: ChildExit;
    try {
      const child = spawnRuncRun(runc, { id, bundle: bundleDir, pidFile, logFile: runcLog }, spawn);
      if (process.env.TSRUN_NO_CGROUP_WARMUP !== '1') {
        // Kept up until runc has moved its init into the container's cgroups, which it does before
        // anything else of the container's setup: one hierarchy after another, it makes the
        // container's directory and writes the pid into its cgroup.procs (ten here within ~0.3 ms
        // once the first write is through). The pid file, the sign used before, comes only after
        // the namespaces, the mounts and runc init's clones, and the moves meanwhile were for
        // nothing: each takes the kernel's global cgroup_threadgroup_rwsem for writing, which
        // runc's own forks and exits wait on. A hierarchy runc leaves out means the pid file again.
        const probes = cgroupProbes(hierarchies, cgroupsPathFor(id));
        stopWarm = keepWarmUntil(
          () => (probes.length > 0 && probes.every((d) => existsSync(d))) || existsSync(pidFile),
          () => keepCgroupMigrationWarm(hierarchies),
        );
      }
      // runc starts up (its cgroups, runc init, the mounts) while the setup ends (finish): the
      // --net none owner's registration, and with a network to wire the attach, runc held at its
      // first hook until finish() opens the gate (shim/runc-gate.ts).
      const held = rememberEnd(child);
      // Not started (its 'error' follows, heard by `held`): runc by its bare name found nowhere is
      // resolveBinary's one line, as before the claim; rolled back below.
      if (held.pid === undefined && runc.binary === settings.runc) runcNotFound(settings);
      // runc killed before it started the container: its `runc init`, left in the container's
      // cgroup, ends before the rollback's rmdir, known as runc's child before the kill, so that
      // nothing else is ever signalled.
      const killBeforeStart = async (): Promise<void> => {
        const ours = held.pid !== undefined ? descendantsOf(held.pid) : new Map<number, string>();
        held.kill('SIGKILL');
        await held.exited.catch(() => undefined);
        await emptyCgroup(cgroupsPathFor(id), hierarchies, undefined, ours);
      };
      let pending: NodeJS.Signals[] = [];
      if (finish !== undefined) {
        try {
          pending = await finish();
        } catch (err) {
          // Killed, not failed at the gate: a failed hook makes runc print a line of its own.
          await killBeforeStart();
          throw err;
        }
      }
      // Signals are the container's from here on (and those finish() saw since the spawn). runc
      // passes on what it receives once its own handlers are installed, which it does before it
      // starts runc init; until then (its Go runtime's first milliseconds) a SIGINT or SIGTERM would
      // end runc itself, the container half made. So they are held until runc's pid file exists
      // (written once the container's program has started, right before runc's loop that passes
      // signals on: whatever runc received since its handlers came is passed on then). A runc that
      // never gets there is killed at the stop timeout, with its runc init, as one killed at the
      // gate: 137 (128+SIGKILL), as any container killed at the timeout.
      const runcTakesSignals = () => existsSync(pidFile);
      let killedBeforeStart: Promise<void> | undefined;
      const supervised = superviseChild(
        held,
        {
          stopTimeoutMs: stopTimeoutS * 1000,
          kill: () => (runcTakesSignals() ? runcKill(runc, id, 'KILL') : (killedBeforeStart ??= killBeforeStart())),
          onKill: () => clog.warn({ stopTimeoutS }, 'the container did not stop in time: SIGKILL'),
        },
        { pending, ready: runcTakesSignals },
      );
      // The teardown's first calls compiled while runc runs (signals are forwarded from here on).
      warmRemoval(settings.runDir, id);
      exit = await supervised;
      await killedBeforeStart; // its runc init gone before the teardown's rmdir
    } finally {
      stopWarm();
    }
    status = exitStatusOf(exit);
    // runc's log says why only when runc failed (a container's own failure is its exit status too):
    // after a run that ended well there is nothing to read.
    const runcError = exit.code !== null && exit.code !== 0 ? lastRuncError(runcLog) : undefined;
    if (runcError !== undefined) {
      // runc itself failed (the container never ran, or its program could not be started).
      clog.error({ runcError, exit }, 'runc failed');
      throw new RuncFailure(`runc: ${runcError}`, runcFailureStatus(runcError, existsSync(pidFile)));
    }
    clog.info({ status, ms: +(performance.now() - started).toFixed(1) }, 'container exited');
  } finally {
    try {
      const failures = await tx.rollback();
      if (failures.length > 0) clog.warn({ failures: failures.map((f) => f.message) }, 'cleanup incomplete');
    } finally {
      if (hold.held.length > 0) clog.info({ signals: hold.held }, 'signals held until teardown finished');
    }
  }
  return status;
}


/**
 * runc could not start the container; the exit status follows docker: 125, 126 or 127. runc has
 * already printed its one line on the shared stderr (it cannot be told not to), so tsrun adds none.
 */
export class RuncFailure extends UserError {
  readonly alreadyReported = true;
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

/** A previous owner died without cleaning up: remove what it left so the id can be reused. */
export async function cleanupStale(stale: ContainerRecord | undefined, id: string, runc: RuncPaths, network: NetworkWiring, settings: Settings, log: Logger): Promise<void> {
  log.warn({ stale }, 'reclaiming the state of a container whose tsrun process is gone');
  // A run -d killed while runc create ran leaves its conmon monitoring the created container. It
  // goes first: once runc's delete ends the container it would write its exit file, into this id's
  // new state directory if that exists by then, and the new container would read as exited.
  killMonitor(pathsOf(settings.runDir, id).conmonPidFile);
  await removeRuncState(runc, id);
  await network.release(id, stale, settings, log);
  removeCgroup(cgroupsPathFor(id), undefined, { keepParents: true });
}
