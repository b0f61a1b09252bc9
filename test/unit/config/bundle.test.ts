import { afterAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../../../config/errors.js';
import { loadBundleConfig, readBundleJson } from '../../../config/bundle.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-i17-bundle-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const spec = { ociVersion: '1.0.2', process: { args: ['sh'], cwd: '/' }, root: { path: 'rootfs' }, 'x-unknown': { kept: true } };

function bundleWith(name: string, config: string | undefined): string {
  const b = path.join(dir, name);
  mkdirSync(b, { recursive: true });
  if (config !== undefined) writeFileSync(path.join(b, 'config.json'), config);
  return b;
}

describe('the one bundle loader', () => {
  it('reads, parses and validates, keeping every field of the document', () => {
    const b = bundleWith('good', JSON.stringify(spec));
    const loaded = loadBundleConfig(b);
    expect(loaded).toMatchObject({ dir: b, file: path.join(b, 'config.json') });
    expect(loaded.spec.process.args).toEqual(['sh']);
    expect(loaded.raw['x-unknown']).toEqual({ kept: true });
  });

  it.each([
    ['a missing bundle', () => path.join(dir, 'absent'), /^bundle .*absent: config\.json not found$/],
    ['a missing config.json', () => bundleWith('empty', undefined), /^bundle .*empty: config\.json not found$/],
    ['bad JSON', () => bundleWith('bad', '{'), /^bundle .*bad: config\.json is not valid JSON: /],
    ['a bad field', () => bundleWith('field', JSON.stringify({ ...spec, process: { args: ['sh'], cwd: 'rel' } })), /^bundle .*field: config\.json: process\.cwd: must be an absolute path$/],
  ])('refuses %s in one line naming the bundle', (_what, make, message) => {
    const b = make();
    expect(() => loadBundleConfig(b)).toThrow(UserError);
    expect(() => loadBundleConfig(b)).toThrow(message);
  });

  it('refuses a FIFO or a directory instead of hanging on it', () => {
    const fifo = bundleWith('fifo', undefined);
    execFileSync('mkfifo', [path.join(fifo, 'config.json')]);
    expect(() => readBundleJson(fifo)).toThrow(/config\.json is not a regular file$/);
    const d = bundleWith('dir', undefined);
    mkdirSync(path.join(d, 'config.json'));
    expect(() => readBundleJson(d)).toThrow(/config\.json is not a regular file$/);
  });

  it('gives undefined for a bundle that is gone when asked to', () => {
    expect(readBundleJson(path.join(dir, 'gone'), { missingOk: true })).toBeUndefined();
  });
});
