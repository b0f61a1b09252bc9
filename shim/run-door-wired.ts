// The run door for a command line that wires a network: the same module as run-door.ts. It exists
// so that the entry's import of it can be told apart in the bundle, where it loads run.cjs with
// its eager code cache (scripts/bundle.mjs); compiled by tsc it is plain run-door.ts.
export * from './run-door.js';
