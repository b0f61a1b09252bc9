// The CLI for a command that runs the engine: the same module as cli.ts. It exists so that the
// entry's import of it can be told apart in the bundle, where it loads cli.cjs with its eager code
// cache (scripts/bundle.mjs); compiled by tsc it is plain cli.ts.
export * from './cli.js';
