// Who uses a container's network namespace, so that `--net container:<id>` can share it and the
// owner's endpoint is torn down by whoever leaves last.
//
// The rule. A wired namespace has one owner (the container it was wired for) and any number of
// joiners (containers started with --net container:<owner or joiner>). Each of them is a *user*
// while its supervising process lives: the `tsrun run` process in the shim, the container's init
// in a hook. Every joiner pins the namespace itself, so the namespace lives as long as any user
// (the kernel keeps it while a pin or a process holds it). The owner's endpoint (veth or macvlan,
// lease, firewall elements, record) is kept while any user lives and torn down by the last user
// to leave, whoever that is: when the owner exits first its `tsrun run` returns at once with the
// container's status and leaves the endpoint to the last joiner. Until then the owner's id stays
// taken: a new container with that id is refused while the old namespace has users. A container
// can only be joined while it runs.
//
// Layout (one directory per shared namespace, named after its owner, under the run directory):
//   <runDir>/netns-users/<owner>/<user id>   {"pid": …, "start": …} for each user, owner included
//   <runDir>/netns-users/<owner>/.wired      the owner has endpoints to tear down
//   <runDir>/netns-users/<owner>/.teardown   {"pid": …, "start": …} while the last user tears down
//
// Why it is race-free without a lock: every user removes its own entry *before* listing the
// others, so of two users leaving at once at least the later one sees nobody left (and the
// .teardown marker, created exclusively, makes exactly one of them tear down). A joiner writes its
// entry *before* checking that its target is still a live user; if the target left in between,
// the joiner gives up (and leaves like any user); if the target left after, the target saw the
// joiner's entry and kept the endpoint. Entries of processes that died are ignored and removed.
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConflictError, SystemError, UserError } from '../config/errors.js';
import { isAlive, processStartTime, readRecord, containerDir } from './containers.js';
import { removeFile, removeTree } from './files.js';
import { hasCode } from './netns/errno.js';
import { netnsId } from './netns/netns.js';

interface Holder {
  pid: number;
  start: string;
}

const WIRED = '.wired';
const TEARDOWN = '.teardown';

export function usersDir(runDir: string, root: string): string {
  return path.join(runDir, 'netns-users', root);
}

// readHolder and listEntries look before they read: a new container's directory and its teardown
// marker do not exist yet, and a failed read builds an Error with a stack (~50-100 µs each in a
// cold `tsrun run`).
function readHolder(file: string): Holder | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Holder;
  } catch {
    return undefined;
  }
}

const live = (h: Holder | undefined): boolean => h !== undefined && isAlive(h.pid, h.start);

function holderOf(pid: number): Holder {
  const start = processStartTime(pid);
  if (start === undefined) throw new UserError(`process ${pid} does not exist`);
  return { pid, start };
}

function listEntries(dir: string): string[] {
  if (!existsSync(dir)) return [];
  try {
    return readdirSync(dir);
  } catch (err) {
    if (hasCode(err, 'ENOENT')) return [];
    throw new SystemError(`list ${dir}`, err);
  }
}

/** Live users of `root`'s namespace (dead entries are removed on the way). */
export function liveUsers(runDir: string, root: string): string[] {
  const dir = usersDir(runDir, root);
  return liveAmong(dir, listEntries(dir));
}

/** The live users among `entries`, a listing of `dir` (dead entries are removed on the way). */
function liveAmong(dir: string, entries: readonly string[]): string[] {
  const out: string[] = [];
  for (const name of entries) {
    if (name.startsWith('.')) continue;
    if (live(readHolder(path.join(dir, name)))) out.push(name);
    else removeFile(path.join(dir, name));
  }
  return out;
}

/**
 * The owner of a namespace registers itself before its container starts. Refused while users of
 * an earlier namespace wired under the same id are alive. `reclaimed` is true when an earlier
 * generation left the directory behind (its users died without tearing down): the caller must
 * detach that generation's endpoint before wiring a new one.
 */
export async function registerOwner(runDir: string, owner: string, pid: number, opts: { wired: boolean }): Promise<{ reclaimed: boolean }> {
  const dir = usersDir(runDir, owner);
  // A new id (the usual case) has no directory: no earlier generation to wait for or reclaim, no
  // marker or entry to read (the checks below would each find nothing, one system call each).
  if (!existsSync(dir)) return registerFirst(dir, owner, pid, opts.wired);
  await waitForTeardown(dir, owner);
  // One listing for both questions: with no live user left nobody can start a teardown (only a
  // user does), and no other owner can write .wired (the id's claim is exclusive), so a second
  // listing could not see another .wired or .teardown; only dead users' entries went meanwhile.
  const left = listEntries(dir);
  const others = liveAmong(dir, left).filter((u) => u !== owner);
  if (others.length > 0) {
    throw new ConflictError(`container id ${owner} is still in use: container(s) ${others.slice(0, 3).join(', ')} share the network namespace of an earlier ${owner}`);
  }
  const reclaimed = left.includes(WIRED);
  if (left.includes(TEARDOWN)) removeFile(path.join(dir, TEARDOWN)); // its holder died (waited above)
  if (reclaimed && !opts.wired) removeFile(path.join(dir, WIRED));
  return registerFirst(dir, owner, pid, opts.wired, reclaimed);
}

function registerFirst(dir: string, owner: string, pid: number, wired: boolean, reclaimed = false): { reclaimed: boolean } {
  writeEntry(dir, owner, holderOf(pid));
  if (wired) writeFileSync(path.join(dir, WIRED), '');
  return { reclaimed };
}

/** A joiner's entry, written before it checks that its target is still there (see the rule). */
export function registerJoiner(runDir: string, root: string, joiner: string, pid: number): void {
  writeEntry(usersDir(runDir, root), joiner, holderOf(pid));
}

/** `id`'s entry now names another process: a detached container's monitor takes over from the
 * tsrun that created it (which exits). */
export function handOver(runDir: string, root: string, id: string, pid: number): void {
  writeEntry(usersDir(runDir, root), id, holderOf(pid));
}

/** Whether `id` is a live user of `root`'s namespace. */
export function isLiveUser(runDir: string, root: string, id: string): boolean {
  return live(readHolder(path.join(usersDir(runDir, root), id)));
}

/** The owner whose namespace `id` uses (itself if it is an owner), or undefined when none. */
export function rootOf(runDir: string, id: string): string | undefined {
  const base = path.join(runDir, 'netns-users');
  if (listEntries(path.join(base, id)).includes(id)) return id;
  return listEntries(base).find((owner) => listEntries(path.join(base, owner)).includes(id));
}

export interface Leaving {
  /** This caller was the last user: it must tear down the owner's endpoint, then finishTeardown. */
  teardown: boolean;
  /** The owner has endpoints (a --net none owner has none to tear down). */
  wired: boolean;
  /** The namespace's directory is gone already (the last user of an unwired namespace): there is
   * nothing for finishTeardown to do. */
  finished?: true;
}

/** Removes `id`'s entry; the last one out gets `teardown: true` (exactly one caller does). */
export function leave(runDir: string, root: string, id: string, o: { unwired?: boolean } = {}): Leaving {
  const dir = usersDir(runDir, root);
  removeFile(path.join(dir, id));
  if (o.unwired === true && removeEmpty(dir)) return { teardown: true, wired: false, finished: true };
  // One listing for both questions: the .wired marker is written only by the owner's registration,
  // before its container runs, so the listing that finds no live user also says whether it is there.
  const entries = listEntries(dir);
  if (liveAmong(dir, entries).length > 0) return { teardown: false, wired: false };
  const wired = entries.includes(WIRED);
  // Claimed with link(2): it fails if the marker exists, and the marker is complete when it appears.
  const mine = path.join(dir, `.tmp.teardown.${process.pid}`);
  try {
    writeFileSync(mine, JSON.stringify(holderOf(process.pid)));
    linkSync(mine, path.join(dir, TEARDOWN));
  } catch (err) {
    if (hasCode(err, 'ENOENT')) return { teardown: false, wired: false }; // finished by another
    if (!hasCode(err, 'EEXIST')) throw new SystemError(`mark ${dir} for teardown`, err);
    // Someone is tearing down already; if it died doing so, take over.
    if (live(readHolder(path.join(dir, TEARDOWN)))) return { teardown: false, wired: false };
    renameSync(mine, path.join(dir, TEARDOWN));
  } finally {
    removeFile(mine);
  }
  return { teardown: true, wired };
}

/**
 * The plain last user (the owner of a namespace it registered unwired, nobody else in it): its
 * directory is empty once its entry is gone, and removing it answers every question at once.
 * rmdir(2) succeeds only on an empty directory: no other user's entry, live or dead, no .wired,
 * no teardown marker, no joiner's entry half written. So nobody else is left to keep the
 * namespace, nothing is wired and nobody else is tearing down; a joiner that registers later
 * finds its target gone and gives up, as after a teardown. Anything there (false) and leave's
 * protocol runs as before. A --net none run's teardown: 2 system calls where the listing and the
 * marker took 13. Asked only by a caller that registered unwired, since a failed rmdir builds an
 * Error (~50-100 µs in a cold process).
 */
function removeEmpty(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch {
    return false; // not empty, or gone: the listing decides
  }
}

/** After the last user's teardown: the namespace has no users left to record. */
export function finishTeardown(runDir: string, root: string): void {
  const dir = usersDir(runDir, root);
  // What the last user of a --net none namespace leaves is its .teardown marker alone (its own
  // entry went first, nothing was wired): the marker and the directory by name, where listing the
  // directory first took five more system calls. Anything else there (.wired, a joiner's entry, a
  // dead user's) makes rmdir fail, and the tree goes as before; so does a marker already gone.
  try {
    unlinkSync(path.join(dir, TEARDOWN));
    rmdirSync(dir);
    return;
  } catch {
    // not the plain case: list and remove what is there
  }
  removeTree(dir);
}

/** Directories whose users all died, for gc: their roots (endpoints are gc's own business). */
export function sweepDeadUsers(runDir: string): string[] {
  const swept: string[] = [];
  for (const root of listEntries(path.join(runDir, 'netns-users'))) {
    const dir = usersDir(runDir, root);
    if (liveUsers(runDir, root).length > 0 || live(readHolder(path.join(dir, TEARDOWN)))) continue;
    finishTeardown(runDir, root);
    swept.push(root);
  }
  return swept;
}

const PID_FILE_WAIT_MS = 3000;

function readPidFile(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** What `--net container:<id>` joins: a running tsrun container's namespace. */
export interface JoinTarget {
  id: string;
  /** The owner of the namespace (the target itself, or the owner the target joined). */
  root: string;
  /** A path into the namespace that lives as long as the target's container does. */
  nsPath: string;
  nsId: string;
}

/**
 * Finds the running container `id` of the shim (its state directory, a live supervising process
 * and a live container process) and the namespace to join. One-line UserErrors otherwise.
 */
export async function findJoinTarget(runDir: string, id: string, waitMs = PID_FILE_WAIT_MS): Promise<JoinTarget> {
  const rec = readRecord(runDir, id);
  if (!rec) throw new UserError(`--net container:${id}: container ${id} not found (it must be a running tsrun container)`);
  const notRunning = new UserError(`--net container:${id}: container ${id} is not running`);
  // runc writes the pid file just after starting the process: a container started a moment ago
  // may already be running without it. And a --net none owner registers as its namespace's user
  // while runc starts up (shim/network-plain.ts), so on a loaded machine its pid file can come
  // first. Wait a little for both while its tsrun process lives; a container that shares this
  // process's namespace (--net host) never registers.
  const deadline = Date.now() + waitMs;
  let pid: number | undefined;
  let root: string | undefined;
  let host = false;
  while (isAlive(rec.ownerPid, rec.ownerStart)) {
    pid = readPidFile(path.join(containerDir(runDir, id), 'pid'));
    if (pid !== undefined) {
      root = rootOf(runDir, id);
      if (root !== undefined || (host = sharesOwnNetns(pid))) break;
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  if (pid === undefined || processStartTime(pid) === undefined || !isAlive(rec.ownerPid, rec.ownerStart)) throw notRunning;
  if (!root || !isLiveUser(runDir, root, id)) {
    // Not registered: a --net host container (there is no namespace of its own to share), or an
    // owner that never registered (its setup failed) or has left.
    if (host || sharesOwnNetns(pid)) throw new UserError(`--net container:${id}: container ${id} uses the host's network namespace: use --net host`);
    throw notRunning;
  }
  const nsPath = `/proc/${pid}/ns/net`;
  let nsId: string;
  try {
    nsId = netnsId(nsPath);
  } catch {
    throw notRunning;
  }
  return { id, root, nsPath, nsId };
}


/** The process `pid` is in this process's network namespace (a --net host container, seen from
 * the host's tsrun). False when either cannot be read. */
function sharesOwnNetns(pid: number): boolean {
  try {
    return netnsId(`/proc/${pid}/ns/net`) === netnsId('/proc/self/ns/net');
  } catch {
    return false;
  }
}

function writeEntry(dir: string, id: string, h: Holder): void {
  // Written aside and renamed into place: a reader never sees half an entry (which it would take
  // for a dead user's and remove). A last user's finishTeardown may remove the directory between
  // mkdir and rename: once more then.
  for (let attempt = 0; ; attempt++) {
    mkdirSync(dir, { recursive: true });
    const tmp = path.join(dir, `.tmp.${id}.${process.pid}`);
    try {
      writeFileSync(tmp, JSON.stringify(h));
      renameSync(tmp, path.join(dir, id));
      return;
    } catch (err) {
      removeFile(tmp);
      if (!hasCode(err, 'ENOENT') || attempt >= 2) {
        // A full run directory (ENOSPC): no empty directory left for gc. Only an empty one goes,
        // and a user registering meanwhile finds it gone at its rename and registers once more.
        try {
          rmdirSync(dir);
        } catch {
          // other users' entries are there, or it is gone
        }
        throw new SystemError(`register ${id} in ${dir}`, err);
      }
    }
  }
}

/** An owner id being reused right as the previous namespace's last user tears it down: wait. */
async function waitForTeardown(dir: string, owner: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (live(readHolder(path.join(dir, TEARDOWN)))) {
    if (Date.now() > deadline) throw new ConflictError(`container id ${owner} is still in use: the network namespace of an earlier ${owner} is being torn down`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export { pinExistingNetns } from './netns/netns.js';
