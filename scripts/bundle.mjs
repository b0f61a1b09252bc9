// Bundles tsrun with esbuild into CommonJS files under dist/bundle/. A cold Node process spends
// much of its start-up compiling and evaluating modules (V8 parses a whole file before running any
// of it), so:
//  - dispatch.cjs (shim/main.ts), the dispatcher, is a few lines: it picks the front door and
//    requires only its file; the entries `tsrun` and tsrun.cjs (written at the end) run it from
//    its code cache;
//  - one file per front door: hook.cjs for `tsrun hook <stage>` (a cold process on every
//    container start), cni.cjs when a runtime calls tsrun as its CNI plugin (CNI_COMMAND set;
//    also cold, and with the hook's execa-lite) and cli.cjs for everything else. They never load each other. Modules both
//    use are in both files; nothing crosses between them, so each has one copy of every class
//    (instanceof holds). Loaded with a synchronous require, which also skips the ESM loader's
//    ~6 ms of set-up;
//  - execa and its dependencies (~115 KB; requiring them costs ~20 ms) live in a file of their own
//    that cli.cjs and run.cjs require only when they first run a program through it (nft). The hook's bundle does
//    not load execa at all: `execa` resolves to hook/exec-lite.ts there, the part of execa's API
//    the engine uses, over child_process (its contract test runs both on the same commands);
//  - native addons (koffi, netlink) and etcd3 stay external: they load from node_modules, and
//    only on the paths that use them;
//  - hook.cjs, cni.cjs and cli.cjs come with V8 code caches (*.v8cache, see scripts/code-cache.cjs), which
//    the dispatcher hands V8 when it loads them: compiling a bundle is most of loading it;
//  - each front door also gets a start-up snapshot (<door>.snapshot.blob, Node's --build-snapshot,
//    see scripts/snapshot-entry.cjs): its modules already evaluated. The entry `tsrun`
//    (package.json's bin: a node script with a `#!` line naming node, written at the end) runs the
//    plain bundle; with TSRUN_SNAPSHOT=1 it execs node again from the door's snapshot (shim/entry.ts
//    picks the door as shim/main.ts does), unless there is none or the node binary is newer than
//    it (an upgraded Node rejects a snapshot made by another). tsrun-runc's shell front has its own
//    rule for runc.cjs. A new front door: export door(args, entryMs) from its bundle, add it to
//    DOORS, and route to its snapshot in shim/entry.ts (or where its shell front starts Node).
// The files are built in a directory of their own and swapped in by rename at the end, so that a
// hook or a test running during a build finds the old set or the new one, never half of each.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import path from 'node:path';
// shim/entry.ts as tsc compiled it (npm run build runs tsc first): the entry's first line.
import { shebangLine, shebangProblem, shellLine } from '../dist/shim/entry.js';

const OUT = 'dist/bundle';
const dir = `dist/bundle.tmp-${process.pid}`;
rmSync(dir, { recursive: true, force: true });
// The first read of the global `performance` loads perf_hooks and its ten internal modules
// (~1.5 ms of a cold start), and tsrun reads it only for performance.now(). process.uptime() is
// the same clock (monotonic, high resolution, from the process's start), so the bundles use it.
const clock = {
  define: { 'performance.now': '__tsrunNowMs' },
  banner: 'const __tsrunNowMs = () => process.uptime() * 1e3;',
};
/**
 * Whether this Node's ContextifyScript (the class vm.Script extends, process.binding('contextify'))
 * takes the arguments scripts/code-cache-load.cjs's compile() and the entry pass it, and accepts a
 * code cache vm.Script made: tried in a child process, since a wrong argument is a failed CHECK
 * (an abort), with the same call. Where it does not, the loaders use vm.Script as before (a
 * warning says so): the bundles define __tsrunContextify as the answer.
 */
function contextifyWorks() {
  const code = [
    "const vm = require('node:vm'), src = '(function () { return [1, 2].map((x) => x * 21)[1]; })';",
    "const data = new vm.Script(src, { filename: '/contextify-check.cjs' }).createCachedData();",
    "const C = process.binding('contextify').ContextifyScript;",
    "const s = new C(src, '/contextify-check.cjs', 0, 0, data, false, undefined, Symbol('/contextify-check.cjs'));",
    "process.stdout.write(s.cachedDataRejected === false && s.runInContext(null, -1, true, false, false)() === 42 ? 'ok' : 'no');",
  ].join('\n');
  try {
    const { NODE_OPTIONS: _ignored, ...env } = process.env;
    return execFileSync(process.execPath, ['-e', code], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], env }) === 'ok';
  } catch {
    return false;
  }
}
const contextify = contextifyWorks();
if (!contextify) console.warn("bundle: this Node's ContextifyScript does not take the loaders' arguments: code caches load through vm.Script");
// scripts/code-cache-load.cjs reads it (and the entry is written for it, below).
const loaderDefine = { __tsrunContextify: JSON.stringify(contextify) };
const common = {
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  external: ['koffi', 'netlink', 'etcd3'],
  sourcemap: true,
  minify: true,
  logLevel: 'warning',
  // Sources are ES modules (createRequire(import.meta.url) loads the native addons); in a
  // CommonJS bundle import.meta is empty, so give it the bundle file's own URL.
  // A getter: the sources read import.meta.url only inside functions (native addons, the resolver's
  // path), and making the URL when the bundle loads cost each cold door ~0.2 ms.
  define: { 'import.meta.url': '__tsrunImportMeta.url', ...clock.define, ...loaderDefine },
  banner: { js: `const __tsrunImportMeta = { get url() { return require('node:url').pathToFileURL(__filename).href; } };${clock.banner}` },
  outExtension: { '.js': '.cjs' },
  // import() of a sibling file must become require(): left as import(), Node loads the file
  // through its ESM loader, which parses a CommonJS file a second time to find its exports
  // (~15 ms for hook.cjs).
  // Node 20's V8 has every Unicode property escape (\p{…}); esbuild's table does not say so for
  // node20 and turns such a regular expression literal into `new RegExp(…)`, which tree shaking
  // cannot drop: valibot's EMOJI_REGEX (unused by tsrun) was compiled by every door that loaded
  // valibot (run-plain, run, cli, hook, runc), ~0.15-0.2 ms of each cold process (valibot itself is
  // gone since session 7: config/validate.ts).
  supported: { 'dynamic-import': false, 'regexp-unicode-property-escapes': true },
};

// Node's built-in modules outside the few its bootstrap has already loaded (fs, path, events, url,
// util, buffer, timers, module, ...) cost a cold process 1-10 ms each to require (child_process
// with its streams and net ~8 ms, crypto ~5 ms), and a top-level import requires them whether the
// command uses them or not: `tsrun run --net none` never needs dgram or worker_threads. So each
// bundle gets them through a stand-in with one getter per export, which requires the real module
// on first use. esbuild reads an imported binding at the call (import_x.name), and its __toESM
// copies properties as getters, so default, named and namespace imports all stay lazy, and the
// values are the real ones (instanceof holds). The export names are read here, from this Node.
const LAZY_BUILTINS = ['assert', 'child_process', 'crypto', 'dgram', 'diagnostics_channel', 'dns', 'fs/promises', 'module', 'net', 'os', 'perf_hooks', 'readline', 'stream', 'string_decoder', 'tls', 'tty', 'v8', 'vm', 'worker_threads', 'zlib'];
// CommonJS packages whose evaluation is costly and that some commands never call get the same
// treatment (bundled as usual, evaluated on first use): ipaddr.js compiles its regular expressions
// when it loads (~1.5 ms), and `tsrun run --net none` parses no address.
const LAZY_PACKAGES = ['ipaddr.js'];
const requireHere = createRequire(import.meta.url);
/**
 * The names a module imports from `spec` when every mention of it is a plain named import
 * (`import { a, b as c } from 'node:os'`), else undefined (a default or namespace import, a
 * re-export, a require or import() of it: the stand-in keeps every export). A stand-in with only
 * those names costs its getters and __toESM's copies of them; one with every export of node:os,
 * node:module and node:child_process was ~a third of evaluating run-plain.cjs (a V8 profile at
 * 10 us of 25 cold loads: 0.6 of 2.1 ms under the profiler).
 */
const namedImportsCache = new Map();
function namedImports(importer, spec) {
  const key = `${importer}\0${spec}`;
  if (namedImportsCache.has(key)) return namedImportsCache.get(key);
  let names;
  try {
    const src = readFileSync(importer, 'utf8');
    const q = spec.replace(/[/.]/g, (c) => `\\${c}`);
    const mentions = src.match(new RegExp(`['"]${q}['"]`, 'g'))?.length ?? 0;
    const named = [...src.matchAll(new RegExp(`^import\\s*\\{([^}]*)\\}\\s*from\\s*['"]${q}['"];?\\s*$`, 'gm'))];
    if (mentions > 0 && named.length === mentions) {
      const set = new Set();
      for (const m of named) {
        for (const part of m[1].split(',').map((x) => x.trim()).filter(Boolean)) {
          if (part.startsWith('type ')) continue;
          const n = part.split(/\s+as\s+/)[0].trim();
          if (!/^[A-Za-z_$][\w$]*$/.test(n)) throw new Error(`unexpected import of ${spec} in ${importer}: ${part}`);
          set.add(n);
        }
      }
      names = [...set].sort();
    }
  } catch (err) {
    if (String(err.message).startsWith('unexpected import')) throw err;
    names = undefined;
  }
  namedImportsCache.set(key, names);
  return names;
}
/**
 * Whether every mention of `spec` in `importer` is a default import (`import ipaddr from
 * 'ipaddr.js'`). Such an importer gets the stand-in through a small ES module whose default export
 * is the stand-in itself (required, not imported): esbuild then binds the name to the stand-in's
 * exports, where an import of the CommonJS stand-in goes through __toESM, which makes a namespace
 * object and copies each of the module's names onto it as one more getter. Evaluating
 * run-plain.cjs, whose config/address.ts and config/resolv-conf.ts import ipaddr.js that way, took
 * 0.1 ms less (paired medians of 30 interleaved cold runs, twice).
 */
const defaultImportCache = new Map();
function defaultImportOnly(importer, spec) {
  const key = `${importer}\0${spec}`;
  if (!defaultImportCache.has(key)) {
    let only = false;
    try {
      const src = readFileSync(importer, 'utf8');
      const q = spec.replace(/[/.]/g, (c) => `\\${c}`);
      const mentions = src.match(new RegExp(`['"]${q}['"]`, 'g'))?.length ?? 0;
      const defaults = src.match(new RegExp(`^import\\s+[A-Za-z_$][\\w$]*\\s+from\\s*['"]${q}['"];?\\s*$`, 'gm'))?.length ?? 0;
      only = mentions > 0 && defaults === mentions;
    } catch {
      only = false;
    }
    defaultImportCache.set(key, only);
  }
  return defaultImportCache.get(key);
}
const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    const names = [...LAZY_BUILTINS.map((m) => `(?:node:)?${m}`), ...LAZY_PACKAGES].map((m) => m.replace(/[/.]/g, (c) => `\\${c}`));
    b.onResolve({ filter: new RegExp(`^(${names.join('|')})$`) }, (args) => {
      const name = args.path.replace(/^node:/, '');
      const pkg = LAZY_PACKAGES.includes(name);
      // The stand-in's own require of the real module: Node's, or the package bundled as usual.
      if (args.namespace === 'lazy-builtin') return pkg ? undefined : { path: `node:${name}`, external: true };
      // A module that only default-imports it: the stand-in as that module's default export.
      if (args.kind === 'import-statement' && args.namespace !== 'lazy-default' && defaultImportOnly(args.importer, args.path)) return { path: name, namespace: 'lazy-default' };
      // A module that only names some exports gets a stand-in of those (one per set of names).
      const only = args.kind === 'import-statement' ? namedImports(args.importer, args.path) : undefined;
      return { path: only === undefined ? name : `${name}?${only.join(',')}`, namespace: 'lazy-builtin', pluginData: { pkg, only } };
    });
    // Required, so the whole stand-in (the onResolve above, a require-call), shared with every
    // other importer that requires it or imports it by default.
    b.onLoad({ filter: /.*/, namespace: 'lazy-default' }, (args) => ({ contents: `export default require(${JSON.stringify(LAZY_PACKAGES.includes(args.path) ? args.path : `node:${args.path}`)});\n`, loader: 'js', resolveDir: process.cwd() }));
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => {
      const pkg = args.pluginData?.pkg === true;
      const bare = args.path.split('?')[0];
      const id = pkg ? bare : `node:${bare}`;
      const all = Object.keys(requireHere(id)).filter((k) => k !== 'default' && /^[A-Za-z_$][\w$]*$/.test(k));
      const only = args.pluginData?.only;
      if (only !== undefined) for (const k of only) if (!all.includes(k)) throw new Error(`${id} has no export ${k}`);
      const keys = only ?? all;
      const lines = keys.map((k) => `Object.defineProperty(exports, ${JSON.stringify(k)}, { enumerable: true, get: () => load().${k} });`);
      return {
        contents: `let real;\nconst load = () => (real ??= require(${JSON.stringify(id)}));\n${lines.join('\n')}\n`,
        loader: 'js',
        resolveDir: process.cwd(),
      };
    });
    // The other built-ins (fs, path, url, util, events, ...: loaded by Node's bootstrap anyway),
    // when imported by an import statement: one ES module per built-in whose exports are the real
    // module's values, so that esbuild binds each imported name to a variable, read once when the
    // bundle loads. Required as an external, each importing module got its own require() (21 of
    // node:fs and 18 of node:path in run-plain.cjs: Node's public loader syncs a built-in's every
    // export into its ES module facade on each) and __toESM's copy of the module (a getter per
    // property: 104 for node:fs), and every call went through a getter. Only the names some module
    // imports are kept (the others are pure and dropped). A require() call (bundled CommonJS code)
    // still gets the module itself.
    const eager = builtinModules.filter((m) => !m.startsWith('_') && !LAZY_BUILTINS.includes(m));
    b.onResolve({ filter: new RegExp(`^(?:node:)?(${eager.map((m) => m.replace(/[/.]/g, (c) => `\\${c}`)).join('|')})$`) }, (args) => {
      const name = args.path.replace(/^node:/, '');
      if (args.namespace === 'eager-builtin' || args.kind !== 'import-statement') return { path: `node:${name}`, external: true };
      return { path: name, namespace: 'eager-builtin' };
    });
    b.onLoad({ filter: /.*/, namespace: 'eager-builtin' }, (args) => {
      const id = `node:${args.path}`;
      const keys = Object.keys(requireHere(id)).filter((k) => k !== 'default' && /^[A-Za-z_$][\w$]*$/.test(k));
      const lines = keys.map((k) => `export const ${k} = /* @__PURE__ */ pick(${JSON.stringify(k)});`);
      return {
        contents: `const real = require(${JSON.stringify(id)});\nconst pick = (k) => real[k];\n${lines.join('\n')}\nexport default real;\n`,
        loader: 'js',
        resolveDir: process.cwd(),
      };
    });
  },
};

// netlink's raw socket (netlink/dist/raw.js, all the engine uses of that package) is bundled, so
// it comes compiled from the door's code cache, and its native binding is found without
// node-gyp-build, which scans the package's directories on every load (requiring raw.js from
// node_modules cost a cold process ~8 ms, the binding itself ~0.6 ms): the prebuilt
// node.napi.node for this platform, else node-gyp-build as before.
const netlinkBinding = {
  name: 'netlink-binding',
  setup(b) {
    b.onResolve({ filter: /^netlink\/dist\/raw\.js$/ }, () => ({ path: requireHere.resolve('netlink/dist/raw.js') }));
    b.onResolve({ filter: /^node-gyp-build$/ }, (args) => (args.importer.includes(`${path.sep}netlink${path.sep}`) ? { path: 'netlink', namespace: 'netlink-binding' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'netlink-binding' }, () => ({
      contents: `const path = require('node:path');
module.exports = () => {
  const req = require('node:module').createRequire(__filename);
  const dir = path.dirname(req.resolve('netlink/package.json'));
  try {
    return req(path.join(dir, 'prebuilds', process.platform + '-' + process.arch, 'node.napi.node'));
  } catch {
    return req('node-gyp-build')(dir);
  }
};
`,
      loader: 'js',
    }));
  },
};

// execa for the CLI's doors: the sibling execa.cjs, required when a program first runs, not when
// the module that imports execa is evaluated. esbuild evaluates a module's imports with it, so a
// plain sibling require cost every command that loads the engine (runtime/firewall/nft.ts imports
// execa for its `nft` process fallback) ~12 ms of compiling and evaluating execa.cjs (CPU profile
// of `tsrun run -p`), also with libnftables in use, when no program runs at all. A stand-in with
// one getter per export of execa.cjs, as for the lazy built-ins above.
const lazyExeca = (names) => ({
  name: 'lazy-execa',
  setup(b) {
    b.onResolve({ filter: /^execa$/ }, () => ({ path: 'execa', namespace: 'lazy-execa' }));
    b.onResolve({ filter: /^\.\/execa\.cjs$/, namespace: 'lazy-execa' }, () => ({ path: './execa.cjs', external: true }));
    b.onLoad({ filter: /.*/, namespace: 'lazy-execa' }, () => ({
      contents: `let real;\nconst load = () => (real ??= require('./execa.cjs'));\n${names.map((k) => `Object.defineProperty(exports, ${JSON.stringify(k)}, { enumerable: true, get: () => load().${k} });`).join('\n')}\n`,
      loader: 'js',
    }));
  },
});
const execaLite = {
  name: 'execa-lite',
  setup(b) {
    b.onResolve({ filter: /^execa$/ }, () => ({ path: path.resolve('hook/exec-lite.ts') }));
  },
};

/**
 * An entry loads its front door's bundle (hook.cjs, cni.cjs, cli.cjs, run.cjs, runc.cjs) through
 * the code cache loader. A map entry [filter, file, cache] names another cache file than
 * <file>.v8cache (one bundle, two caches: see run.cjs below).
 */
const cachedFrontDoors = (map) => ({
  name: 'cached-front-doors',
  setup(b) {
    for (const [filter, file, cache] of map) {
      b.onResolve({ filter }, () => ({ path: cache ? `${file}#${cache}` : file, namespace: 'tsrun' }));
    }
    b.onLoad({ filter: /.*/, namespace: 'tsrun' }, (args) => {
      const [file, cache] = args.path.split('#');
      const at = (f) => `require('node:path').join(__dirname, ${JSON.stringify(f)})`;
      return {
        contents: `module.exports = require(${JSON.stringify(path.resolve('scripts/code-cache-load.cjs'))}).load(${at(file)}${cache ? `, ${at(cache)}` : ''});`,
        loader: 'js',
        resolveDir: process.cwd(),
      };
    });
  },
});

/** What `tsrun-runc --version` prints: the package version and the commit it was built from. */
function buildInfo() {
  const { version } = JSON.parse(readFileSync('package.json', 'utf8'));
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || commit;
  } catch {
    // not a git checkout
  }
  return { version, commit };
}

// The doors the routing (shim/dispatch.ts) loads, each from its code cache: in dispatch.cjs, and in
// run-plain.cjs, which carries the routing too (the entry's guess of a plain run, below).
const FRONT_DOORS = [[/^\.\.\/hook\/main\.js$/, 'hook.cjs'], [/^\.\.\/hook\/main-setup\.js$/, 'hook.cjs', 'hook.cjs.setup.v8cache'], [/^\.\.\/hook\/main-teardown\.js$/, 'hook.cjs', 'hook.cjs.teardown.v8cache'], [/^\.\.\/cni\/main\.js$/, 'cni.cjs'], [/^\.\.\/cni\/version-door\.js$/, 'cni-version.cjs'], [/^\.\/cli\.js$/, 'cli.cjs'], [/^\.\/cli-wired\.js$/, 'cli.cjs', 'cli.cjs.wired.v8cache'], [/^\.\/run-door\.js$/, 'run.cjs'], [/^\.\/run-door-wired\.js$/, 'run.cjs', 'run.cjs.wired.v8cache'], [/^\.\/run-door-plain\.js$/, 'run-plain.cjs'], [/^\.\/lifecycle\/run-detached-door\.js$/, 'run-detached.cjs'], [/^\.\/lifecycle\/rm-door\.js$/, 'rm.cjs'], [/^\.\/lifecycle\/rm-door-wired\.js$/, 'rm-wired.cjs']];
await build({ ...common, stdin: { contents: "export * from 'execa';", resolveDir: '.', loader: 'js' }, outfile: `${dir}/execa.cjs` });
const execaNames = Object.keys(createRequire(path.resolve(dir, 'x.cjs'))('./execa.cjs')).filter((k) => k !== 'default' && /^[A-Za-z_$][\w$]*$/.test(k));
await build({
  ...common,
  // The entry needs no import.meta.url and starts the clock: keep it to the routing.
  define: { ...clock.define, ...loaderDefine },
  banner: { js: clock.banner },
  entryPoints: { dispatch: 'shim/main.ts' },
  outdir: dir,
  plugins: [cachedFrontDoors(FRONT_DOORS)],
});
await build({ ...common, entryPoints: { hook: 'hook/main.ts' }, outdir: dir, plugins: [execaLite, lazyBuiltins, netlinkBinding] });
// The CNI front door (cni/main.ts): a cold process per call like the hook, so the same diet.
await build({ ...common, entryPoints: { cni: 'cni/main.ts' }, outdir: dir, plugins: [execaLite, lazyBuiltins, netlinkBinding] });
// CNI VERSION (cni/version-door.ts): the protocol's tables, without the engine.
await build({ ...common, entryPoints: { 'cni-version': 'cni/version-door.ts' }, outdir: dir, plugins: [lazyBuiltins] });
await build({ ...common, entryPoints: { cli: 'shim/cli.ts' }, outdir: dir, plugins: [lazyExeca(execaNames), lazyBuiltins, netlinkBinding] });
// A foreground `tsrun run` (shim/run-door.ts): the run path and the engine it may wire with, without
// commander and the other commands (shim/main.ts sends every other command line to cli.cjs).
await build({ ...common, entryPoints: { run: 'shim/run-door.ts' }, outdir: dir, plugins: [lazyExeca(execaNames), lazyBuiltins, netlinkBinding] });
// A foreground `tsrun run --net none` or `--net host` (shim/run-door-plain.ts): run.cjs's run path
// without the engine, which those never run. Loading run.cjs (235 KB, its cache 212 KB) cost a cold
// `run --net none` ~6.5 ms of its ~80; most of it the reading and deserializing of the engine it
// did not evaluate.
// It carries the entry's routing (shim/dispatch.ts, its start()) with the other doors as
// dispatch.cjs loads them, from their caches: for what the entry guesses is a plain run it is the one
// script the process loads (below).
await build({ ...common, entryPoints: { 'run-plain': 'shim/run-door-plain.ts' }, outdir: dir, plugins: [cachedFrontDoors(FRONT_DOORS), lazyBuiltins] });
// `tsrun run -d --net none` or `--net host` (shim/lifecycle/run-detached-door.ts): run -d's path
// (conmon, the records, the exec-fifo start) without the engine, as run-plain.cjs is run's.
await build({ ...common, entryPoints: { 'run-detached': 'shim/lifecycle/run-detached-door.ts' }, outdir: dir, plugins: [lazyBuiltins] });
// `tsrun rm [-f] ID…` (shim/lifecycle/rm-door.ts): rm's path without commander, the other commands
// and the engine (a --net none container's removal needs none; the others go back to cli.cjs).
// Loading cli.cjs cost a cold rm ~20 ms; its whole cache is eager (a small bundle, all of it run).
await build({ ...common, entryPoints: { rm: 'shim/lifecycle/rm-door.ts' }, outdir: dir, plugins: [lazyBuiltins] });
// rm of containers whose network needs the engine (shim/lifecycle/rm-door-wired.ts): the same door
// with the engine, as run.cjs is bundled; still no commander.
await build({ ...common, entryPoints: { 'rm-wired': 'shim/lifecycle/rm-door-wired.ts' }, outdir: dir, plugins: [lazyExeca(execaNames), lazyBuiltins, netlinkBinding] });
// The DNS resolver's process (runtime/dns/main.ts): the one resident tsrun process, so its own
// small file, without the CLI; started as `node resolver.cjs` by runtime/dns/client.ts.
await build({ ...common, entryPoints: { resolver: 'runtime/dns/main.ts' }, outdir: dir, plugins: [execaLite] });
// tsrun-runc (runc/): a shell front that execs runc for everything tsrun has no part in, a small
// Node entry, and runc.cjs with the hook's engine (execa-lite, like hook.cjs: no execa).
await build({ ...common, define: { ...clock.define, ...loaderDefine }, banner: { js: clock.banner }, entryPoints: { 'tsrun-runc': 'runc/entry.ts' }, outdir: dir, plugins: [cachedFrontDoors([[/^\.\/main\.js$/, 'runc.cjs']])] });
// The entry's opt-in path (shim/entry.ts): loaded by `tsrun` only with TSRUN_SNAPSHOT=1.
await build({ ...common, entryPoints: { entry: 'shim/entry.ts' }, outdir: dir });
await build({ ...common, define: { ...common.define, TSRUN_BUILD: JSON.stringify(buildInfo()) }, entryPoints: { runc: 'runc/main.ts' }, outdir: dir, plugins: [execaLite, lazyBuiltins] });
copyFileSync('runc/tsrun-runc.sh', `${dir}/tsrun-runc`);
chmodSync(`${dir}/tsrun-runc`, 0o755);
// esbuild's __toESM, what a default or namespace import of a CommonJS module (node:fs, node:path,
// the lazy built-ins above) gets: a new object with a getter copied for every property of the
// module, made once per importing module (two modules importing node:fs copy its 104 properties
// twice; crypto's stand-in 67 a time). Memoized per module object (and node mode), so that each is
// copied once: the result is read-only to its importers, so sharing it changes nothing. Measured:
// a CNI ADD + DEL 2.7 ms of CPU less (20 interleaved cycles, wait4), ~110 us per node:fs copy.
// The code after it on its line moves right: the source map's columns there move with it.
const TO_ESM = /var ([\w$]+)=(\(([\w$]+),([\w$]+),([\w$]+)\)=>\(\5=\3!=null\?[\w$]+\([\w$]+\(\3\)\):\{\},[\w$]+\(\4\|\|!\3\|\|!\3\.__esModule\?[\w$]+\(\5,"default",\{value:\3,enumerable:!0\}\):\5,\3\)\))[;,]/;
const TO_ESM_HEAD = '((o,c)=>(t,e)=>{if(t==null||typeof t!="object"&&typeof t!="function")return o(t,e);let m=c.get(t);m||c.set(t,m=[]);return m[e?1:0]??=o(t,e)})(';
const TO_ESM_TAIL = ',new WeakMap)';
function memoizeToESM(file) {
  const src = readFileSync(file, 'utf8');
  const m = TO_ESM.exec(src);
  if (!m) {
    if (src.includes('.__esModule?')) console.warn(`bundle: esbuild's __toESM not recognised in ${path.basename(file)}: left as it is`);
    return;
  }
  const head = m.index + `var ${m[1]}=`.length; // TO_ESM_HEAD goes here
  const tail = head + m[2].length; // TO_ESM_TAIL here
  writeFileSync(file, src.slice(0, head) + TO_ESM_HEAD + src.slice(head, tail) + TO_ESM_TAIL + src.slice(tail));
  const mapFile = `${file}.map`;
  if (!existsSync(mapFile)) return;
  const map = JSON.parse(readFileSync(mapFile, 'utf8'));
  const lineStart = src.lastIndexOf('\n', head - 1) + 1;
  const line = src.slice(0, lineStart).split('\n').length - 1;
  const lines = map.mappings.split(';');
  const segments = decodeLine(lines[line]);
  for (const seg of segments) {
    const col = seg[0] + lineStart; // as an offset in the file, like head and tail
    seg[0] += (col >= head ? TO_ESM_HEAD.length : 0) + (col >= tail ? TO_ESM_TAIL.length : 0);
  }
  lines[line] = encodeLine(segments);
  map.mappings = lines.join(';');
  writeFileSync(mapFile, JSON.stringify(map));
}
// Source map lines: segments of base64 VLQ fields, the generated column relative to the previous
// segment's on the line, the other fields relative across the file (kept as they are here).
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
function decodeLine(text) {
  const out = [];
  let col = 0;
  for (const seg of text === '' ? [] : text.split(',')) {
    const fields = [];
    let value = 0;
    let shift = 0;
    for (const ch of seg) {
      const digit = B64.indexOf(ch);
      value += (digit & 31) << shift;
      if (digit & 32) shift += 5;
      else {
        fields.push(value & 1 ? -(value >>> 1) : value >>> 1);
        value = 0;
        shift = 0;
      }
    }
    col += fields[0];
    out.push([col, ...fields.slice(1)]);
  }
  return out;
}
function encodeLine(segments) {
  let prev = 0;
  return segments
    .map(([col, ...rest]) => {
      const fields = [col - prev, ...rest];
      prev = col;
      return fields
        .map((v) => {
          let vlq = v < 0 ? (-v << 1) | 1 : v << 1;
          let s = '';
          do {
            let digit = vlq & 31;
            vlq >>>= 5;
            if (vlq > 0) digit |= 32;
            s += B64[digit];
          } while (vlq > 0);
          return s;
        })
        .join('');
    })
    .join(',');
}
for (const file of readdirSync(dir)) if (file.endsWith('.cjs')) memoizeToESM(path.join(dir, file));

// In a child with no NODE_OPTIONS: V8 rejects a cache made under other flags.
const { NODE_OPTIONS: _flags, ...cleanEnv } = process.env;
// The hook's and the CNI plugin's caches hold every function of their bundle (--eager): a wiring
// stage runs most of the engine, which a build cannot run (it needs namespaces and root), and
// compiling it lazily cost each cold hook process ~15 ms of CPU (createRuntime + poststop 220 ->
// 191 ms, the CNI plugin's ADD + DEL 160 -> 146 ms, measured). The CLI's stays lazy, warmed by a
// whole `run --net none`: its bundle carries every command, and an eager cache of all of them
// (1.3 MB) costs `tsrun run` more to read than it saves.
const EAGER_CACHE = new Set(['hook.cjs', 'cni.cjs', 'cni-version.cjs', 'rm.cjs', 'rm-wired.cjs', 'run-detached.cjs']);
for (const file of ['hook.cjs', 'cni.cjs', 'cni-version.cjs', 'cli.cjs', 'run.cjs', 'run-plain.cjs', 'run-detached.cjs', 'rm.cjs', 'rm-wired.cjs', 'runc.cjs']) {
  const args = ['scripts/code-cache.cjs', `${dir}/${file}`, ...(EAGER_CACHE.has(file) ? ['--eager'] : [])];
  execFileSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'], env: cleanEnv });
}
// run.cjs has two caches, and the entry picks one from --net: the lazy one above (what a whole
// `run --net none` ran) for none, host and container:<id>, and an eager one (every function) for a
// network to wire, whose engine the build cannot run to warm a cache with, like the hook's.
// Measured (CPU time of the whole process, perf stat, 21 interleaved runs): the eager cache cut
// `run -p 8080:80` 133.8 -> 118.9 ms and cost `run --net none` 77.7 -> 80.9 ms, hence both.
execFileSync(process.execPath, ['scripts/code-cache.cjs', `${dir}/run.cjs`, '--eager', '--out', `${dir}/run.cjs.wired.v8cache`], { stdio: ['ignore', 'ignore', 'inherit'], env: cleanEnv });
// The same for the CLI (shim/command-word.ts picks): the commands that run the engine (run -d,
// create, stop, rm, restart, cleanup, network, gc) load cli.cjs with an eager cache. Measured (CPU
// time, perf stat, 11 interleaved rounds): run -d -p 137.6 -> 127.3 ms, rm -f 105.2 -> 97.2 ms,
// and ps 60.6 -> 64.4 ms, which is why ps and the like keep the lazy one.
execFileSync(process.execPath, ['scripts/code-cache.cjs', `${dir}/cli.cjs`, '--eager', '--out', `${dir}/cli.cjs.wired.v8cache`], { stdio: ['ignore', 'ignore', 'inherit'], env: cleanEnv });

// hook.cjs has three caches, and the dispatcher picks one by stage (shim/dispatch.ts): the eager
// one above for the stages that only log, and one per wiring stage, made from a real createRuntime
// and poststop (scripts/code-cache.cjs writeStageCaches: root and namespaces of its own). Where
// those cannot be made, both are the eager one, as before.
try {
  execFileSync(process.execPath, ['scripts/code-cache.cjs', `${dir}/hook.cjs`, '--stages', `${dir}/hook.cjs.setup.v8cache`, `${dir}/hook.cjs.teardown.v8cache`], { stdio: ['ignore', 'ignore', 'pipe'], env: cleanEnv });
} catch (err) {
  for (const stage of ['setup', 'teardown']) copyFileSync(`${dir}/hook.cjs.v8cache`, `${dir}/hook.cjs.${stage}.v8cache`);
  const why = String(err.stderr ?? '').trim().split('\n').pop() || err.message;
  console.warn(`bundle: the hook's wiring stages load its eager code cache (${why})`);
}

// Start-up snapshots, one per front door. A door whose snapshot cannot be built still works, from
// the plain bundle: the build says so and goes on. `entry` is the plain entry script the door's
// process would otherwise run (process.argv[1] is that path either way).
const DOORS = [
  { name: 'cli', bundle: 'cli.cjs' },
  { name: 'hook', bundle: 'hook.cjs' },
  { name: 'cni', bundle: 'cni.cjs' },
  { name: 'runc', bundle: 'runc.cjs' },
];
for (const door of DOORS) {
  const blob = `${dir}/${door.name}.snapshot.blob`;
  try {
    execFileSync(process.execPath, ['--snapshot-blob', blob, '--build-snapshot', 'scripts/snapshot-entry.cjs'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...cleanEnv, TSRUN_SNAPSHOT_BUNDLE: path.resolve(dir, door.bundle), TSRUN_SNAPSHOT_AS: path.resolve(OUT, door.bundle) },
    });
  } catch (err) {
    rmSync(blob, { force: true });
    const why = String(err.stderr ?? err.message).split('\n').filter((l) => l && !/Warning|may still|nodejs\/node|trace-warnings/.test(l))[0];
    console.warn(`bundle: no start-up snapshot for ${door.name} (${why ?? 'unknown error'}): it starts from the plain bundle`);
  }
}

// The entry `tsrun` (package.json's bin): a node script the kernel starts through its `#!` line,
// with no shell in front of node (the sh launcher it replaces cost every command ~1.3 ms; floor C
// has none). Its lines:
//  1. `#!` and the node binary that builds it, absolutely, as the launcher named it (no PATH lookup);
//  2. a line that is a string and a comment to JavaScript and, to a shell, `:` then exec of that node
//     on this file: hooks registered through the launcher (`/bin/sh <bundle>/tsrun hook <stage>`,
//     as tsrun registered them before e922176) and `sh tsrun` keep working, one sh as before;
//  3. the prelude: tsrun.cjs named as process.argv[1], as the launcher's `exec node tsrun.cjs` did
//     (conmon's exit command, the resolver and the hook and CNI registrations start tsrun again
//     from it); with TSRUN_SNAPSHOT=1 only, entry.cjs (shim/entry.ts), which execs node again from
//     the door's start-up snapshot unless TSRUN_NO_SNAPSHOT is set, there is none, or node is newer
//     than it (an upgraded Node refuses a snapshot made by another). The default path pays one
//     environment read: the snapshot does not pay (deserializing a 5 MB heap costs as much CPU as
//     loading the bundle from its code cache, or more), and V8 refuses a snapshot built on another
//     CPU with exit 14, which nothing can tell from a program's own exit 14 once exec'd, so no
//     fallback could be safe. Opting in is for a machine that built its own dist/;
//  4. the dispatcher dispatch.cjs (shim/main.ts), run from its code cache (dispatch.cjs.v8cache:
//     every function of it compiled, made by scripts/code-cache.cjs --compile-only) with the header
//     check of scripts/code-cache.cjs's load(), and its `#!` line made a comment as the cache was
//     made; without a valid cache, required as usual. As the main module Node compiled all 9.8 KB
//     without a cache (~0.3-0.6 ms, and each function it ran again on first call); reading and
//     checking the cache costs a stat and two reads whose first calls the door's load paid anyway.
//     Compiled with Node's ContextifyScript (the class vm.Script extends) where the build found this
//     Node takes the arguments (contextifyWorks above), as scripts/code-cache-load.cjs compiles the
//     doors: no node:vm loaded, none of vm.Script's JavaScript compiled (~0.4 ms of CPU of a cold
//     `run --net none`); vm.Script where process.binding refuses (the permission model).
//     The dispatcher gets the entry's own require and lookup paths (the same directory; Node made them
//     for the main module), and passes that require on to the door (scripts/code-cache-load.cjs),
//     instead of a createRequire each: ~0.1-0.2 ms of a cold process per call.
//     A command line the entry guesses is a foreground plain run (`run` first, a whole argument
//     none or host or --net=none/host, no -d or --detach) loads run-plain.cjs in its place, the
//     same way, and runs its start(): that bundle carries the routing (shim/dispatch.ts) with the
//     other doors behind their loaders, so the process deserializes one code cache, not two (CPU of
//     a `run --net none` with /bin/true as runc, perf stat, 40 interleaved runs: 39.0 -> 37.7 ms).
//     The guess only picks the script: the routing decides, and a wrong guess costs run-plain.cjs's
//     load (~2 ms), never a different outcome (test/unit/shim/run-plain.test.ts). Every other
//     command line loads dispatch.cjs as before.
// tsrun.cjs, what hooks, the CNI wrapper and conmon's exit command run (`node <bundle>/tsrun.cjs
// ...`), is the same loader of the dispatcher after a `#!/usr/bin/env node` line, so they start
// from its code cache too, with no registration changed.
// Node loads the main module from its real path (a symlink in PATH, as npm's bin link, finds its
// siblings), and an extensionless file as the nearest package.json's "type" says: this package's
// is "module", so dist/bundle gets its own, "commonjs" (every other file there is .cjs or not
// JavaScript, so nothing else changes).
// Node moved or removed: the kernel cannot start the entry (ENOENT, as for a missing file), and the
// shell says so on one line naming the entry (bash 5.2: "cannot execute: required file not found",
// 127; dash: "not found"); `npm run build` writes the entry again for the node that runs it.
execFileSync(process.execPath, ['scripts/code-cache.cjs', `${dir}/dispatch.cjs`, '--compile-only'], { stdio: ['ignore', 'ignore', 'inherit'], env: cleanEnv });
const node = realpathSync(process.execPath);
const problem = shebangProblem(node);
if (problem !== undefined) console.warn(`bundle: node's path ${JSON.stringify(node)} ${problem}: the entry starts node through /usr/bin/env`);
const prelude = 'process.argv[1]=__dirname+"/tsrun.cjs";if(process.env.TSRUN_SNAPSHOT==="1")require("./entry.cjs").execSnapshot(__dirname);';
const dispatcher = [
  '{const fs=require("node:fs"),M=module.constructor,a=process.argv,p=a[2]==="run"&&!a.includes("-d")&&!a.includes("--detach")&&(a.includes("none")||a.includes("host")||a.includes("--net=none")||a.includes("--net=host")),f=__dirname+(p?"/run-plain.cjs":"/dispatch.cjs");let d,x;',
  // the header line compared byte by byte, as scripts/code-cache-load.cjs's dataAfterHeader does
  'try{const c=fs.readFileSync(f+".v8cache"),s=fs.statSync(f),h=JSON.stringify({size:s.size,mtimeMs:s.mtimeMs,node:process.version,arch:process.arch});',
  'let i=0;while(i<h.length&&c[i]===h.charCodeAt(i))i++;if(i===h.length&&c[i]===10)d=c.subarray(i+1)}catch{}',
  'if(d===void 0)x=require(f);else{const m=new M(f,module),t=fs.readFileSync(f,"utf8");m.filename=f;m.paths=module.paths;require.cache[f]=m;',
  // compiled as scripts/code-cache-load.cjs's compile() does it: through ContextifyScript where
  // this Node takes it (contextifyWorks) and process.binding is Node's own (bindingQuiet: not
  // wrapped to warn, as --pending-deprecation does), else vm.Script
  `const w=M.wrap(t.startsWith("#!")?"//"+t.slice(2):t);let C;${contextify ? 'if(process.binding.name==="binding")try{C=process.binding("contextify").ContextifyScript}catch{}' : ''}`,
  '(C?new C(w,f,0,0,d,!1,void 0,Symbol(f)).runInContext(null,-1,!0,!1,!1):new(require("node:vm").Script)(w,{filename:f,cachedData:d}).runInThisContext()).call(m.exports,m.exports,require,m,f,__dirname);m.loaded=!0;x=m.exports}',
  'if(p)x.start(a.slice(2))}',
].join('');
writeFileSync(`${dir}/tsrun`, [shebangLine(node), shellLine(node), prelude + dispatcher, ''].join('\n'), { mode: 0o755 });
chmodSync(`${dir}/tsrun`, 0o755);
writeFileSync(`${dir}/tsrun.cjs`, ['#!/usr/bin/env node', `// tsrun's dispatcher (dispatch.cjs) from its code cache: written by scripts/bundle.mjs.`, dispatcher, ''].join('\n'), { mode: 0o755 });
chmodSync(`${dir}/tsrun.cjs`, 0o755);
writeFileSync(`${dir}/package.json`, `${JSON.stringify({ type: 'commonjs' })}\n`);

// The swap: two renames, microseconds apart, instead of a build-long gap.
const old = `dist/bundle.old-${process.pid}`;
if (existsSync(OUT)) renameSync(OUT, old);
renameSync(dir, OUT);
rmSync(old, { recursive: true, force: true });
