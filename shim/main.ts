#!/usr/bin/env node
// tsrun's entry point. It loads only what the command needs: the hook is a cold process on every
// container start, so it never pays for the CLI, and the CLI never pays for the hook. A
// `tsrun run` (foreground or -d) whose command line shim/run-args.ts can read goes to its own door
// (shim/run-door.ts, or shim/run-door-plain.ts for --net none and host), which loads neither
// commander nor the other commands; any other command line goes to the CLI. The routing is
// shim/dispatch.ts, which run-plain.cjs carries too (the entry loads that script alone for what it
// guesses is a plain run: scripts/bundle.mjs).
import { dispatch } from './dispatch.js';

const entryMs = performance.now();

dispatch(process.argv.slice(2), (run) => import('./run-door-plain.js').then((d) => d.door(run)), entryMs);
