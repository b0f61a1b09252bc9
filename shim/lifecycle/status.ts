// A container's status is derived, never guessed: conmon's exit file says it ended (and how), else
// runc's state says created, running or paused; what cleanup recorded covers a monitor that died
// without writing the exit file. Foreground `tsrun run` containers are read the same way.
import { readdirSync, readFileSync } from 'node:fs';
import { containersDir, readRecord, type ContainerRecord } from '../../runtime/containers.js';
import { runcOutput, type RuncPaths } from '../runc.js';
import { pathsOf, readExitFile, readLifecycle, type LifecycleRecord } from './record.js';

export type Status = 'creating' | 'created' | 'running' | 'paused' | 'stopped' | 'exited';

export interface RuncState {
  id: string;
  pid: number;
  status: string;
  created: string;
}

export interface ContainerView {
  id: string;
  record: ContainerRecord;
  /** Only detached containers have one. */
  lifecycle?: LifecycleRecord | undefined;
  status: Status;
  exitCode?: number | undefined;
  pid?: number | undefined;
  finishedAt?: string | undefined;
}

/** `runc list` once for all containers (ps), in JSON. */
export async function runcStates(runc: RuncPaths): Promise<Map<string, RuncState>> {
  const r = await runcOutput(runc, ['list', '--format', 'json']);
  const out = new Map<string, RuncState>();
  if (r.code !== 0) return out;
  for (const s of (JSON.parse(r.stdout || 'null') as RuncState[] | null) ?? []) out.set(s.id, s);
  return out;
}

/** `runc state ID` for one container; undefined when runc has none. */
export async function runcState(runc: RuncPaths, id: string): Promise<RuncState | undefined> {
  const r = await runcOutput(runc, ['state', id]);
  if (r.code !== 0) return undefined;
  return JSON.parse(r.stdout) as RuncState;
}

export function viewOf(runDir: string, id: string, state: RuncState | undefined): ContainerView | undefined {
  const record = readRecord(runDir, id);
  if (!record) return undefined;
  const lifecycle = record.detached ? readLifecycle(runDir, id) : undefined;
  const exit = record.detached ? readExitFile(pathsOf(runDir, id)) : undefined;
  const base = { id, record, lifecycle };
  if (exit) return { ...base, status: 'exited', exitCode: exit.code, finishedAt: lifecycle?.finishedAt ?? exit.at };
  if (lifecycle?.cleanedUp) return { ...base, status: 'exited', exitCode: lifecycle.exitCode, finishedAt: lifecycle.finishedAt };
  if (state && state.status !== 'stopped') return { ...base, status: state.status as Status, pid: state.pid };
  if (state) return { ...base, status: record.detached ? 'exited' : 'stopped' }; // conmon is writing the exit file
  // No runc state: still being set up, or a monitor that died before anything was recorded.
  return { ...base, status: record.detached === 'monitored' ? 'exited' : 'creating' };
}

export function listContainerIds(runDir: string): string[] {
  try {
    return readdirSync(containersDir(runDir)).filter((n) => !n.startsWith('.')).sort();
  } catch {
    return [];
  }
}

/** A process that exists and is not a zombie (a monitor that has ended but not been reaped yet). */
export function processRuns(pid: number | undefined, start?: string): boolean {
  if (pid === undefined) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return false;
    return start === undefined || start === '' || fields[19] === start;
  } catch {
    return false;
  }
}
