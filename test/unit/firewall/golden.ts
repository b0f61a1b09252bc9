// Golden files: generated nft JSON pinned in test/unit/firewall/golden/. Rewritten only when
// UPDATE_GOLDEN=1, then reviewed as a diff. Tests run from dist/, so the directory is found from
// the project root (jest's working directory), not from this file.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from '@jest/globals';

export const GOLDEN_DIR = path.join(process.cwd(), 'test', 'unit', 'firewall', 'golden');

export function expectGolden(name: string, value: unknown): void {
  const file = path.join(GOLDEN_DIR, `${name}.json`);
  const text = `${JSON.stringify(value, null, 2)}\n`;
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(GOLDEN_DIR, { recursive: true });
    writeFileSync(file, text);
    return;
  }
  if (!existsSync(file)) throw new Error(`golden file ${file} is missing: run the tests once with UPDATE_GOLDEN=1 and review it`);
  expect(JSON.parse(text)).toEqual(JSON.parse(readFileSync(file, 'utf8')));
}
