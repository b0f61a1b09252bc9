// nftables in-process: libnftables (the library the `nft` binary is a thin wrapper over) through
// koffi. The same JSON batches and the same listing commands as `nft -j`, with no process to spawn
// and no temporary file: one attach batch costs well under a millisecond instead of 5-8 ms.
//
// Namespaces. libnftables opens its netlink socket in nft_ctx_new, and a socket acts for life in
// the namespace it was created in (checked on 1.0.6: a context made in namespace A and run from
// namespace B changes A). So:
//   - the context for the process's own namespace is made once and kept: one handle per process;
//   - a context for another namespace is made inside withNetnsSync, used for one command and freed
//     at once. Kept, its socket would hold that namespace alive after its last process and pin.
//
// The library is loaded on first use, not at import: koffi is a native module (it cannot be in a
// start-up snapshot) and most commands never touch the firewall.
import { readdirSync, readlinkSync } from 'node:fs';
import { libcFunction, loadKoffi } from '../koffi.js';
import { bookLoad } from '../load-clock.js';
import { withNetnsSync } from '../netns/netns.js';

/** Output flags from <nftables/libnftables.h>. */
const OUTPUT_JSON = 1 << 4;
const OUTPUT_TERSE = 1 << 11;

/** One command's result: what nft would have printed on stdout and stderr. */
export interface LibnftResult {
  ok: boolean;
  out: string;
  err: string;
}

type Ctx = unknown;
interface Lib {
  ctxNew(flags: number): Ctx;
  ctxFree(ctx: Ctx): void;
  setOutputFlags(ctx: Ctx, flags: number): void;
  bufferOutput(ctx: Ctx): number;
  bufferError(ctx: Ctx): number;
  getOutput(ctx: Ctx): string | null;
  getError(ctx: Ctx): string | null;
  run(ctx: Ctx, cmd: string): number;
}

let lib: Lib | undefined;
let loadError: Error | undefined;
let ownCtx: Ctx | undefined;

/** The library name the loader looks for (Debian: libnftables1). */
export const LIBNFTABLES = 'libnftables.so.1';

/** Loads libnftables once; undefined (and the reason kept for libnftUnavailableReason) if it cannot. */
function load(): Lib | undefined {
  if (lib || loadError) return lib;
  try {
    // Synchronous and lazy (the namespace switch below cannot await).
    const koffi = loadKoffi();
    const so = bookLoad(() => koffi.load(LIBNFTABLES)); // opening the library is loading, not work
    const f = <T>(decl: string): T => so.func(decl) as unknown as T;
    lib = {
      ctxNew: f('void *nft_ctx_new(uint32_t flags)'),
      ctxFree: f('void nft_ctx_free(void *ctx)'),
      setOutputFlags: f('void nft_ctx_output_set_flags(void *ctx, uint32_t flags)'),
      bufferOutput: f('int nft_ctx_buffer_output(void *ctx)'),
      bufferError: f('int nft_ctx_buffer_error(void *ctx)'),
      getOutput: f('const char *nft_ctx_get_output_buffer(void *ctx)'),
      getError: f('const char *nft_ctx_get_error_buffer(void *ctx)'),
      run: f('int nft_run_cmd_from_buffer(void *ctx, const char *buf)'),
    };
  } catch (err) {
    loadError = err as Error;
  }
  return lib;
}

/** True when libnftables (and koffi) load in this process. */
export function libnftAvailable(): boolean {
  return load() !== undefined;
}

/** Why the library could not be loaded, for the log; undefined if it loaded (or was not tried). */
export function libnftUnavailableReason(): string | undefined {
  return loadError?.message;
}

function newCtx(l: Lib): Ctx {
  const before = openFds();
  const ctx = l.ctxNew(0);
  if (!ctx) throw new Error('nft_ctx_new failed');
  closeOnExecSince(before);
  // Both buffered: output and error text come back as strings instead of going to fd 1 and 2.
  if (l.bufferOutput(ctx) !== 0 || l.bufferError(ctx) !== 0) {
    l.ctxFree(ctx);
    throw new Error('nft_ctx_buffer_output/error failed');
  }
  return ctx;
}

/** This process's open descriptors and what each is (its /proc/self/fd link), undefined where
 * /proc cannot say. By what, not by number alone: the listing's own descriptor is closed once it
 * is done, and the next one opened takes its number. */
function openFds(): Map<string, string> | undefined {
  let names: string[];
  try {
    names = readdirSync('/proc/self/fd');
  } catch {
    return undefined;
  }
  const out = new Map<string, string>();
  for (const name of names) {
    try {
      out.set(name, readlinkSync(`/proc/self/fd/${name}`));
    } catch {
      // the listing's own, closed by now
    }
  }
  return out;
}

const F_GETFD = 1;
const F_SETFD = 2;
const FD_CLOEXEC = 1;

/**
 * Marks close-on-exec the descriptors opened since `before`: the netlink socket nft_ctx_new opened
 * (libmnl's mnl_socket_open makes it without SOCK_CLOEXEC). Without the mark it was inherited by
 * every program this process started afterwards (the DNS resolver, conmon), and the closing of a
 * caller's inheritable descriptors before those start (runtime/inherited-fds.ts, which takes every
 * descriptor above 15 without the flag for one this process inherited) closed it under
 * libnftables: its next command failed with EBADF ("cache initialization failed: Bad file
 * descriptor", the bench's DNS scale probe), or wrote into whatever file took its number next.
 */
function closeOnExecSince(before: Map<string, string> | undefined): void {
  if (before === undefined) return;
  const after = openFds();
  if (after === undefined) return;
  const fcntl = libcFunction('int fcntl(int fd, int cmd, ...)');
  for (const [name, what] of after) {
    if (before.get(name) === what) continue;
    const fd = Number(name);
    const flags = fcntl(fd, F_GETFD, 'int', 0);
    if (flags >= 0 && (flags & FD_CLOEXEC) === 0) fcntl(fd, F_SETFD, 'int', flags | FD_CLOEXEC);
  }
}

/**
 * Runs one nft command: a JSON batch ({"nftables": [...]}) or a command line such as
 * `list table inet tsrun`. With JSON output on, libnftables parses the input as JSON first and
 * as nft syntax when it is not JSON, exactly as `nft -j` does. Synchronous: it blocks the thread
 * for the kernel round trip, which is shorter than spawning anything.
 */
export function runLibnft(cmd: string, opts: { netns?: string | undefined; terse?: boolean | undefined } = {}): LibnftResult {
  const l = load();
  if (!l) throw new Error(`${LIBNFTABLES} cannot be loaded: ${loadError?.message ?? 'unknown reason'}`);
  const flags = OUTPUT_JSON | (opts.terse ? OUTPUT_TERSE : 0);
  if (opts.netns === undefined) {
    ownCtx ??= newCtx(l);
    return runIn(l, ownCtx, cmd, flags);
  }
  const ctx = withNetnsSync(opts.netns, () => newCtx(l));
  try {
    return runIn(l, ctx, cmd, flags);
  } finally {
    l.ctxFree(ctx);
  }
}

function runIn(l: Lib, ctx: Ctx, cmd: string, flags: number): LibnftResult {
  l.setOutputFlags(ctx, flags);
  const rc = l.run(ctx, cmd);
  // Reading a buffer also rewinds it: the next command starts empty.
  const out = l.getOutput(ctx) ?? '';
  const err = l.getError(ctx) ?? '';
  return { ok: rc === 0, out, err };
}
