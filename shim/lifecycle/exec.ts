// `tsrun exec`: another process in a running container, through `runc exec` in the foreground.
// stdio passes straight through; with -t runc makes the pseudo-terminal and copies between it
// and this terminal; the process's exit status becomes tsrun's.
import { spawn } from 'node:child_process';
import type { RuncPaths } from '../runc.js';
import { exitStatusOf, superviseChild } from '../supervise.js';

export interface ExecOptions {
  id: string;
  args: string[];
  env: string[];
  cwd?: string | undefined;
  tty: boolean;
  interactive: boolean;
}

export async function execInContainer(runc: RuncPaths, o: ExecOptions): Promise<number> {
  const args = ['--root', runc.root, 'exec'];
  if (o.tty) args.push('--tty');
  if (o.cwd !== undefined) args.push('--cwd', o.cwd);
  for (const e of o.env) args.push('--env', e);
  args.push(o.id, ...o.args);
  // Without -i the process reads nothing (docker's default); with -t it still needs the terminal.
  const stdin = o.interactive || o.tty ? 'inherit' : 'ignore';
  const exit = await superviseChild(spawn(runc.binary, args, { stdio: [stdin, 'inherit', 'inherit'] }));
  return exitStatusOf(exit);
}
