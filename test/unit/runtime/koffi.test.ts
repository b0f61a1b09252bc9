import { describe, expect, it } from '@jest/globals';
import { createRequire } from 'node:module';
import path from 'node:path';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { dlopenOnce, loadKoffi, packageNodeModules, prebuilt } from '../../../runtime/koffi.js';

const fakeNative = { load: () => ({}), errno: () => 0, version: 'x' };

describe('prebuilt koffi', () => {
  it('requires the glibc build of the platform package on linux x64 and arm64', () => {
    const asked: string[] = [];
    const req = ((id: string) => (asked.push(id), fakeNative)) as unknown as NodeRequire;
    expect(prebuilt(req, 'linux', 'x64')).toBe(fakeNative);
    expect(prebuilt(req, 'linux', 'arm64')).toBe(fakeNative);
    expect(asked).toEqual(['@koromix/koffi-linux-x64/linux_x64/koffi.node', '@koromix/koffi-linux-arm64/linux_arm64/koffi.node']);
  });

  it('from a bundle, opens the package\'s own node_modules by path first (no resolver), then asks the resolver', () => {
    const asked: string[] = [];
    const req = ((id: string) => (asked.push(`require ${id}`), fakeNative)) as unknown as NodeRequire;
    const open = (file: string) => {
      asked.push(`open ${file}`);
      throw new Error(`${file}: cannot open shared object file: No such file or directory`);
    };
    expect(prebuilt(req, 'linux', 'x64', '/opt/tsrun/node_modules', open)).toBe(fakeNative);
    expect(asked).toEqual(['open /opt/tsrun/node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node', 'require @koromix/koffi-linux-x64/linux_x64/koffi.node']);
    // Found by path: the resolver is not asked.
    asked.length = 0;
    expect(prebuilt(req, 'linux', 'x64', '/opt/tsrun/node_modules', (file) => (asked.push(`open ${file}`), fakeNative))).toBe(fakeNative);
    expect(asked).toEqual(['open /opt/tsrun/node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node']);
    // This checkout's, by path: a koffi that calls into libc.
    const byPath = prebuilt(createRequire(import.meta.url), process.platform, process.arch, path.join(process.cwd(), 'node_modules'));
    if (byPath) expect((byPath.load('libc.so.6').func('int getpid()') as unknown as () => number)()).toBe(process.pid);
  });

  it('opens a native module by path once per process, and says when it cannot', () => {
    const file = path.join(process.cwd(), 'node_modules', `@koromix/koffi-linux-${process.arch}/linux_${process.arch}/koffi.node`);
    if (process.platform === 'linux' && existsSync(file)) {
      const first = dlopenOnce(file) as { load: (lib: string) => { func: (p: string) => () => number } };
      expect(dlopenOnce(file)).toBe(first);
      expect(first.load('libc.so.6').func('int getpid()')()).toBe(process.pid);
    }
    expect(() => dlopenOnce('/nonexistent/tsrun-test/koffi.node')).toThrow(/cannot open|No such file/);
  });

  it('takes a node_modules by path only for a bundle in the package\'s dist/bundle, never an ancestor\'s beyond it', () => {
    expect(packageNodeModules('/usr/lib/node_modules/tsrun/dist/bundle')).toBe('/usr/lib/node_modules/tsrun/node_modules');
    expect(packageNodeModules(path.join(process.cwd(), 'dist', 'bundle'))).toBe(path.join(process.cwd(), 'node_modules'));
    // A bundle copied elsewhere: ../../node_modules would be /tmp/node_modules, which any local user
    // can fill, tried before the bundle's own /tmp/x/node_modules that the resolver finds first.
    expect(packageNodeModules('/tmp/x/bundle')).toBeUndefined();
    expect(packageNodeModules('/opt/tsrun')).toBeUndefined();
    expect(packageNodeModules('/srv/app/dist/other')).toBeUndefined();
  });

  it('leaves every other case to koffi\'s own loader', () => {
    const req = (() => fakeNative) as unknown as NodeRequire;
    expect(prebuilt(req, 'darwin', 'x64')).toBeUndefined();
    expect(prebuilt(req, 'linux', 'arm')).toBeUndefined();
    const throwing = (() => {
      throw new Error('Error relocating koffi.node: symbol not found'); // a glibc build on musl
    }) as unknown as NodeRequire;
    expect(prebuilt(throwing, 'linux', 'x64')).toBeUndefined();
    const notKoffi = (() => ({ version: '1' })) as unknown as NodeRequire;
    expect(prebuilt(notKoffi, 'linux', 'x64')).toBeUndefined();
  });

  it('loads a koffi that calls into libc, the same module on every call', () => {
    const koffi = loadKoffi();
    expect(loadKoffi()).toBe(koffi);
    const getpid = koffi.load('libc.so.6').func('int getpid()') as unknown as () => number;
    expect(getpid()).toBe(process.pid);
    // On this machine (glibc, x64 or arm64) that is the prebuilt module itself, not koffi's wrapper.
    const native = prebuilt(createRequire(import.meta.url));
    if (native) expect(koffi).toBe(native);
  });
});

describe('exitFast', () => {
  it('leaves a profile asked for (--cpu-prof) to Node\'s own exit, which writes it', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-exitfast-'));
    try {
      const mod = path.join(process.cwd(), 'dist', 'runtime', 'koffi.js');
      // After the module's evaluation: while a top-level await runs, Node listens for 'exit' itself
      // (and exitFast leaves the exit to Node for that alone).
      const code = `const k = await import(${JSON.stringify(mod)}); k.loadKoffi(); setTimeout(() => { k.exitFast(7); process.exit(9); }, 0);`;
      const run = (flags: string[]) => spawnSync(process.execPath, [...flags, '--input-type=module', '-e', code], { encoding: 'utf8' });
      const profiled = run(['--cpu-prof', `--cpu-prof-dir=${dir}`]);
      expect(profiled.status).toBe(9);
      expect(readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))).toHaveLength(1);
      // Without a profile, _exit with exitFast's status (Node's exit would have been 9).
      expect(run([]).status).toBe(7);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
