// Files tsrun writes that others must not read or replace: state directories are 0700, files
// that can hold secrets (a rewritten config.json carries `-e` values) are 0600, and every file
// written in place is first created under a RANDOM name with O_EXCL|O_NOFOLLOW and then renamed.
// A predictable temporary name in a directory someone else can write (a bundle directory for
// `spec add-hooks`) lets them plant a symlink there and have tsrun write through it.
import { randomHex } from '../config/random.js';
import { chmodSync, closeSync, constants as fsc, fchmodSync, mkdirSync, openSync, readdirSync, renameSync, rmdirSync, statSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** mkdir -p with mode 0700; an existing directory is tightened to 0700 too (older versions made
 * them 0755). Parents created on the way get 0700 as well. */
export function mkdirPrivate(dir: string): void {
  // Most calls find the directory there already with its mode (the state root, its containers/,
  // runc's root, the log directory: every run asks for them): one stat then, where mkdir -p's
  // EEXIST, its own stat and the chmod were three system calls and an inode change each time.
  const st = statSync(dir, { throwIfNoEntry: false });
  if (st !== undefined && st.isDirectory() && (st.mode & 0o7777) === PRIVATE_DIR_MODE) return;
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  chmodSync(dir, PRIVATE_DIR_MODE);
}

/**
 * Replaces `file` atomically with `data`: written to a new, exclusively created file with a random
 * name beside it (never following a symlink planted there), given `mode`, then renamed over
 * `file`. Readers see the old content or the new, never a mix.
 */
export function writeFileReplacing(file: string, data: string | Buffer, mode: number = PRIVATE_FILE_MODE): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomHex(8)}.tmp`);
  writeFileExclusive(tmp, data, mode); // removes its partial file if the write fails
  try {
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // gone already
    }
    throw err;
  }
}

/**
 * Creates `file` with `data`, which must not exist yet: for a file in a directory this process has
 * just created itself, exclusively (a container's claimed state directory), where nothing can be
 * in the way and nobody else writes. O_EXCL|O_NOFOLLOW still refuses anything planted there (a
 * symlink included). No random temporary name and no rename: what writeFileReplacing spends on
 * them (a /dev/urandom open, read and close, and the rename) guards a file that readers may see
 * being replaced; a reader of a file being created here sees it absent or short, which each one
 * already takes as "not written yet" (an unreadable record reads as no record). If the write
 * fails, the partial file is removed.
 */
export function writeFileExclusive(file: string, data: string | Buffer, mode: number = PRIVATE_FILE_MODE): void {
  const fd = openSync(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, mode);
  try {
    try {
      const buf = typeof data === 'string' ? Buffer.from(data) : data;
      for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off);
      fchmodSync(fd, mode); // the umask may have taken bits off
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    try {
      unlinkSync(file);
    } catch {
      // gone already
    }
    throw err;
  }
}

/** `rm -f file`: gone already is fine. Not fs.rmSync, which in Node 20 loads its rimraf module and
 * runs it (lstat, retries) on every call, also for one file: a cold process pays for both. */
export function removeFile(file: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** `rm -rf dir` for a directory tree tsrun made (files and directories; symlinks are removed, not
 * followed); gone already is fine. Each entry is unlinked, and listed in turn when the kernel says
 * it is a directory: a listing with file types (Dirent objects) costs a cold process's first call
 * ~0.25 ms, and every run's teardown removes a tree or two of plain files. */
export function removeTree(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR') return removeFile(dir);
    throw err;
  }
  for (const name of names) {
    const p = path.join(dir, name);
    try {
      unlinkSync(p); // a symlink goes itself, never what it points at
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue;
      // unlink(2) of a directory: EISDIR on Linux (POSIX allows EPERM).
      if (code === 'EISDIR' || code === 'EPERM') removeTree(p);
      else throw err;
    }
  }
  try {
    rmdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
