// The run-time half of scripts/code-cache.cjs: load() compiles a front door's bundle from its V8 code
// cache. The dispatcher dispatch.cjs bundles this file and nothing else of the code-cache tool, and
// its own code cache holds every function of what it bundles (scripts/bundle.mjs): the build-time
// half (warm-up runs, writing caches: scripts/code-cache.cjs) made that cache twice as large,
// deserialized by every cold tsrun process for code only the build runs.
// The cache names the file's size and mtime and the Node version it was made for; any mismatch,
// or V8 rejecting it (another V8, other flags), means an ordinary require: slower, never wrong.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
// The Module class from the main module when there is one (the entry, tsrun or tsrun.cjs, whose
// dispatcher dispatch.cjs bundles this file):
// the first require of node:module loads Node's ES module loader and source maps with it (~0.4 ms
// of every cold front door), for the class every CommonJS module already has as its constructor.
const Module = typeof require.main?.constructor?.wrap === 'function' && typeof require.main.constructor.createRequire === 'function' ? require.main.constructor : require('node:module');

// Set by the build (scripts/bundle.mjs) where this Node's ContextifyScript, the class vm.Script
// extends (process.binding('contextify'), as shim/spawn-inherit.ts uses Node's process handle),
// takes the arguments compile() passes it: checked there in a child process, since a wrong one is
// a failed CHECK, an abort. A code cache is used only by the Node version that made it (its
// header), the one the build checked. Unbundled (the build's own tools), vm.Script.
const CONTEXTIFY = typeof __tsrunContextify === 'boolean' && __tsrunContextify;
let contextifyScript;

/**
 * `wrapped` (a module wrapper's source) compiled with `cachedData` (a code cache, or undefined) and
 * run: the wrapper function, and the script. Through ContextifyScript where the build found it
 * works: `require('node:vm')` is the one built-in a plain run loads that Node's bootstrap has not,
 * and it and vm.Script's own JavaScript (its option checks, compiled on their first call) cost a
 * cold process ~0.3 ms; the arguments are what vm.Script passes for these options (no dynamic
 * import(): esbuild's bundles have none; the default timeout, errors displayed, no SIGINT
 * handling), with a symbol of its own as the host-defined options vm.Script would make.
 */
function compile(wrapped, filename, cachedData) {
  if (CONTEXTIFY && cachedData !== undefined) {
    if (contextifyScript === undefined) {
      contextifyScript = null;
      // Only Node's own process.binding: under --pending-deprecation (or NODE_PENDING_DEPRECATION=1)
      // Node wraps it in a deprecation that prints a DEP0111 warning on stderr at the first call,
      // and every tsrun command printed it (shim/spawn-inherit.ts stays off it there too).
      if (bindingQuiet()) {
        try {
          contextifyScript = process.binding('contextify').ContextifyScript;
        } catch {
          // process.binding refused (the permission model): vm.Script
        }
      }
    }
    if (contextifyScript) {
      const script = new contextifyScript(wrapped, filename, 0, 0, cachedData, false, undefined, Symbol(filename));
      return { fn: script.runInContext(null, -1, true, false, false), script };
    }
  }
  // Required here, not when this file loads: the dispatcher (dispatch.cjs) bundles this file
  // without the lazy stand-ins of scripts/bundle.mjs.
  const script = new (require('node:vm').Script)(wrapped, { filename, cachedData });
  return { fn: script.runInThisContext(), script };
}

/** process.binding is Node's own, unwrapped (its name): a call prints no deprecation warning. Node
 * wraps it (a function named `deprecated`) under --pending-deprecation, from the command line,
 * NODE_OPTIONS or NODE_PENDING_DEPRECATION=1 alike. */
function bindingQuiet() {
  return typeof process.binding === 'function' && process.binding.name === 'binding';
}

function header(file) {
  const st = fs.statSync(file);
  return JSON.stringify({ size: st.size, mtimeMs: st.mtimeMs, node: process.version, arch: process.arch });
}

/** Compiles and runs `file` as a CommonJS module, with `cachedData` when given. `eager`: compile
 * every function now (build time), not when first called, so the cache holds all of them. */
function run(file, cachedData, eager = false) {
  const source = fs.readFileSync(file, 'utf8');
  // V8 checks a cache against the flags it was made under: --lazy is back on before the cache is
  // made, so the cache is one the default flags accept.
  if (eager) require('node:v8').setFlagsFromString('--no-lazy');
  let compiled;
  try {
    compiled = compile(Module.wrap(source), file, cachedData);
  } finally {
    if (eager) require('node:v8').setFlagsFromString('--lazy');
  }
  const dir = path.dirname(file);
  const mod = new Module(file, module);
  mod.filename = file;
  mod.paths = Module._nodeModulePaths(dir);
  require.cache[file] = mod;
  // A door beside the module this loader runs in (the dispatcher dispatch.cjs in dist/bundle, whose
  // require is the entry's) gets that require: it resolves from the same directory and shares the
  // same cache, and a cold process's createRequire costs ~0.1-0.2 ms (a Module, its lookup paths,
  // a require function and the first calls of what makes them). Elsewhere (the build, the bench)
  // a require of the door's own.
  const req = dir === __dirname ? require : Module.createRequire(file);
  compiled.fn.call(mod.exports, mod.exports, req, mod, file, dir);
  mod.loaded = true;
  return { exports: mod.exports, script: compiled.script };
}

/**
 * Where the code cache in `cache` starts (after its header line) when that line is `expected`,
 * else -1. Compared byte by byte (the header is ASCII JSON): Buffer#indexOf and #toString, which
 * nothing else before runc's spawn calls, compile on their first call in a cold process (the
 * entry's header check 0.19 ms of CPU less without them, paired median of 40 cold runs).
 */
function dataAfterHeader(cache, expected) {
  let i = 0;
  while (i < expected.length && cache[i] === expected.charCodeAt(i)) i++;
  return i === expected.length && cache[i] === 10 ? i + 1 : -1;
}

/** The module's exports, compiled from its code cache (`<file>.v8cache`, or the one named) when
 * there is a valid one. */
function load(file, cacheFile = `${file}.v8cache`) {
  let cache;
  try {
    cache = fs.readFileSync(cacheFile);
  } catch {
    return require(file);
  }
  const at = dataAfterHeader(cache, header(file));
  if (at < 0) return require(file);
  return run(file, cache.subarray(at)).exports;
}

module.exports = { bindingQuiet, compile, dataAfterHeader, header, load, run, Module };
