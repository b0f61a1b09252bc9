// Is the container an endpoint record describes still there? A namespace's identity (dev:inode)
// alone cannot say: the kernel reuses the inode once a namespace is freed, so a new container can
// get the identity of a dead one. Records made from /proc/PID/ns/net (the hook) also name that
// process and its start time, which never repeat; records of pinned namespaces (tsrun run) are
// alive while a process or a pin still holds the identity. So are records of namespaces a CNI
// runtime bind-mounted (/run/netns/…): their path names them as long as the mount holds them,
// with no process inside yet (between ADD and the container's start) or any more.
import { isAlive, processStartTime } from './containers.js';
import { sameBoot } from './boot.js';
import { findNetnsPath } from './netns/find.js';
import { netnsId } from './netns/netns.js';
import type { EndpointRecord } from './records.js';

export function endpointAlive(rec: EndpointRecord, pinnedIds: ReadonlySet<string | undefined> = new Set()): boolean {
  // Namespace identities and pids from another boot can belong to anything now.
  if (!sameBoot(rec.bootId)) return false;
  if (rec.netnsHolder) return isAlive(rec.netnsHolder.pid, rec.netnsHolder.start);
  return pinnedIds.has(rec.containerNetns) || pathNames(rec) || findNetnsPath(rec.containerNetns) !== undefined;
}

/** The recorded path still leads to the recorded namespace (a mount holds it). */
function pathNames(rec: EndpointRecord): boolean {
  try {
    return netnsId(rec.netnsPath) === rec.containerNetns;
  } catch {
    return false;
  }
}

/** True when `pid` is the very process the record was wired for (same pid, same start). */
export function wiredFor(rec: EndpointRecord, pid: number): boolean {
  if (!rec.netnsHolder) return true; // no process recorded: the namespace identity must do
  return rec.netnsHolder.pid === pid && rec.netnsHolder.start === processStartTime(pid);
}
