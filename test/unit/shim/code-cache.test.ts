// The front doors' V8 code caches (scripts/code-cache.cjs, made by npm run build) must be ones this
// Node accepts: a rejected cache is not an error (the bundle compiles as usual), only a silent
// loss of start-up time, so nothing else would notice. The hook's and the CNI plugin's are eager
// (every function compiled), the CLI's holds what a whole `run --net none` ran.
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';

const BUNDLE = path.join(process.cwd(), 'dist', 'bundle');
const Module = createRequire(import.meta.url)('node:module') as { wrap(source: string): string };

function cacheOf(door: string, cacheFile = `${door}.cjs.v8cache`): { rejected: boolean | undefined; bytes: number } {
  const file = path.join(BUNDLE, `${door}.cjs`);
  const cache = readFileSync(path.join(BUNDLE, cacheFile));
  const nl = cache.indexOf(10);
  const script = new vm.Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file, cachedData: cache.subarray(nl + 1) });
  return { rejected: script.cachedDataRejected, bytes: cache.length - nl - 1 };
}

describe('code caches of the front doors', () => {
  it.each(['cli', 'run', 'run-plain', 'run-detached', 'rm', 'rm-wired', 'hook', 'cni', 'cni-version', 'runc'])('%s.cjs.v8cache is accepted by this Node', (door) => {
    expect(cacheOf(door).rejected).toBe(false);
  });

  it.each(['run', 'cli'])("%s.cjs's second cache, for the engine's commands, is accepted and holds the whole bundle", (door) => {
    const wired = cacheOf(door, `${door}.cjs.wired.v8cache`);
    expect(wired.rejected).toBe(false);
    expect(wired.bytes).toBeGreaterThan(readFileSync(path.join(BUNDLE, `${door}.cjs`)).length);
  });

  it.each(['setup', 'teardown'])("hook.cjs's %s cache (the dispatcher's pick for a wiring stage) is accepted", (stage) => {
    expect(cacheOf('hook', `hook.cjs.${stage}.v8cache`).rejected).toBe(false);
  });

  it("the dispatcher's cache (dispatch.cjs.v8cache) passes the entry's header check, is accepted as the entry compiles it, and holds every function", () => {
    // dist/bundle/tsrun and tsrun.cjs compile dispatch.cjs with its #! line made a comment
    // (scripts/bundle.mjs).
    const file = path.join(BUNDLE, 'dispatch.cjs');
    const cache = readFileSync(`${file}.v8cache`);
    const nl = cache.indexOf(10);
    const st = statSync(file);
    expect(cache.subarray(0, nl).toString('latin1')).toBe(JSON.stringify({ size: st.size, mtimeMs: st.mtimeMs, node: process.version, arch: process.arch }));
    const source = readFileSync(file, 'utf8');
    expect(source.startsWith('#!')).toBe(true);
    const script = new vm.Script(Module.wrap(`//${source.slice(2)}`), { filename: file, cachedData: cache.subarray(nl + 1) });
    expect(script.cachedDataRejected).toBe(false);
    expect(cache.length - nl - 1).toBeGreaterThan(source.length);
  });

  it('the hook, the CNI plugin and rm carry their whole bundle compiled', () => {
    // An eager cache is larger than its source; a lazy one is a fraction of it.
    for (const door of ['hook', 'cni', 'cni-version', 'rm', 'rm-wired']) expect(cacheOf(door).bytes).toBeGreaterThan(readFileSync(path.join(BUNDLE, `${door}.cjs`)).length);
  });
});

// The dispatcher loads hook.cjs with the cache of the stage on the command line: createRuntime and
// prestart with the setup cache, poststop with the teardown cache, the other stages with the eager
// one (scripts/bundle.mjs). A state that is not there fails the stage after the door was loaded.
describe("the hook's code cache by stage", () => {
  it.each([
    ['createRuntime', 'hook.cjs.setup.v8cache'],
    ['prestart', 'hook.cjs.setup.v8cache'],
    ['poststop', 'hook.cjs.teardown.v8cache'],
    ['poststart', 'hook.cjs.v8cache'],
  ])('hook %s loads %s', (stage, cache) => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'tsrun-test-hook-cache-'));
    try {
      const out = path.join(root, 'read');
      const preload = path.join(root, 'preload.cjs');
      writeFileSync(preload, `const fs = require('node:fs'); const read = fs.readFileSync; const seen = []; fs.readFileSync = function (p, ...rest) { if (typeof p === 'string' && p.endsWith('.v8cache')) seen.push(require('node:path').basename(p)); return read.call(this, p, ...rest); }; process.on('exit', () => fs.writeFileSync(${JSON.stringify(out)}, seen.join(' ')));`);
      const r = spawnSync(process.execPath, ['-r', preload, path.join(BUNDLE, 'tsrun.cjs'), 'hook', stage], { encoding: 'utf8', input: '', env: { PATH: process.env.PATH, TSRUN_ROOT: root } });
      expect(r.status).toBe(1);
      expect(r.stderr).toBe(`tsrun: hook ${stage}: no state JSON on stdin: a runtime pipes the container state to its hooks\n`);
      expect(readFileSync(out, 'utf8').split(' ')).toEqual(['dispatch.cjs.v8cache', cache]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

// Loading a door's bundle evaluates its top level; Node built-ins beyond the bootstrap's reach the
// bundles through lazy stand-ins (scripts/bundle.mjs), so a top-level import of one costs nothing
// until it is used. Loading must not pull in the expensive ones. (The list is taken before
// process.stdout is first touched: that getter loads net and stream.)
describe('what loading a front door costs', () => {
  const EXPENSIVE = ['child_process', 'crypto', 'net', 'dgram', 'worker_threads', 'stream', 'perf_hooks', 'assert'];
  it.each(['cli', 'run', 'run-plain', 'run-detached', 'rm', 'rm-wired', 'hook', 'cni', 'cni-version'])('loading %s.cjs loads none of the expensive built-ins', (door) => {
    const loader = path.join(process.cwd(), 'scripts', 'code-cache.cjs');
    const code = `const before = new Set(process.moduleLoadList); require(${JSON.stringify(loader)}).load(${JSON.stringify(path.join(BUNDLE, `${door}.cjs`))}); const loaded = process.moduleLoadList.filter((m) => !before.has(m) && m.startsWith('NativeModule ')).map((m) => m.slice(13)); process.stdout.write(JSON.stringify(loaded));`;
    const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(r.stderr).toBe('');
    const loaded = JSON.parse(r.stdout) as string[];
    expect(loaded.filter((m) => EXPENSIVE.includes(m))).toEqual([]);
  });
});

// esbuild's __toESM (a default or namespace import of a CommonJS module: node:fs, node:path, the
// lazy stand-ins) copies every property of the module for each importing module; the build
// memoizes it per module (scripts/bundle.mjs). Its pattern is matched in esbuild's output: a new
// esbuild that writes it otherwise must not go unnoticed.
describe('the bundles share one namespace object per CommonJS module', () => {
  it.each(['dispatch', 'cli', 'run', 'run-plain', 'run-detached', 'rm', 'rm-wired', 'hook', 'cni', 'cni-version', 'runc', 'resolver', 'execa'])("%s.cjs's __toESM is memoized", (door) => {
    const src = readFileSync(path.join(BUNDLE, `${door}.cjs`), 'utf8');
    if (!src.includes('.__esModule?')) return; // no CommonJS module imported that way
    expect(src).toMatch(/=\(\(o,c\)=>\(t,e\)=>\{if\(t==null.*,new WeakMap\)/);
  });

  it('the memoized bundle works and its source map still points at the sources', () => {
    const file = path.join(BUNDLE, 'cni.cjs');
    const src = readFileSync(file, 'utf8');
    const { SourceMap } = createRequire(import.meta.url)('node:module') as { SourceMap: new (payload: unknown) => { findEntry(line: number, column: number): { originalSource?: string; originalLine?: number } } };
    const map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')));
    // The first function defined after the helper, on its line: where it maps must be a source
    // file that defines a function there (mappings moved with the code).
    const at = src.indexOf(',new WeakMap)');
    const fn = src.indexOf('function ', at);
    const line = src.slice(0, fn).split('\n').length - 1;
    const column = fn - (src.lastIndexOf('\n', fn - 1) + 1);
    const entry = map.findEntry(line, column);
    expect(entry.originalSource).toMatch(/\.ts$/);
    const original = readFileSync(path.resolve(path.dirname(file), entry.originalSource!), 'utf8').split('\n')[entry.originalLine!];
    expect(original).toMatch(/function /);
  });
});

// The loaders (the entry, and scripts/code-cache-load.cjs in dispatch.cjs and run-plain.cjs)
// compile a door with Node's ContextifyScript, the class vm.Script extends, where the build found
// this Node takes their arguments (scripts/bundle.mjs contextifyWorks): no node:vm to load and none
// of vm.Script's own JavaScript to compile in a cold process (~0.4 ms of `run --net none`).
describe('compiling a door from its code cache', () => {
  const ContextifyScript = (process as unknown as { binding(name: string): { ContextifyScript: new (...args: unknown[]) => { cachedDataRejected?: boolean; runInContext(...args: unknown[]): unknown } } }).binding('contextify').ContextifyScript;

  it('goes through ContextifyScript on this Node, in the entry and in the bundled loader', () => {
    for (const entry of ['tsrun', 'tsrun.cjs']) expect(readFileSync(path.join(BUNDLE, entry), 'utf8')).toContain('process.binding("contextify").ContextifyScript');
    for (const door of ['dispatch', 'run-plain']) expect(readFileSync(path.join(BUNDLE, `${door}.cjs`), 'utf8')).toContain('process.binding("contextify")');
  });

  it.each(['dispatch', 'run-plain', 'cli', 'run', 'hook', 'cni', 'rm'])('%s.cjs.v8cache is accepted as the loaders compile it, and gives the module wrapper', (door) => {
    const file = path.join(BUNDLE, `${door}.cjs`);
    const cache = readFileSync(`${file}.v8cache`);
    const nl = cache.indexOf(10);
    const source = readFileSync(file, 'utf8');
    const script = new ContextifyScript(Module.wrap(source.startsWith('#!') ? `//${source.slice(2)}` : source), file, 0, 0, cache.subarray(nl + 1), false, undefined, Symbol(file));
    expect(script.cachedDataRejected).toBe(false);
    expect(typeof script.runInContext(null, -1, true, false, false)).toBe('function');
  });

  it.each(['setup', 'teardown'])("hook.cjs's %s cache is accepted as the loaders compile it", (stage) => {
    const file = path.join(BUNDLE, 'hook.cjs');
    const cache = readFileSync(`${file}.${stage}.v8cache`);
    const nl = cache.indexOf(10);
    const script = new ContextifyScript(Module.wrap(readFileSync(file, 'utf8')), file, 0, 0, cache.subarray(nl + 1), false, undefined, Symbol(file));
    expect(script.cachedDataRejected).toBe(false);
  });

  it('falls back to vm.Script where process.binding is refused (the permission model), with the same outcome', () => {
    const entry = path.join(BUNDLE, 'tsrun.cjs');
    const env = { PATH: process.env.PATH };
    const plain = spawnSync(process.execPath, [entry, '--version'], { encoding: 'utf8', env });
    const refused = spawnSync(process.execPath, ['--experimental-permission', '--allow-fs-read=*', '--no-warnings', '-e', `try { process.binding('contextify'); process.stdout.write('allowed'); } catch (err) { process.stdout.write(err.code); }`], { encoding: 'utf8', env });
    expect(refused.stdout).toBe('ERR_ACCESS_DENIED');
    const fallback = spawnSync(process.execPath, ['--experimental-permission', '--allow-fs-read=*', '--no-warnings', entry, '--version'], { encoding: 'utf8', env });
    expect(plain.status).toBe(0);
    expect({ status: fallback.status, stdout: fallback.stdout }).toEqual({ status: 0, stdout: plain.stdout });
  });

  // Node wraps process.binding to print DEP0111 under pending deprecation (the flag, in NODE_OPTIONS
  // or on the command line, or NODE_PENDING_DEPRECATION=1): every command printed the warning.
  it.each([
    ['--pending-deprecation', { NODE_OPTIONS: '--pending-deprecation' }],
    ['NODE_PENDING_DEPRECATION=1', { NODE_PENDING_DEPRECATION: '1' }],
  ])('under %s: no deprecation warning, the same outcome (vm.Script)', (_what, extra) => {
    const env = { PATH: process.env.PATH, ...extra };
    const plain = spawnSync(path.join(BUNDLE, 'tsrun'), ['--version'], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(plain.status).toBe(0);
    for (const [file, args] of [[path.join(BUNDLE, 'tsrun'), ['--version']], [process.execPath, [path.join(BUNDLE, 'tsrun.cjs'), '--version']]] as const) {
      const r = spawnSync(file, args, { encoding: 'utf8', env });
      expect({ file, status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ file, status: 0, stdout: plain.stdout, stderr: '' });
    }
    // the bundled loader's own look (dispatch.cjs, run-plain.cjs): Node's process.binding or not
    const loader = path.join(process.cwd(), 'scripts', 'code-cache-load.cjs');
    const look = (e: NodeJS.ProcessEnv) => spawnSync(process.execPath, ['-e', `process.stdout.write(String(require(${JSON.stringify(loader)}).bindingQuiet()))`], { encoding: 'utf8', env: e }).stdout;
    expect([look({ PATH: process.env.PATH }), look(env)]).toEqual(['true', 'false']);
  });

  it('loads no built-in beyond the bootstrap\'s for the plain run door', () => {
    // The entry's own loading of run-plain.cjs, as for a guessed plain run, up to its start() (the
    // list taken before process.stdout is first touched: that getter loads net and stream).
    const entry = readFileSync(path.join(BUNDLE, 'tsrun.cjs'), 'utf8').replace(/^#!.*\n/, '').replace('if(p)x.start(a.slice(2))', '');
    const code = `const before = new Set(process.moduleLoadList); process.argv = [process.argv[0], ${JSON.stringify(path.join(BUNDLE, 'tsrun.cjs'))}, 'run', '--net', 'none', 'x']; ${entry}; const loaded = process.moduleLoadList.filter((m) => !before.has(m) && m.startsWith('NativeModule ')); process.stdout.write(JSON.stringify(loaded));`;
    const r = spawnSync(process.execPath, ['-e', `(function (__dirname) { ${code} })(${JSON.stringify(BUNDLE)})`], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual([]);
  });
});

describe("the loader's header check", () => {
  const { dataAfterHeader } = createRequire(import.meta.url)(path.join(process.cwd(), 'scripts', 'code-cache-load.cjs')) as { dataAfterHeader(cache: Buffer, expected: string): number };
  const expected = JSON.stringify({ size: 90122, mtimeMs: 1796016000000.5, node: 'v20.20.2', arch: 'x64' });

  it('finds the cache after a header line that is exactly the expected one', () => {
    expect(dataAfterHeader(Buffer.from(`${expected}\nDATA`), expected)).toBe(expected.length + 1);
  });

  it('refuses any other line: another value, more, less, no newline, nothing', () => {
    for (const line of [expected.replace('90122', '90123'), `${expected.slice(0, -1)},"x":1}`, expected.slice(0, -1), '']) expect(dataAfterHeader(Buffer.from(`${line}\nDATA`), expected)).toBe(-1);
    expect(dataAfterHeader(Buffer.from(expected), expected)).toBe(-1);
    expect(dataAfterHeader(Buffer.alloc(0), expected)).toBe(-1);
  });
});
