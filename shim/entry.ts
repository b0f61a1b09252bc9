// What the CLI entry `dist/bundle/tsrun` needs beyond the dispatcher it runs (shim/main.ts,
// bundled as dispatch.cjs): its first two lines, and the opt-in start-up snapshot.
//
// `tsrun` is a Node script the kernel starts through its `#!` line: no shell in front of node
// (the sh launcher it replaces cost every command ~1.3 ms). scripts/bundle.mjs writes it: the node
// binary that built it on the first line (shebangLine), a line a shell reads as an exec of that node
// (shellLine), then one check of TSRUN_SNAPSHOT: only when that asks for the door's start-up
// snapshot does the entry load this module's bundle (entry.cjs) and exec node again from the
// snapshot (execSnapshot); otherwise it runs dispatch.cjs from its code cache. So the default path
// pays one environment read for the opt-in, and the opt-in pays one more Node start: the snapshot
// does not pay anyway (docs/fast-path.md), it stays for experiments.
import { statSync } from 'node:fs';
import path from 'node:path';
import { libcFunction } from '../runtime/koffi.js';

/**
 * Linux reads at most 127 bytes of a `#!` line on kernels before 5.1 (BINPRM_BUF_SIZE 128) and
 * splits it at the first blank: a node path that does not fit, or has a blank, cannot be named
 * there, and `/usr/bin/env node` (node on PATH, one exec more) stands in. Undefined when `node` is
 * fine as it is.
 */
export function shebangProblem(node: string): string | undefined {
  if (!path.isAbsolute(node)) return 'is not absolute';
  if (/\s/.test(node)) return 'has a blank';
  if (`#!${node} --`.length > 127) return 'is longer than a #! line may be';
  return undefined;
}

/** The entry's first line: the node binary that built it, named absolutely (no PATH lookup, as the
 * sh launcher named it), or `/usr/bin/env node` when that path cannot be a `#!` line. With `--`
 * after it: Node 20 scans the script's own arguments for `--env-file FILE` and, when FILE does not
 * exist, exits 9 before any JavaScript runs ("node: FILE: not found"), so `tsrun run --env-file
 * missing.env` never reached tsrun's own one line and 125; `--` ends node's options for that scan. */
export function shebangLine(node: string): string {
  return shebangProblem(node) === undefined ? `#!${node} --` : '#!/usr/bin/env node';
}

/**
 * The entry's second line: to JavaScript a string and a comment, to a shell `:` and then exec of
 * `node` on the entry itself. Hooks registered as `/bin/sh <bundle>/tsrun hook <stage>` (the sh
 * launcher's days) and `sh tsrun …` keep working, through one sh as they always did.
 */
export function shellLine(node: string): string {
  return `":" //; exec '${node.replaceAll("'", `'\\''`)}' -- "$0" "$@"`;
}

export type SnapshotDoor = 'cli' | 'hook' | 'cni';

/** Which door's snapshot a command line starts from: the routing of shim/dispatch.ts, as far as the
 * snapshots go (run, rm and the CLI's commands all start from the CLI's). */
export function snapshotDoor(args: readonly string[], env: NodeJS.ProcessEnv): SnapshotDoor {
  if (env.CNI_COMMAND && args.length === 0) return 'cni';
  const stage = args[1];
  if (args[0] === 'hook' && stage !== undefined && stage !== '' && !stage.startsWith('-') && stage !== 'install' && stage !== 'uninstall') return 'hook';
  return 'cli';
}

/** Modification time of a regular file in ms, or undefined when there is none. */
export type MtimeOf = (file: string) => number | undefined;

const mtimeOf: MtimeOf = (file) => {
  const st = statSync(file, { throwIfNoEntry: false });
  return st?.isFile() ? st.mtimeMs : undefined;
};

/**
 * The snapshot blob to start from, or undefined for the plain bundle: only with TSRUN_SNAPSHOT=1,
 * never with TSRUN_NO_SNAPSHOT set (to anything but ''), and only a blob newer than the node binary
 * (an upgraded Node refuses a snapshot another one made, with exit 14, which cannot be told from a
 * program's own exit 14 once exec'd: so the check is made before).
 */
export function snapshotBlob(here: string, args: readonly string[], env: NodeJS.ProcessEnv, node: string, mtime: MtimeOf = mtimeOf): string | undefined {
  if (env.TSRUN_SNAPSHOT !== '1' || (env.TSRUN_NO_SNAPSHOT ?? '') !== '') return undefined;
  const blob = path.join(here, `${snapshotDoor(args, env)}.snapshot.blob`);
  const blobMs = mtime(blob);
  const nodeMs = mtime(node);
  return blobMs !== undefined && nodeMs !== undefined && blobMs > nodeMs ? blob : undefined;
}

/** The command line that starts the door from its snapshot. process.argv[1] is tsrun.cjs there,
 * as in the plain bundle (conmon's exit command and the resolver start tsrun again from it). */
export function snapshotArgv(node: string, blob: string, here: string, args: readonly string[]): string[] {
  return [node, '--snapshot-blob', blob, '--', path.join(here, 'tsrun.cjs'), ...args];
}

const F_GETFD = 1;
const F_SETFD = 2;
const FD_CLOEXEC = 1;

/**
 * Replaces this process with node started from the door's snapshot, when TSRUN_SNAPSHOT=1 asks and
 * the blob may be used. execve through libc (Node 20 has no exec): the same process id, stdio,
 * environment and parent, as the launcher's `exec` gave. Node marks every descriptor it inherited
 * close-on-exec as it starts (libuv's uv_disable_stdio_inheritance), so stdin, stdout and stderr
 * are made inheritable again first; descriptors above 2 are not passed on (Node never passed them
 * to anything it started either, and the CLI reads none). Returns when the plain bundle should run:
 * no snapshot to use, or koffi or the exec failed (then nothing that matters has changed: stdio
 * left inheritable, as a shell would have it).
 */
export function execSnapshot(here: string, args: readonly string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): void {
  const node = process.execPath;
  const blob = snapshotBlob(here, args, env, node);
  if (blob === undefined) return;
  let execve;
  let fcntl;
  try {
    execve = libcFunction('int execve(const char *path, const char **argv, const char **envp)');
    fcntl = libcFunction('int fcntl(int fd, int cmd, ...)');
  } catch {
    return; // koffi cannot be loaded here: the plain bundle
  }
  for (const fd of [0, 1, 2]) {
    const flags = fcntl(fd, F_GETFD);
    if (flags >= 0 && flags & FD_CLOEXEC) fcntl(fd, F_SETFD, 'int', flags & ~FD_CLOEXEC);
  }
  const envp = Object.entries(env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
  execve(node, [...snapshotArgv(node, blob, here, args), null], [...envp, null]);
}
