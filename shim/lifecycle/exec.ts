// `tsrun exec`: another process in a running container, through `runc exec` in the foreground.
// stdio passes straight through; with -t runc makes the pseudo-terminal and copies between it
// and this terminal; the process's exit status becomes tsrun's.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mergeEnv } from '../spec-rewrite.js';
import path from 'node:path';
import { lastRuncError, runcFailureStatus, type RuncPaths } from '../runc.js';
import { requireTerminal } from '../run.js';
import { exitStatusOf, superviseChild } from '../supervise.js';

export interface ExecOptions {
  id: string;
  args: string[];
  env: string[];
  cwd?: string | undefined;
  tty: boolean;
  interactive: boolean;
  /** The container's state directory: runc's log of this exec goes there (gone with the container). */
  stateDir: string;
  /** `-u`: resolved (shim/user.ts); without it runc runs the spec's user. */
  user?: { uid: number; gid: number; additionalGids: number[] } | undefined;
}

export async function execInContainer(runc: RuncPaths, o: ExecOptions): Promise<number> {
  // runc's console needs this process's controlling terminal; without one runc fails late with
  // "open /dev/tty: no such device or address" and 255. Say what to do instead, as docker does.
  if (o.tty) requireTerminal();
  // runc exits 255 both when the program exits 255 and when runc could not start it; its log
  // tells the two apart, so a program not found or not executable gets docker's 127/126.
  const runcLog = path.join(existsSync(o.stateDir) ? o.stateDir : path.dirname(runc.root), `exec-${process.pid}.log`);
  const args = ['--root', runc.root, '--log', runcLog, '--log-format', 'json', 'exec'];
  // -u: the whole process through --process, since runc 1.1's --additional-gids adds to the
  // container user's additional groups (exec -u 0 in a container run as nobody got nobody's group
  // too) instead of replacing them.
  const processFile = o.user === undefined ? undefined : path.join(path.dirname(runcLog), `exec-${process.pid}.json`);
  if (processFile !== undefined) {
    writeFileSync(processFile, JSON.stringify(execProcess(o)), { mode: 0o600 });
    args.push('--process', processFile, o.id);
  } else {
    if (o.tty) args.push('--tty');
    if (o.cwd !== undefined) args.push('--cwd', o.cwd);
    for (const e of o.env) args.push('--env', e);
    args.push(o.id, ...o.args);
  }
  // Without -i the process reads nothing (docker's default); with -t it still needs the terminal.
  const stdin = o.interactive || o.tty ? 'inherit' : 'ignore';
  rmSync(runcLog, { force: true });
  try {
    const exit = await superviseChild(spawn(runc.binary, args, { stdio: [stdin, 'inherit', 'inherit'] }));
    const status = exitStatusOf(exit);
    if (status !== 255) return status;
    const runcError = lastRuncError(runcLog)?.replace(/^exec failed: /, '');
    return runcError === undefined ? status : runcFailureStatus(runcError, true);
  } finally {
    rmSync(runcLog, { force: true });
    if (processFile !== undefined) rmSync(processFile, { force: true });
  }
}

/** The process `runc exec --process` runs for `-u`: the container's own (capabilities, limits,
 * environment…, from the spec runc runs) with exec's program, environment, directory, terminal and
 * user. */
function execProcess(o: ExecOptions): Record<string, unknown> {
  const spec = JSON.parse(readFileSync(path.join(o.stateDir, 'bundle', 'config.json'), 'utf8')) as { process: Record<string, unknown> & { env?: string[] } };
  const p = { ...spec.process };
  p.args = o.args;
  p.env = mergeEnv(spec.process.env ?? [], o.env);
  if (o.cwd !== undefined) p.cwd = o.cwd;
  p.terminal = o.tty;
  delete p.consoleSize;
  p.user = { uid: o.user!.uid, gid: o.user!.gid, additionalGids: o.user!.additionalGids };
  return p;
}
