// The script `node --build-snapshot` runs to make one front door's start-up snapshot (see
// scripts/bundle.mjs). It evaluates the door's bundle (dist/bundle/<door>.cjs) once, here, so that
// a process started from the snapshot begins with every module of that door already evaluated:
// what remains is Node's own start-up and the door's work.
//
//   TSRUN_SNAPSHOT_BUNDLE  the bundle to read (in the build directory)
//   TSRUN_SNAPSHOT_AS      the path it will have once installed (dist/bundle/<door>.cjs)
//
// What cannot be in a snapshot is loaded after it is deserialized, on first use, exactly as the
// plain bundle does: native addons (koffi, netlink), etcd3, and sibling files (execa.cjs). A
// snapshot builder's `require` knows only Node's built-in modules, so the bundle is given one that
// forwards to a real require made at run time (createRequire of the installed path).
//
// Every door bundle exports `door(args, entryMs)`; the launcher runs
//   node --snapshot-blob <door>.snapshot.blob -- <bundle dir>/tsrun.cjs <args...>
// so process.argv is exactly what a plain `node tsrun.cjs <args...>` has: whatever reads
// process.argv[1] as "the entry script" (conmon's exit command, for one) still gets a node script.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');
const v8 = require('node:v8');

const source = process.env.TSRUN_SNAPSHOT_BUNDLE;
const installed = process.env.TSRUN_SNAPSHOT_AS;
if (!source || !installed) throw new Error('snapshot-entry: TSRUN_SNAPSHOT_BUNDLE and TSRUN_SNAPSHOT_AS are required');

const builtinRequire = require;
let runtimeRequire;
const forwardingRequire = (id) => (runtimeRequire ? runtimeRequire(id) : builtinRequire(id));
const mod = { exports: {}, id: installed, filename: installed, loaded: false, children: [], paths: [] };
const wrapper = vm.runInThisContext(Module.wrap(fs.readFileSync(source, 'utf8')), { filename: installed });
wrapper.call(mod.exports, mod.exports, forwardingRequire, mod, installed, path.dirname(installed));
mod.loaded = true;
if (typeof mod.exports.door !== 'function') throw new Error(`snapshot-entry: ${source} exports no door(args, entryMs)`);

// Marks the process for the logs (a hook logs where it started from: a stale snapshot shows up).
globalThis[Symbol.for('tsrun.startedFrom')] = 'snapshot';

v8.startupSnapshot.setDeserializeMainFunction(() => {
  const entryMs = performance.now();
  runtimeRequire = Module.createRequire(installed);
  const args = process.argv.slice(2);
  mod.exports.door(args, entryMs).then((code) => {
    process.exitCode = code;
    // As shim/main.ts: exit shortly even if a stray connection attempt holds the event loop.
    setTimeout(() => process.exit(code), 500).unref();
  });
});
