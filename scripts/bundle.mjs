// Bundles tsrun with esbuild into CommonJS files under dist/bundle/. A cold Node process spends
// much of its start-up compiling and evaluating modules, so:
//  - one file per front door, loaded with a synchronous require (which also skips the ESM
//    loader's ~6 ms of set-up);
//  - execa and its dependencies (~115 KB, ~5 ms to compile) live in a file of their own that is
//    required only when tsrun first runs a program other than runc;
//  - native addons (koffi, netlink) and etcd3 stay external: they load from node_modules, and
//    only on the paths that use them.
import { build } from 'esbuild';
import { chmodSync, rmSync } from 'node:fs';

rmSync('dist/bundle', { recursive: true, force: true });
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
  define: { 'import.meta.url': '__tsrunImportMetaUrl' },
  banner: { js: "const __tsrunImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
};

/** `import('execa')` in tsrun's code becomes `require('./execa.cjs')`, a sibling bundle. */
const lazyExeca = {
  name: 'lazy-execa',
  setup(b) {
    b.onResolve({ filter: /^execa$/ }, () => ({ path: './execa.cjs', external: true }));
  },
};

await build({ ...common, entryPoints: { tsrun: 'shim/main.ts' }, outdir: 'dist/bundle', outExtension: { '.js': '.cjs' }, plugins: [lazyExeca] });
await build({ ...common, stdin: { contents: "export * from 'execa';", resolveDir: '.', loader: 'js' }, outfile: 'dist/bundle/execa.cjs' });
chmodSync('dist/bundle/tsrun.cjs', 0o755);
