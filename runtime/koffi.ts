// koffi (the C FFI that reaches libc's namespace calls and libnftables), loaded the short way.
//
// `require('koffi')` costs a cold process ~6.3 ms, of which the native module is ~1.4 ms: the
// rest is koffi's JavaScript loader (two files compiled without a code cache, and an ELF header
// read of the node binary to tell glibc from musl) working out which prebuilt koffi.node to load.
// Every hook and CNI process that wires a container pays it. So on glibc Linux the prebuilt module
// of koffi's own platform package is required directly; the API tsrun uses (load, func, errno)
// is the native module's own. Anything else (musl, a layout without that package, a build from
// source) goes through koffi's loader as before, which finds the right binary or says why not.
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import type * as KoffiModule from 'koffi';
import { bookLoad } from './load-clock.js';

export type Koffi = typeof KoffiModule;

let koffi: Koffi | undefined;

/** koffi, loaded once per process (synchronously: callers may be inside a namespace switch). */
export function loadKoffi(): Koffi {
  if (koffi) return koffi;
  // In a bundle (CommonJS) the bundle's own require, which resolves from the bundle's path: making
  // and parsing the file: URL of import.meta.url only for createRequire to turn it back into that
  // path cost a cold process ~1 ms (node:url and the URL parser, on their first use), and the
  // first require of node:module loads Node's ES module loader and source maps (~0.4 ms; the
  // bundles load node:module lazily, scripts/bundle.mjs). The ES module build has no require.
  const req = typeof require === 'function' ? require : createRequire(import.meta.url);
  const nodeModules = typeof __dirname === 'string' ? packageNodeModules(__dirname) : undefined;
  koffi = bookLoad(() => prebuilt(req, process.platform, process.arch, nodeModules) ?? (req('koffi') as Koffi));
  return koffi;
}

/**
 * The node_modules of tsrun's own package, for a bundle in its dist/bundle directory: the place the
 * resolver would find koffi's platform package after the two inside the package (dist/bundle's and
 * dist's node_modules). A bundle anywhere else (copied to /tmp/x/bundle, /opt/tsrun/...) gets
 * undefined: its ../../node_modules is some ancestor's, which the resolver tries only after the
 * nearer ones (the bundle's own install beside it), and may be anyone's to fill (/tmp/node_modules:
 * a native module planted there ran in every root hook and CNI call of a bundle in /tmp/x/bundle).
 */
export function packageNodeModules(bundleDir: string): string | undefined {
  return basename(bundleDir) === 'bundle' && basename(dirname(bundleDir)) === 'dist' ? join(bundleDir, '..', '..', 'node_modules') : undefined;
}

/**
 * Ends the process now through libc's _exit, when koffi is already loaded (a wiring hook stage, a
 * CNI call): Node's own exit (process.exit) first stops its platform's worker threads and the
 * libuv thread pool and runs C++ destructors and atexit handlers, ~1.1 ms of a short process
 * (measured from the exit call to the parent's wait4). Only for a process whose output is all
 * written synchronously (the hook's log and stderr line, stdio to pipes and files) and that has
 * no 'exit' listener: nothing runs after this. Returns, doing nothing, when koffi is not loaded or
 * something listens for 'exit' after all.
 */
export function exitFast(code: number): void {
  // Something listens for 'exit' (a test's preload recording what was loaded): Node's exit runs it.
  // A profile asked for (--cpu-prof, --heap-prof, --prof, on node's command line or in
  // NODE_OPTIONS) is written by Node's own exit too: _exit left none.
  if (!koffi || process.listenerCount('exit') > 0 || profiling()) return;
  // Node's own exit puts stdin, stdout and stderr back as it found them (ResetStdio); _exit does
  // not. A stream Node made on one (process.stderr: node:net's Socket._destroy reads it whenever a
  // child's pipe closes, e.g. conmon's in run -d) set O_NONBLOCK on that open file description,
  // which the caller shares (a shell's 2>&3, a CI runner's pipe): a later writer to it got EAGAIN.
  // The descriptions tsrun is given are blocking (as shells and pipe(2) make them, and libuv
  // leaves them for its children), so one still non-blocking is made blocking again, as
  // shim/spawn-vfork.ts does before runc.
  blockingStdio();
  libcFunction('void _exit(int)')(code);
}

let fcntl: LibcFn | undefined;

/** Clears O_NONBLOCK on stdin, stdout and stderr where it is set: before _exit (above), and before
 * a child inherits them (shim/spawn-vfork.ts: libuv does the same for its children). */
export function blockingStdio(): void {
  fcntl ??= libcFunction('int fcntl(int fd, int cmd, ...)');
  for (const fd of [0, 1, 2]) {
    const flags = fcntl(fd, F_GETFL, 'int', 0);
    if (flags >= 0 && (flags & O_NONBLOCK) !== 0) fcntl(fd, F_SETFL, 'int', flags & ~O_NONBLOCK);
  }
}

/** Whether Node was asked to write a profile at exit: the flags themselves (the -dir, -name and
 * -interval ones only tune them), as node's options or in NODE_OPTIONS. */
function profiling(): boolean {
  const on = (arg: string) => arg === '--cpu-prof' || arg === '--heap-prof' || arg === '--prof';
  return process.execArgv.some(on) || (process.env.NODE_OPTIONS ?? '').split(/\s+/).some(on);
}
const F_GETFL = 3;
const F_SETFL = 4;
const O_NONBLOCK = 0o4000;

/** Whether koffi is loaded in this process already (a run that wired a network): callers that
 * could use it but need not (shim/spawn-vfork.ts) never load it for that alone. */
export function koffiLoaded(): boolean {
  return koffi !== undefined;
}

/** A libc function as tsrun declares them: integers, pointers and strings in, an integer out. */
export type LibcFn = (...args: unknown[]) => number;

let libc: ReturnType<Koffi['load']> | undefined;

/** Declares a function of libc (opened once per process) from its C prototype. Each module that
 * calls libc declares the few functions it needs through this, lazily, when first used. */
export function libcFunction(prototype: string): LibcFn {
  libc ??= loadKoffi().load('libc.so.6');
  return libc.func(prototype) as unknown as LibcFn;
}

/** The glibc build from koffi's platform package, or undefined when it cannot be used here. `open`
 * loads a native module by its absolute path (tests give a fake). */
export function prebuilt(req: NodeRequire, platform: string = process.platform, arch: string = process.arch, nodeModules?: string, open: (file: string) => unknown = dlopenOnce): Koffi | undefined {
  // koffi names its glibc builds <platform>_<arch> for these; other arches (arm, riscv, ppc64)
  // need its ELF checks.
  if (platform !== 'linux' || (arch !== 'x64' && arch !== 'arm64')) return undefined;
  const id = `@koromix/koffi-linux-${arch}/linux_${arch}/koffi.node`;
  // From a bundle (dist/bundle/*.cjs), the package's own node_modules (the first place the
  // resolver would look that has it) by path, opened directly: the resolver's walk costs a cold
  // process ~0.4 ms, and even a require() of an absolute path reads the requiring bundle's package
  // scope first (every package.json up to the package root, for a self-reference), ~0.45 ms of each
  // CNI ADD and DEL. Not there (a hoisted install): the resolver finds it.
  const ways: (() => unknown)[] = [() => req(id)];
  if (nodeModules !== undefined) ways.unshift(() => open(join(nodeModules, id)));
  for (const way of ways) {
    try {
      const native = way() as Partial<Koffi> | undefined;
      return typeof native?.load === 'function' && typeof native.errno === 'function' ? (native as Koffi) : undefined;
    } catch {
      // not installed that way, or not loadable here (musl): the next way, then koffi's loader
    }
  }
  return undefined;
}

/** Native modules this process opened by path, under a process-wide key: two bundles loaded by
 * one process (rm.cjs, then rm-wired.cjs) share one, as they would through require's cache (a
 * second dlopen of the same file returns the same library, and would run its module initialiser
 * again on a new exports object). */
const OPENED = Symbol.for('tsrun.nativeModulesByPath');

/** A native module by its absolute path, as require() loads one (process.dlopen with the default
 * flags), without the resolver; once per process. In a bundle it is also entered in require's
 * cache under that path, so a require() of the same file gets the same module. Throws what dlopen
 * throws (no such file, a build that cannot load here). */
export function dlopenOnce(file: string): unknown {
  const opened = ((globalThis as unknown as Record<symbol, Map<string, unknown> | undefined>)[OPENED] ??= new Map());
  const cache = typeof require === 'function' ? require.cache : undefined;
  if (opened.has(file)) return opened.get(file);
  const cached = cache?.[file];
  if (cached?.loaded) return cached.exports;
  const mod = { id: file, filename: file, loaded: false, exports: {} as unknown, children: [], paths: [] };
  process.dlopen(mod, file);
  mod.loaded = true;
  opened.set(file, mod.exports);
  if (cache && cache[file] === undefined) cache[file] = mod as unknown as NodeJS.Module;
  return mod.exports;
}
