// The hook for a wiring stage (createRuntime, prestart): the same module as main.ts. It exists so
// that the dispatcher's import of it can be told apart in the bundle, where it loads hook.cjs with
// the code cache of that stage (scripts/bundle.mjs); compiled by tsc it is plain main.ts.
export * from './main.js';
