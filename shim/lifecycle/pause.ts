// `tsrun pause` and `tsrun unpause`: runc freezes every process of the container (the cgroup
// freezer) and thaws them again. Nothing else changes: the network, the monitor and the log stay.
// ps and inspect show "paused" because runc's state says so (status.ts derives it, never guesses).
import { readFileSync } from 'node:fs';
import { UserError } from '../../config/errors.js';
import type { Settings } from '../../config/settings.js';
import { cgroupsPathFor } from '../../runtime/cgroups/resources.js';
import { runcPaths, runcOutput, type RuncPaths } from '../runc.js';
import type { ContainerView } from './status.js';

export type PauseVerb = 'pause' | 'resume';

/** runc pause/resume; runc's one-line error when it refuses (e.g. no freezer cgroup). */
export async function runcPauseResume(runc: RuncPaths, id: string, verb: PauseVerb): Promise<void> {
  const r = await runcOutput(runc, [verb, id]);
  if (r.code !== 0) throw new UserError(`runc ${verb} ${id}: ${r.stderr.trim().split('\n').pop() ?? 'failed'}`);
}

/** Checks every container first (all or nothing), then pauses or resumes each. */
export async function pauseContainers(settings: Settings, views: ContainerView[], verb: PauseVerb): Promise<void> {
  const want = verb === 'pause' ? 'running' : 'paused';
  for (const v of views) {
    if (v.status === want) continue;
    const what = v.status === 'exited' ? `exited with ${v.exitCode ?? 'an unknown status'}` : v.status;
    if (verb === 'pause' && v.status === 'paused') throw new UserError(`container ${v.id} is already paused`);
    if (verb === 'pause') throw new UserError(`container ${v.id} cannot be paused: it is not running (${what})`);
    throw new UserError(`container ${v.id} cannot be unpaused: it is not paused (${what})`);
  }
  const runc = runcPaths(settings);
  for (const v of views) await runcPauseResume(runc, v.id, verb);
}

/**
 * A paused container's processes cannot act on a signal until they are thawed: after a signal is
 * sent (stop, kill), a paused container is resumed, as docker does, so it is delivered. A container
 * that ended in between has nothing left to resume.
 */
export async function resumeAfterSignal(runc: RuncPaths, v: Pick<ContainerView, 'id' | 'status'>): Promise<void> {
  if (v.status !== 'paused') return;
  await runcOutput(runc, ['resume', v.id]);
}

/**
 * Whether the container's cgroup is frozen, read from the freezer files (no runc process: `rm -f`
 * stays one runc call). v1's freezer controller, or v2's cgroup.freeze (pure or hybrid layout).
 */
export function isFrozen(id: string): boolean {
  const cg = cgroupsPathFor(id);
  const candidates: [string, (s: string) => boolean][] = [
    [`/sys/fs/cgroup/freezer${cg}/freezer.state`, (s) => s.trim() !== 'THAWED'],
    [`/sys/fs/cgroup${cg}/cgroup.freeze`, (s) => s.trim() === '1'],
    [`/sys/fs/cgroup/unified${cg}/cgroup.freeze`, (s) => s.trim() === '1'],
  ];
  for (const [file, frozen] of candidates) {
    try {
      return frozen(readFileSync(file, 'utf8'));
    } catch {
      // not this layout
    }
  }
  return false;
}
