// The front doors' V8 code caches (scripts/code-cache.cjs, made by npm run build) must be ones this
// Node accepts: a rejected cache is not an error (the bundle compiles as usual), only a silent
// loss of start-up time, so nothing else would notice. The hook's and the CNI plugin's are eager
// (every function compiled), the CLI's holds what a whole `run --net none` ran.
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';

const BUNDLE = path.join(process.cwd(), 'dist', 'bundle');
const Module = createRequire(import.meta.url)('node:module') as { wrap(source: string): string };

function cacheOf(door: string): { rejected: boolean | undefined; bytes: number } {
  const file = path.join(BUNDLE, `${door}.cjs`);
  const cache = readFileSync(`${file}.v8cache`);
  const nl = cache.indexOf(10);
  const script = new vm.Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file, cachedData: cache.subarray(nl + 1) });
  return { rejected: script.cachedDataRejected, bytes: cache.length - nl - 1 };
}

describe('code caches of the front doors', () => {
  it.each(['cli', 'hook', 'cni', 'runc'])('%s.cjs.v8cache is accepted by this Node', (door) => {
    expect(cacheOf(door).rejected).toBe(false);
  });

  it('the hook and the CNI plugin carry their whole bundle compiled', () => {
    // An eager cache is larger than its source; a lazy one is a fraction of it.
    for (const door of ['hook', 'cni']) expect(cacheOf(door).bytes).toBeGreaterThan(readFileSync(path.join(BUNDLE, `${door}.cjs`)).length);
  });
});
