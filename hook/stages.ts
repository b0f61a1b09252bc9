// The stage table: what each OCI hook stage means for tsrun.
//   createRuntime, prestart  wire the container's namespace (/proc/<pid>/ns/net) through the engine;
//                            runtimes differ in which they call and podman calls both, so the
//                            second call finds the endpoint record and does nothing (it reads
//                            the store and loads no engine)
//   poststop                 tear down from the persisted endpoint records (no pid, process gone)
//   createContainer, startContainer, poststart   accepted and logged
// Each stage imports only what it uses: a poststop for a container tsrun never wired reads the
// store and nothing else, and a host or none container loads no engine at all.
// Before wiring, the container's namespace is checked against the runtime's own (host
// networking: left alone) and against those of the processes that started the hook: a state
// naming a process there must never get the host's namespace wired.
import { readFileSync } from 'node:fs';
import { ConflictError, NotFoundError, UserError } from '../config/errors.js';
import type { State } from '../config/oci.js';
import type { Settings } from '../config/settings.js';
import type { Logger } from '../runtime/log.js';
import type { EndpointRecord } from '../runtime/records.js';
import { ANNOTATIONS, readBundleTsrun, selectAnnotations, wiringFromAnnotations } from './annotations.js';
import { dropImageAnnotations, IMAGE_NOT_FOUND } from './image-annotations.js';
import type { Stage } from './state.js';
import type { HookTiming } from './timing.js';

export type StageAction = 'setup' | 'teardown' | 'accept';

export const STAGE_ACTIONS: Record<Stage, StageAction> = {
  prestart: 'setup',
  createRuntime: 'setup',
  createContainer: 'accept',
  startContainer: 'accept',
  poststart: 'accept',
  poststop: 'teardown',
};

export interface StageContext {
  stage: Stage;
  state: State;
  settings: Settings;
  log: Logger;
  timing: HookTiming;
  /** Annotations of the bundle's config.json (injectable for tests). */
  readBundleAnnotations?: (bundle: string) => Record<string, string>;
  /** The annotations are already without the image's own (tsrun-runc dropped them before create). */
  imageChecked?: boolean | undefined;
}

/** What a stage did, for the log's last line and for tests. */
export interface StageOutcome {
  action: StageAction;
  result: 'attached' | 'already-attached' | 'left-alone' | 'detached' | 'nothing-to-do' | 'accepted';
  detail?: Record<string, unknown>;
}

export async function runStage(ctx: StageContext): Promise<StageOutcome> {
  switch (STAGE_ACTIONS[ctx.stage]) {
    case 'setup':
      return setup(ctx);
    case 'teardown':
      return teardown(ctx);
    case 'accept':
      ctx.log.info({ status: ctx.state.status, pid: ctx.state.pid }, 'stage accepted: nothing to do');
      return { action: 'accept', result: 'accepted' };
  }
}

async function setup(ctx: StageContext): Promise<StageOutcome> {
  const { state, log, timing } = ctx;
  const selected = selectAnnotations(state, ctx.readBundleAnnotations);
  const { source } = selected;
  let annotations = selected.annotations;
  if (source !== 'none' && !ctx.imageChecked) {
    // An image's own io.tsrun.* annotations (podman copies them) are not the user's request.
    const image = dropImageAnnotations(annotations, readBundleTsrun(state.bundle).rootPath, state.id);
    if (image.fromImage.length > 0) {
      log.warn({ fromImage: image.fromImage }, image.imageNotFound ? IMAGE_NOT_FOUND : 'annotations set by the container\'s image are not honoured');
      annotations = image.annotations;
      if (Object.keys(annotations).length === 0) {
        return { action: 'setup', result: 'left-alone', detail: { network: 'none', fromImage: image.fromImage } };
      }
    }
  }
  const wiring = wiringFromAnnotations(annotations);
  log.debug({ source, annotations }, 'annotations read');
  if (wiring.mode.kind === 'host' || wiring.mode.kind === 'none') {
    log.info({ network: wiring.mode.kind }, `${ANNOTATIONS.network}=${wiring.mode.kind}: leaving the network namespace alone`);
    return { action: 'setup', result: 'left-alone', detail: { network: wiring.mode.kind } };
  }
  if (state.pid === undefined) {
    throw new UserError(`the state has no pid: ${ctx.stage} needs the container's process to find its network namespace`);
  }

  const ns = await timing.load(() => import('../runtime/netns/netns.js'));
  const netnsPath = `/proc/${state.pid}/ns/net`;
  let containerNs: string;
  try {
    containerNs = ns.netnsId(netnsPath);
  } catch (err) {
    if (err instanceof NotFoundError) throw new UserError(`process ${state.pid} of container ${state.id} no longer exists`);
    const code = (err as { cause?: { code?: string } }).cause?.code;
    throw new UserError(`cannot open the network namespace of process ${state.pid} of container ${state.id}${code ? ` (${code})` : ''}`, { cause: err });
  }
  if (containerNs === ns.netnsId(ns.THREAD_NETNS)) {
    // The spec gives the container no network namespace of its own (host networking). Wiring
    // would put tsrun's interface into the runtime's, i.e. the host's, namespace.
    if (!wiring.explicit) {
      log.info('the container shares the runtime\'s network namespace (host networking): leaving it alone');
      return { action: 'setup', result: 'left-alone', detail: { network: 'host' } };
    }
    throw new UserError(`container ${state.id} has no network namespace of its own (it shares the runtime's), so ${ANNOTATIONS.network}=${annotations[ANNOTATIONS.network]} cannot be wired: give it one in config.json (linux.namespaces)`);
  }

  // Nor into the namespace of a process that started this hook (the runtime, what started it,
  // up to init): a container with a namespace of its own is never there, and a state naming
  // such a process (a createContainer state names pid 1) must not wire the host.
  const ancestor = ancestorIn(containerNs, ns.netnsId);
  if (ancestor) {
    throw new UserError(`process ${state.pid} of container ${state.id} is in the network namespace of process ${ancestor.pid} (${ancestor.comm}), which started this hook: refusing to wire it`);
  }

  if (wiring.mode.kind === 'container') return joinContainer(ctx, wiring.mode.containerId, containerNs);

  const network = wiring.mode.network;
  // The second call of a runtime that calls both prestart and createRuntime: the record says it
  // is done, and the engine (netlink, nft) need not even be loaded.
  const existing = await recordsOf(ctx, state.id);
  const { wiredFor } = await timing.load(() => import('../runtime/liveness.js'));
  const mine = (r: EndpointRecord) => r.containerNetns === containerNs && wiredFor(r, state.pid!);
  if (existing.length > 0 && existing.every(mine) && existing.some((r) => r.network === network)) {
    log.info({ network }, 'already attached: nothing to do');
    return { action: 'setup', result: 'already-attached', detail: { network } };
  }
  const { openEngine } = await timing.load(() => import('../runtime/context.js'));
  // Loaded with the engine: one attach in this process, nothing to join (see attachesAlone).
  (await import('../runtime/firewall/backend.js')).attachesAlone();
  const handle = await openEngine(ctx.settings, log);
  try {
    for (const rec of existing) {
      if (mine(rec)) continue;
      await clearStale(rec, handle.engine, log);
    }
    // The owner of a namespace others may join (container:<id>): its endpoint outlives it while
    // they live; the last one out tears it down (runtime/netns-users.ts). Its pid is the
    // container's own, so it counts as a user exactly as long as the container runs. Registered
    // before the attach, so a refusal leaves nothing wired, and withdrawn if the attach fails.
    const users = await timing.load(() => import('../runtime/netns-users.js'));
    const { reclaimed } = await users.registerOwner(ctx.settings.runDir, state.id, state.pid!, { wired: true });
    // An earlier container of this id whose wiring was killed before its record, and never
    // deleted: what it held would fail this attach (its firewall elements) or leak (its lease).
    if (reclaimed) await handle.engine.detach(state.id, { unrecorded: true });
    let rec: EndpointRecord;
    try {
      rec = await handle.engine.attach({
        containerId: state.id,
        netnsPath,
        network,
        ip: wiring.ip,
        ip6: wiring.ip6,
        mac: wiring.mac,
        ports: wiring.ports,
      });
    } catch (err) {
      users.finishTeardown(ctx.settings.runDir, state.id);
      throw err;
    }
    const detail = { network: rec.network, ipv4: rec.ipv4?.address, ipv6: rec.ipv6?.address, hostIfname: rec.hostIfname, ports: rec.ports.length };
    return { action: 'setup', result: 'attached', detail };
  } finally {
    await handle.close();
  }
}

/** The container's endpoint records, read from the store alone (no engine). */
async function recordsOf(ctx: StageContext, containerId: string): Promise<EndpointRecord[]> {
  const { openStore } = await ctx.timing.load(() => import('../runtime/store/open.js'));
  const { endpointsOf } = await ctx.timing.load(() => import('../runtime/records.js'));
  const store = await openStore({ url: ctx.settings.store, libDir: ctx.settings.libDir, log: ctx.log });
  try {
    return await endpointsOf(store, containerId);
  } finally {
    await store.close?.();
  }
}

/**
 * A record for this id whose namespace is not the container's: left by an earlier container of
 * the same id whose poststop never ran. Its namespace still alive means another live container
 * holds the id (refused); otherwise it is removed before wiring the new one.
 */
async function clearStale(rec: EndpointRecord, engine: import('../runtime/engine.js').Engine, log: Logger): Promise<void> {
  const { endpointAlive } = await import('../runtime/liveness.js');
  if (endpointAlive(rec)) {
    throw new ConflictError(`container id ${rec.containerId} is already wired into network ${rec.network} for another live container`);
  }
  log.warn({ stale: rec }, 'removing the endpoint of an earlier container with this id (its poststop never ran)');
  await engine.detachEndpoint(rec, log);
}

/** container:<id>: the runtime must have put the container into that container's namespace;
 * the hook only checks it (a hook cannot move a process into another namespace). */
async function joinContainer(ctx: StageContext, target: string, containerNs: string): Promise<StageOutcome> {
  const recs = await recordsOf(ctx, target);
  if (recs.some((r) => r.containerNetns === containerNs)) {
    const users = await ctx.timing.load(() => import('../runtime/netns-users.js'));
    users.registerJoiner(ctx.settings.runDir, users.rootOf(ctx.settings.runDir, target) ?? target, ctx.state.id, ctx.state.pid!);
    ctx.log.info({ sharesWith: target }, 'the container shares the network namespace of another wired container');
    return { action: 'setup', result: 'left-alone', detail: { network: `container:${target}` } };
  }
  const why = recs.length === 0 ? `tsrun has not wired a container ${target}` : `the container is not in ${target}'s network namespace`;
  throw new UserError(`${ANNOTATIONS.network}=container:${target}: ${why}; the runtime must join that namespace (podman run --network container:${target})`);
}

/** poststop exits right after its detach, and the container's namespace may outlive it (a
 * runtime that pins it): the veth's delete is left to a detached process (dismissVeth). */
const POSTSTOP_DETACH = { deferLinkDelete: true } as const;

async function teardown(ctx: StageContext): Promise<StageOutcome> {
  const { state, log, timing } = ctx;
  // A shared namespace (container:<id>): whoever leaves last tears the owner's endpoint down.
  const users = await timing.load(() => import('../runtime/netns-users.js'));
  const root = users.rootOf(ctx.settings.runDir, state.id);
  // poststop comes once the container is gone: an entry for this id whose process still runs is
  // another engine's container with the same id (another runc --root; podman and CRI-O sharing
  // one hooks.d), which must keep its entry and its network. Entries and records are keyed by id.
  if (root !== undefined && users.isLiveUser(ctx.settings.runDir, root, state.id)) {
    log.warn({ root }, 'this id belongs to a container that still runs (another with the same id): its network is left alone');
    return { action: 'teardown', result: 'nothing-to-do', detail: { liveElsewhere: root } };
  }
  if (root !== undefined) {
    const leaving = users.leave(ctx.settings.runDir, root, state.id);
    if (!leaving.teardown) {
      log.info({ root }, 'other containers still use this network namespace: its endpoint stays');
      return { action: 'teardown', result: 'nothing-to-do', detail: { sharedWith: root } };
    }
    if (leaving.wired) {
      const { openEngine } = await timing.load(() => import('../runtime/context.js'));
      const handle = await openEngine(ctx.settings, log);
      try {
        // No record: its createRuntime may have been killed after its lease and before its
        // record (tsrun-runc create killed, then the engine's delete): release what that held.
        const n = await handle.engine.detach(root, { ...POSTSTOP_DETACH, unrecorded: 'if-none' });
        users.finishTeardown(ctx.settings.runDir, root);
        return { action: 'teardown', result: 'detached', detail: { endpoints: n, lastUserOf: root } };
      } finally {
        await handle.close();
      }
    }
    users.finishTeardown(ctx.settings.runDir, root);
  }
  const all = await recordsOf(ctx, state.id);
  // Likewise a record whose namespace is still held (its holder process runs, its pin or mount
  // still names it): another engine's container with this id (a CNI or `tsrun run` one too).
  const { endpointAlive } = await timing.load(() => import('../runtime/liveness.js'));
  const live = all.filter((r) => endpointAlive(r));
  const records = all.filter((r) => !live.includes(r));
  if (live.length > 0) {
    log.warn({ live: live.map((r) => ({ network: r.network, holder: r.netnsHolder })) }, 'an endpoint recorded for this id belongs to a container that still runs (another with the same id): left alone');
  }
  if (records.length === 0) {
    if (live.length === 0) log.info('no endpoint recorded for this container: nothing to tear down');
    return { action: 'teardown', result: 'nothing-to-do', ...(live.length > 0 ? { detail: { liveElsewhere: live.map((r) => r.network) } } : {}) };
  }
  const { openEngine } = await timing.load(() => import('../runtime/context.js'));
  const handle = await openEngine(ctx.settings, log);
  try {
    let n: number;
    if (live.length === 0) {
      n = await handle.engine.detach(state.id, POSTSTOP_DETACH);
    } else {
      for (const rec of records) await handle.engine.detachEndpoint(rec, log, POSTSTOP_DETACH);
      n = records.length;
    }
    return { action: 'teardown', result: 'detached', detail: { endpoints: n, networks: records.map((r) => r.network) } };
  } finally {
    await handle.close();
  }
}

/** The first process up the parent chain (from our parent to init) whose network namespace is
 * `nsId`. Processes that cannot be inspected are passed over. */
function ancestorIn(nsId: string, netnsId: (p: string) => string): { pid: number; comm: string } | undefined {
  let pid = process.ppid;
  for (let depth = 0; pid > 0 && depth < 64; depth++) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return undefined;
    }
    try {
      if (netnsId(`/proc/${pid}/ns/net`) === nsId) return { pid, comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) };
    } catch {
      // not inspectable (an init that forbids it): look further up
    }
    if (pid === 1) return undefined;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so parse after the last ')'.
    pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  }
  return undefined;
}
