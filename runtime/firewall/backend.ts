// The firewall seam: the engine talks to a FirewallBackend and never to nft. Two backends: nft
// (table inet tsrun, see nft-rules.ts) and none. Adding one (firewalld, say) touches no driver.
//
// Every add is one atomic nft batch of elements; every remove is idempotent, so detach
// can be repeated from a persisted record after a crash, and is safe when the elements are
// already gone, when the table is gone, or when another container has taken the port since.
import { ConflictError } from '../../config/errors.js';
import { faultPause } from '../tx.js';
import {
  schemaId,
  schemaMarkBatch,
  addEndpointBatch,
  addNetworkBatch,
  networkBatchOf,
  baseMatches,
  baseTable,
  conflictingElements,
  elementsExcept,
  deleteElements,
  endpointElements,
  listElements,
  networkElements,
  ownerComment,
  ownedElements,
  replaceBaseBatch,
  restoreBatch,
  underlayBatch,
  guardMatches,
  GUARD_FAMILY,
  ND_TABLE,
  ndElementsOf,
  ndMatches,
  ndTableText,
  addElements,
  guardElements,
  removeGuardBatch,
  type FirewallState,
  type NftBatch,
  type NftJson,
  type SetElement,
} from './nft-rules.js';
import { applyBatch, applyText, chooseBackend, isNftError, listTsrunTable, type NftOptions } from './nft.js';
import { baseListing } from './base-listing.js';
import { dumpSync, nfnlAvailable, ownGenerationSync } from './nfnl.js';
import { intactRecordAt, nextGeneration, previousGeneration, type IntactRecord } from './intact-record.js';
import { THREAD_NETNS, netnsId } from '../netns/netns.js';
import { NFT_MSG_GETCHAIN, NFT_MSG_GETRULE, NFT_MSG_GETSET, kernelTablesMismatch } from './kernel-inventory.js';
import { NoneFirewall } from './none.js';
import { silentLogger } from '../step-log.js';
import type { FirewallEndpoint, FirewallNetwork } from './types.js';

export { NoneFirewall } from './none.js';
export type { FirewallEndpoint, FirewallNetwork, PortMapping } from './types.js';
export type { FirewallState } from './nft-rules.js';

/** Where a firewall finds everything it should hold when it has to rebuild its table. */
export type FirewallStateSource = () => Promise<FirewallState>;

/** Owners found in element comments: what gc compares with its records. */
export interface FirewallOwners {
  /** Container ids (ids longer than fit in a comment appear shortened, see ownerComment). */
  containers: string[];
  networks: string[];
}

export interface FirewallBackend {
  readonly kind: 'nft' | 'none';
  /** The table exists and its base (sets, chains, rules) matches this version's fingerprint. */
  intact(): Promise<boolean>;
  /** Rebuilds the whole table (base and every element) from `state` in one atomic batch. */
  restore(state: FirewallState): Promise<void>;
  /** The overlay agent: VXLAN is accepted on `local` only from `peers` (one atomic batch). */
  setUnderlay(local: string[], peers: string[]): Promise<void>;
  /** Creates the table, chains, sets and rules once; repairs or upgrades them, keeping elements. */
  ensureBase(): Promise<void>;
  /** Bridge and subnets: masquerade, isolation, internal. One batch. */
  addNetwork(net: FirewallNetwork): Promise<void>;
  /** Idempotent. */
  removeNetwork(net: FirewallNetwork): Promise<void>;
  /**
   * The attach path: the network's elements (idempotent to re-add) and the endpoint's published
   * ports in ONE batch, without listing the table first. A missing or outdated table shows up as
   * a failed batch and is repaired (ensureBase) before one retry. ConflictError when another
   * container holds a host port.
   */
  attach(net: FirewallNetwork, ep: FirewallEndpoint): Promise<void>;
  /** Idempotent; never removes a port another container holds now. `exclusive`: the caller
   * knows no other container can hold these ports now (it still holds their reservations),
   * which allows a plain delete without listing the table first. */
  removeEndpoint(ep: FirewallEndpoint, opts?: { exclusive?: boolean }): Promise<void>;
  /** Who owns elements now (gc). */
  listOwners(): Promise<FirewallOwners>;
  /** Removes every element tagged with this container or network (gc without a record); a
   * container's except those of `keep` (the endpoints it still has on other networks). */
  purge(owner: PurgeOwner): Promise<number>;
}

export type PurgeOwner = { container: string; keep?: readonly FirewallEndpoint[] | undefined } | { network: string };

export type FirewallKind = 'nft' | 'none';

/** `state`: when given, a table found missing is rebuilt with every element from it, not
 * just its empty base (a flush must not silently drop other networks' isolation and ports). */
export function createFirewall(kind: FirewallKind, opts: NftOptions = {}, state?: FirewallStateSource): FirewallBackend {
  return kind === 'nft' ? new NftFirewall(opts, state) : new NoneFirewall();
}

let bursts = true;

/**
 * This process makes one attach and exits (the hook's setup stage): no other attach can join its
 * batch, so it need not wait a turn of the event loop for one (joinBurst; ~0.6 ms of a cold
 * createRuntime, measured on the loaded machine).
 */
export function attachesAlone(): void {
  bursts = false;
}

/** Attaches of this process between their start and their end (attachInFlight). */
let inFlight = 0;

/**
 * Counts an attach of this process from its start until the returned function is called. A batch
 * waits a turn of the event loop for others to join it (joinBurst) only while another attach is
 * in flight: alone, none can join, and the turn cost every single attach (a `tsrun run -p`, the
 * bench's sequential attaches) ~0.05-0.1 ms of its wiring for nothing.
 */
export function attachInFlight(): () => void {
  inFlight++;
  let done = false;
  return () => {
    if (!done) inFlight--;
    done = true;
  };
}

/** The ruleset generation (ownGenerationSync) at which this process last found the tables of its
 * own namespace intact, read before that check's dumps. */
let intactAtGeneration: string | undefined;

/** The generation's id (ownGenerationSync's "id:pid": the pid is the asking process's). */
function generationId(gen: string): number {
  return Number(gen.slice(0, gen.indexOf(':')));
}

export class NftFirewall implements FirewallBackend {
  readonly kind = 'nft' as const;
  /** ensureBase succeeded in this process: later calls skip the listing. */
  private baseOk = false;
  /** NftOptions.intactRecord opened, for this namespace (its own only). */
  private readonly record: IntactRecord | undefined;
  constructor(
    private readonly opts: NftOptions = {},
    private readonly state?: FirewallStateSource,
  ) {
    this.record = opts.intactRecord !== undefined && opts.netns === undefined ? intactRecordAt(opts.intactRecord) : undefined;
  }

  /** What a record of this namespace's intact generation is valid for: this version's schema, in
   * this namespace (intact-record.ts). */
  private recordScope(): string {
    return `${schemaId()} ${netnsId(THREAD_NETNS)}`;
  }

  /** `gen` is a generation at which this namespace's tables are known intact: found so by this
   * process, or recorded by another (intact-record.ts). */
  private knownIntact(gen: string): boolean {
    return gen === intactAtGeneration || this.knownIntactId(generationId(gen));
  }

  /** knownIntact by the generation's id alone (the kernel's id names one commit of the namespace). */
  private knownIntactId(id: number): boolean {
    return (intactAtGeneration !== undefined && generationId(intactAtGeneration) === id) || (this.record !== undefined && this.record.read(this.recordScope()) === id);
  }

  private markIntact(gen: string): void {
    intactAtGeneration = gen;
    this.record?.write(this.recordScope(), generationId(gen));
  }

  async intact(): Promise<boolean> {
    const viaNetlink = this.intactOverNetlink();
    if (viaNetlink !== undefined) return viaNetlink;
    // libnftables: the declarations and rules alone, in constant time (base-listing.ts); a table
    // listing fetches every set element first, and grew with the containers on the host.
    const base = chooseBackend(this.opts) === 'lib' ? baseListing({ netns: this.opts.netns }) : undefined;
    if (base) return baseMatches(base) && guardMatches(base) && ndMatches(base);
    const current = await listTsrunTable({ ...this.opts, terse: true });
    if (current === undefined || !baseMatches(current)) return false;
    const guard = await listTsrunTable({ ...this.opts, terse: true, family: GUARD_FAMILY });
    return guard !== undefined && guardMatches(guard) && (await this.ndIntact());
  }

  /** table bridge tsrun_nd is there with this version's sets and rules. */
  private async ndIntact(): Promise<boolean> {
    const nd = await listTsrunTable({ ...this.opts, terse: true, family: GUARD_FAMILY, table: ND_TABLE });
    return nd !== undefined && ndMatches(nd);
  }

  /**
   * table bridge tsrun_nd (neighbour discovery, nft-rules.ts) as this version defines it: when it
   * is missing or differs, replaced in one transaction with the elements of every endpoint of
   * `state` (or of the Store), else with the elements the old table had. After the other two
   * tables: a missing nd table fails every attach batch (not-found) until this ran.
   */
  private async ensureNd(state?: FirewallState): Promise<void> {
    const nd = { ...this.opts, family: GUARD_FAMILY, table: ND_TABLE };
    const old = await listTsrunTable({ ...nd, terse: true });
    if (old && ndMatches(old)) return;
    let els: SetElement[];
    if (state || this.state) els = ndElementsOf((state ?? (await this.state!())).endpoints);
    else {
      const full = old && (await listTsrunTable(nd));
      els = full ? listElements(full, GUARD_FAMILY, ND_TABLE) : [];
    }
    if (!old) {
      // Missing: created only if no other process created it meanwhile (with elements its
      // attaches added since: a replace from this older state would drop them).
      try {
        await this.replaceNd(els, 'create');
        return;
      } catch (err) {
        if (!isNftError(err, 'exists')) throw err;
      }
      if (await this.ndIntact()) return;
    }
    await this.replaceNd(els);
  }

  private async replaceNd(els: SetElement[], mode: 'create' | 'replace' = 'replace'): Promise<void> {
    this.log.warn({ schema: schemaId() }, `table bridge ${ND_TABLE} is missing or from another tsrun version: rebuilding it`);
    await applyText(ndTableText(els, mode), { ...this.opts, step: `rebuild nftables table bridge ${ND_TABLE}` });
  }

  /**
   * Both tables checked with three netlink dumps (kernel-inventory.ts): no libnftables, no set
   * element read. Undefined when this way is not taken (another backend asked for) or failed.
   */
  private intactOverNetlink(): boolean | undefined {
    if ((this.opts.backend ?? 'auto') !== 'auto' || !nfnlAvailable()) return undefined;
    try {
      // In this process's own namespace, the ruleset's generation is read before the dumps: when
      // it has not moved since a check that found the tables intact, nothing was committed since,
      // and they still are (a run checks while its container runs, and its detach then asks only
      // this; see ownGenerationSync). Any commit in between, by anyone, means the full check.
      // Another process's word for it, too: the record of the generation at which they were last
      // known intact (intact-record.ts).
      const gen = this.opts.netns === undefined ? ownGenerationSync() : undefined;
      if (gen !== undefined && this.knownIntact(gen)) {
        this.log.debug({ generation: generationId(gen) }, 'firewall self-check: nothing committed since the tables were last known intact');
        return true;
      }
      const [sets, chains, rules] = dumpSync([NFT_MSG_GETSET, NFT_MSG_GETCHAIN, NFT_MSG_GETRULE], { netns: this.opts.netns });
      const mismatch = kernelTablesMismatch({ sets: sets!, chains: chains!, rules: rules! });
      if (mismatch) this.log.debug({ mismatch }, 'firewall self-check: tables differ from this version');
      if (this.opts.netns === undefined) {
        if (mismatch === undefined && gen !== undefined) this.markIntact(gen);
        else intactAtGeneration = undefined;
      }
      return mismatch === undefined;
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'firewall self-check over netlink failed: asking libnftables instead');
      return undefined;
    }
  }

  async setUnderlay(local: string[], peers: string[]): Promise<void> {
    await this.addWithBase(underlayBatch(local, peers), 'set the overlay underlay addresses');
  }

  async restore(state: FirewallState): Promise<void> {
    this.baseOk = false;
    await this.apply(restoreBatch(state), 'rebuild nftables table inet tsrun');
    await this.replaceNd(ndElementsOf(state.endpoints));
    this.baseOk = true;
  }

  private get log() {
    return this.opts.log ?? silentLogger;
  }

  async ensureBase(): Promise<void> {
    if (this.baseOk) return;
    await this.checkOrCreateBase();
    this.baseOk = true;
  }

  /**
   * With a state source, a missing table is rebuilt with everything the Store knows, and a
   * different one (another version, a rule deleted by hand) is replaced the same way: a flush
   * must not leave other networks without isolation or ports. Without one (tests, tools), only
   * the base is created or replaced, keeping whatever elements are there.
   */
  private async checkOrCreateBase(): Promise<void> {
    // The self-check over netlink covers all three tables; otherwise the nd table is checked here.
    if (this.intactOverNetlink() === true) return;
    const state = await this.serializedRebuild(() => this.checkOrCreateMainTables());
    await this.ensureNd(state);
  }

  /**
   * One look-and-rebuild at a time, in this process (attaches side by side) and across processes
   * (NftOptions.rebuildLock): the second looks only once the first has rebuilt, and finds the
   * table current. Before, two first attaches against an old table both rebuilt it, and the later
   * restore dropped the elements the earlier attach had added meanwhile.
   */
  private async serializedRebuild<T>(fn: () => Promise<T>): Promise<T> {
    if (this.opts.rebuildLock === undefined) return fn();
    const previous = NftFirewall.rebuilding;
    let done!: () => void;
    NftFirewall.rebuilding = new Promise<void>((r) => (done = r));
    try {
      await previous;
      const release = await this.opts.rebuildLock();
      try {
        return await fn();
      } finally {
        await release();
      }
    } finally {
      done();
    }
  }

  private static rebuilding: Promise<void> = Promise.resolve();

  /** Tables inet tsrun and bridge tsrun; the state it read from the Store, if it did. */
  private async checkOrCreateMainTables(): Promise<FirewallState | undefined> {
    const current = await listTsrunTable({ ...this.opts, terse: true });
    if (current && baseMatches(current)) return;
    if (!current) {
      const state = this.state ? await this.state() : undefined;
      try {
        // Starts with `create table`: if another process created (or rebuilt) it meanwhile,
        // this fails whole (EEXIST), nothing is duplicated, and what that process built stays.
        if (state) this.log.warn({ schema: schemaId() }, 'table inet tsrun is missing: rebuilding it from the store');
        await this.apply(state ? restoreBatch(state, 'create') : baseTable(), 'create nftables table inet tsrun');
        return state;
      } catch (err) {
        if (!isNftError(err, 'exists')) throw err;
      }
      const raced = await listTsrunTable({ ...this.opts, terse: true });
      if (raced && baseMatches(raced)) return;
    }
    await faultPause('firewall rebuild'); // tests: two attaches rebuilding an old table
    if (this.state) {
      this.log.warn({ schema: schemaId() }, 'table inet tsrun is from another tsrun version or was modified: rebuilding it from the store');
      const state = await this.state();
      await this.restore(state);
      return state;
    }
    const old = await listTsrunTable(this.opts);
    this.log.warn({ schema: schemaId() }, 'table inet tsrun is from another tsrun version or was modified: replacing it, keeping its elements');
    await this.apply(replaceBaseBatch(old), 'replace nftables table inet tsrun');
  }

  async addNetwork(net: FirewallNetwork): Promise<void> {
    await this.addWithBase(addNetworkBatch(net), `add firewall elements of network ${net.name}`);
  }

  async removeNetwork(net: FirewallNetwork): Promise<void> {
    await this.removeElements(networkElements(net), `remove firewall elements of network ${net.name}`);
  }

  async attach(net: FirewallNetwork, ep: FirewallEndpoint): Promise<void> {
    // The schema mark first: on a table of another schema (an in-place upgrade) the batch fails
    // whole, before any of this container's elements, and addWithBase rebuilds it (nft-rules.ts).
    const batch = { nftables: [...schemaMarkBatch(), ...networkBatchOf(net).nftables, ...addEndpointBatch(ep).nftables, ...addElements(guardElements(ep))] };
    if (bursts && inFlight > 1 && (await this.joinBurst(batch))) return;
    const step = `publish ports of container ${ep.containerId}`;
    for (let attempt = 1; ; attempt++) {
      try {
        // A new endpoint's elements (its bridge port's guard: a new link): a commit of its own.
        await this.addWithBase(batch, step, true);
        return;
      } catch (err) {
        if (!isNftError(err, 'exists')) throw err;
        // A map key is held with other data: some container already publishes that port.
        const listing = await listTsrunTable(this.opts);
        const clash = listing ? conflictingElements(listing, endpointElements(ep))[0] : undefined;
        if (clash) throw new ConflictError(`${step}: host port ${describePort(clash.wanted)} is already published by ${describeOwner(clash.held.comment)}`);
        if (attempt >= 2) throw err; // the holder has left meanwhile: try once more
      }
    }
  }

  /**
   * Attaches running at once in this process (50 containers started together) share one batch:
   * one nf_tables transaction for the burst instead of one per container (and, through
   * libnftables, one cache fill from the kernel instead of one per container). The
   * batches that reach this point in the same turn of the event loop are joined (identical
   * commands once: each carries its network's elements) and applied together; a batch is all or
   * nothing, so when the joined one fails, each attach goes on alone with its own conflict
   * handling. Resolves true when this batch was applied as part of a burst.
   */
  private joinBurst(batch: NftBatch): Promise<boolean> {
    const key = this.opts.netns ?? '';
    return new Promise((done) => {
      let queue = NftFirewall.bursts.get(key);
      if (!queue) {
        queue = [];
        NftFirewall.bursts.set(key, queue);
        setImmediate(() => void NftFirewall.flushBurst(key));
      }
      queue.push({ fw: this, batch, done });
    });
  }

  private static readonly bursts = new Map<string, { fw: NftFirewall; batch: NftBatch; done: (joined: boolean) => void }[]>();

  private static async flushBurst(key: string): Promise<void> {
    const queue = NftFirewall.bursts.get(key) ?? [];
    NftFirewall.bursts.delete(key);
    if (queue.length < 2) {
      for (const q of queue) q.done(false); // alone: its own path, as before
      return;
    }
    const seen = new Set<string>();
    const nftables = queue.flatMap((q) => q.batch.nftables).filter((cmd) => {
      const k = JSON.stringify(cmd);
      return seen.has(k) ? false : (seen.add(k), true);
    });
    try {
      await queue[0]!.fw.addWithBase({ nftables }, `publish ports of ${queue.length} containers at once`);
      for (const q of queue) q.done(true);
    } catch {
      for (const q of queue) q.done(false);
    }
  }

  /**
   * With `exclusive`, one plain delete batch of exactly this endpoint's elements (no listing);
   * only when that fails because something is already gone (a repeated detach, a flushed table)
   * does it fall back to the owner-aware listing path below, which is always used otherwise.
   */
  async removeEndpoint(ep: FirewallEndpoint, opts: { exclusive?: boolean } = {}): Promise<void> {
    const els = endpointElements(ep);
    const step = `unpublish ports of container ${ep.containerId}`;
    if (opts.exclusive && els.length > 0) {
      // The usual detach: the port guard and the published ports in one batch, one libnftables
      // run. A batch is all or nothing, so when something is already gone the steps below redo it.
      try {
        await this.apply({ nftables: [...removeGuardBatch(ep).nftables, ...deleteElements(els)] }, step);
        return;
      } catch (err) {
        if (!isNftError(err, 'not-found')) throw err;
      }
    }
    await this.removeGuard(ep);
    if (els.length === 0) return;
    await this.removeElements(els, step);
  }

  /** The port guard's elements: idempotent, and no error when the table is gone. */
  private async removeGuard(ep: FirewallEndpoint): Promise<void> {
    try {
      await this.apply(removeGuardBatch(ep), `remove port guard of container ${ep.containerId}`);
    } catch (err) {
      if (!isNftError(err, 'not-found')) throw err;
    }
  }

  async listOwners(): Promise<FirewallOwners> {
    const listing = await listTsrunTable(this.opts);
    const guard = await listTsrunTable({ ...this.opts, family: GUARD_FAMILY });
    const nd = await listTsrunTable({ ...this.opts, family: GUARD_FAMILY, table: ND_TABLE });
    const containers = new Set<string>();
    const networks = new Set<string>();
    for (const e of [...(listing ? listElements(listing) : []), ...(guard ? listElements(guard, GUARD_FAMILY) : []), ...(nd ? listElements(nd, GUARD_FAMILY, ND_TABLE) : [])]) {
      if (e.comment?.startsWith('ctr:')) containers.add(e.comment.slice(4));
      else if (e.comment?.startsWith('net:')) networks.add(e.comment.slice(4));
    }
    return { containers: [...containers].sort(), networks: [...networks].sort() };
  }

  async purge(owner: PurgeOwner): Promise<number> {
    const comment = 'container' in owner ? ownerComment('ctr', owner.container) : ownerComment('net', owner.network);
    const listing = await listTsrunTable(this.opts);
    const guard = 'container' in owner ? await listTsrunTable({ ...this.opts, family: GUARD_FAMILY }) : undefined;
    const nd = 'container' in owner ? await listTsrunTable({ ...this.opts, family: GUARD_FAMILY, table: ND_TABLE }) : undefined;
    const keep = 'container' in owner ? (owner.keep ?? []).flatMap((ep) => [...endpointElements(ep), ...guardElements(ep)]) : [];
    const mine = elementsExcept(
      [...(listing ? listElements(listing) : []), ...(guard ? listElements(guard, GUARD_FAMILY) : []), ...(nd ? listElements(nd, GUARD_FAMILY, ND_TABLE) : [])].filter((e) => e.comment === comment),
      keep,
    );
    if (mine.length > 0) await this.apply({ nftables: deleteElements(mine) }, `purge firewall elements of ${comment}`);
    return mine.length;
  }

  /** Adds elements; if the table (or a set) is missing, creates or repairs it and tries again. */
  private async addWithBase(batch: NftBatch, step: string, commits = false): Promise<void> {
    try {
      await this.apply(batch, step, commits);
    } catch (err) {
      if (!isNftError(err, 'not-found')) throw err;
      this.baseOk = false;
      await this.ensureBase();
      await this.apply(batch, step, commits);
    }
  }

  /**
   * Idempotent, owner-aware delete: list the table, delete exactly the elements still there with
   * our key, data and owner tag. Not nft's add-then-delete trick (which does make a delete
   * idempotent on 1.0.6): that would also delete an identical element another container created
   * since, e.g. the same port on the address IPAM handed on, when a detach is repeated late.
   */
  private async removeElements(els: SetElement[], step: string): Promise<void> {
    if (els.length === 0) return;
    for (let attempt = 1; ; attempt++) {
      const listing = await listTsrunTable(this.opts);
      const mine = listing ? ownedElements(listing, els) : [];
      if (mine.length === 0) return;
      try {
        await this.apply({ nftables: deleteElements(mine) }, step);
        return;
      } catch (err) {
        // Another detach removed some of them between our listing and our delete: look again.
        if (!isNftError(err, 'not-found') || attempt >= 3) throw err;
      }
    }
  }

  /**
   * `commits`: the batch certainly changes something when it succeeds (new elements). The kernel
   * moves the generation only for a commit that changes something: a batch that turned out to
   * change nothing beside another process's commit would look like the one step of its own.
   */
  private async apply(batch: NftBatch, step: string, commits = false): Promise<void> {
    // A batch of this process that adds or deletes elements (what the self-check does not read)
    // on tables known intact, and no other commit beside it (the generation one step on): still
    // intact, at the new generation (intact-record.ts). Only with a record to keep, in this
    // process's own namespace, and for a batch that is a commit of its own: one that deletes an
    // element (a delete of one not there fails the batch) or that adds new ones.
    const tracked = this.record !== undefined && elementsOnly(batch) && (commits || batch.nftables.some((c) => 'delete' in c));
    // An add-only batch is not certainly a commit: elements that are there already make it change
    // nothing (a repair re-adding every endpoint of its Store, an attach whose elements a killed
    // one left), and the generation does not move. Read after it alone, a foreign commit since the
    // last known-intact generation (a guard rule deleted by hand) then looked like this batch's
    // one step, was recorded intact, and no later check dumped the tables: the rule stayed deleted.
    // So its generation is read before too, and it must be known intact and one step back.
    const deletes = batch.nftables.some((c) => 'delete' in c);
    const before = tracked && !deletes ? generationIfAny() : undefined;
    await applyBatch(batch, { ...this.opts, step });
    if (!tracked) return;
    // A batch that deletes did commit (it moved the generation at least one step): the generation
    // just before the new one known intact means it was the only commit since then.
    const after = generationIfAny();
    if (after === undefined) return;
    const id = generationId(after);
    const own = deletes ? this.knownIntactId(previousGeneration(id)) : before !== undefined && this.knownIntact(before) && id === nextGeneration(generationId(before));
    if (own) this.markIntact(after);
  }
}

/** This namespace's ruleset generation, or undefined when it cannot be read (no netlink way). */
function generationIfAny(): string | undefined {
  try {
    return nfnlAvailable() ? ownGenerationSync() : undefined;
  } catch {
    return undefined;
  }
}

/** Every command of the batch adds or deletes set elements: no table, set, chain or rule. */
function elementsOnly(batch: NftBatch): boolean {
  return batch.nftables.length > 0 && batch.nftables.every((c) => {
    const keys = Object.keys(c);
    if (keys.length !== 1 || (keys[0] !== 'add' && keys[0] !== 'delete')) return false;
    const what = (c as Record<string, unknown>)[keys[0]] as Record<string, unknown> | null;
    return typeof what === 'object' && what !== null && Object.keys(what).length === 1 && 'element' in what;
  });
}

function describePort(e: SetElement): string {
  const parts = isConcat(e.key) ? e.key.concat : [];
  const [ip, proto, port] = parts.length === 3 ? parts : [undefined, ...parts];
  return `${String(port)}/${String(proto)}${ip === undefined ? '' : ` on ${String(ip)}`}`;
}

function describeOwner(comment: string | undefined): string {
  if (comment?.startsWith('ctr:')) return `container ${comment.slice(4)}`;
  return comment ? `"${comment}"` : 'an untagged element';
}

function isConcat(v: NftJson): v is { concat: NftJson[] } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Array.isArray(v.concat);
}
