// One container attached and detached through the engine (in-process, as `tsrun run` and the
// hook do it) against a CNI reference plugin's ADD and DEL (one process each, as CNI is called),
// interleaved in one loop so that drift on the machine hits both alike. The bridge and macvlan
// suites report from it.
import type { AttachRequest, Engine } from '../runtime/engine.js';
import { createPinnedNetns, deletePinnedNetns } from '../runtime/netns/netns.js';
import { cniPlugin } from './cni-plugin.js';

export interface CniReference {
  /** A reference plugin in /usr/lib/cni, e.g. bridge */
  plugin: string;
  /** The network configuration given on stdin. */
  conf: string;
  containerId: string;
  netnsPath: string;
}

/** Milliseconds per run; the first round (network and table creation) is left out. */
export interface AttachTimings {
  attach: number[];
  detach: number[];
  /** EndpointRecord.wiringMs: the in-process part of an attach. */
  wiring: number[];
  cniAdd: number[];
  cniDel: number[];
  /** The floor under the wiring, when one was given (see engineVsCni's `floor`). */
  floor: number[];
}

/**
 * `freshNetns`: a new namespace per round, pinned at `${req.netnsPath}-<round>` and unpinned after
 * the detach, as `tsrun run` does it: the detach then leaves the veth to the kernel
 * (DetachOptions.netnsGoing), and the unpin is counted in the detach's time.
 */
export async function engineVsCni(runs: number, engine: Engine, req: AttachRequest, cni: CniReference, opts: { freshNetns?: boolean; floor?: (round: number) => Promise<number> } = {}): Promise<AttachTimings> {
  const t: AttachTimings = { attach: [], detach: [], wiring: [], cniAdd: [], cniDel: [], floor: [] };
  for (let i = 0; i < runs + 1; i++) {
    // A floor's round (`opts.floor`: the kernel's own part of the wiring, measured by the caller)
    // goes before tsrun's in odd rounds and after it in even ones: each of the two follows the CNI
    // processes (an idle gap) half of the time and the other one the other half.
    const floorFirst = i % 2 === 1;
    const floorBefore = opts.floor && floorFirst ? await opts.floor(i) : undefined;
    const pin = opts.freshNetns ? `${req.netnsPath}-${i}` : req.netnsPath;
    if (opts.freshNetns) createPinnedNetns(pin);
    const a0 = performance.now();
    const rec = await engine.attach({ ...req, netnsPath: pin });
    const a1 = performance.now();
    await engine.detach(req.containerId, { netnsGoing: opts.freshNetns === true });
    if (opts.freshNetns) deletePinnedNetns(pin);
    const a2 = performance.now();
    const floor = opts.floor && !floorFirst ? await opts.floor(i) : floorBefore;
    const add = cniCall(cni, 'ADD');
    const del = cniCall(cni, 'DEL');
    if (i === 0) continue; // warm-up
    t.attach.push(a1 - a0);
    t.detach.push(a2 - a1);
    t.wiring.push(rec.wiringMs ?? a1 - a0);
    t.cniAdd.push(add);
    t.cniDel.push(del);
    if (floor !== undefined) t.floor.push(floor);
  }
  return t;
}

function cniCall(cni: CniReference, command: 'ADD' | 'DEL'): number {
  return cniPlugin(cni.plugin, command, cni.conf, { netnsPath: cni.netnsPath, containerId: cni.containerId }).ms;
}
