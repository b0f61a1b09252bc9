#!/usr/bin/env node
// The Node entry of tsrun-runc (the shell front, runc/tsrun-runc.sh, execs it for the few
// commands tsrun takes part in). Like tsrun's own entry it only routes: the work is in runc.cjs,
// loaded with its V8 code cache.
const entryMs = performance.now();

void import('./main.js')
  .then(({ runcMain }) => runcMain(process.argv.slice(2), { entryMs }))
  .then((code) => {
    process.exitCode = code;
    // As in shim/main.ts: a store connection must not hold the process once the work is done.
    setTimeout(() => process.exit(code), 500).unref();
  });
