// Bundles tsrun's entry point into dist/bundle/ with esbuild. A cold Node process spends most of
// its start-up resolving and evaluating modules; one bundle with lazily loaded chunks (the hook,
// the CLI, the engine) cuts that to what each command needs. Native addons (koffi, netlink) stay
// external: they load their prebuilt binaries from node_modules.
import { build } from 'esbuild';
import { chmodSync } from 'node:fs';

await build({
  entryPoints: { tsrun: 'shim/main.ts' },
  outdir: 'dist/bundle',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['koffi', 'netlink', 'etcd3'],
  sourcemap: true,
  logLevel: 'warning',
  // CommonJS dependencies (pino, commander) call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __tsrunCreateRequire } from 'node:module'; const require = __tsrunCreateRequire(import.meta.url);" },
});
chmodSync('dist/bundle/tsrun.mjs', 0o755);
