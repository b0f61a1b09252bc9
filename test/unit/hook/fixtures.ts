// The recorded hook states (test/unit/hook/fixtures/*.json, see the README there). Tests run from
// dist/, so the directory is found from the project root.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../test/unit/hook/fixtures');

export interface Recording {
  file: string;
  /** The stage the recorder was registered for ("prestart-with-env" → prestart). */
  stage: string;
  state: Record<string, unknown>;
  text: string;
}

export function recordings(): Recording[] {
  return readdirSync(FIXTURE_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => {
      const rec = JSON.parse(readFileSync(path.join(FIXTURE_DIR, file), 'utf8')) as { stage: string; state: Record<string, unknown> };
      return { file, stage: rec.stage.replace(/-(with-env|annotation-match)$/, ''), state: rec.state, text: JSON.stringify(rec.state) };
    });
}

export function recording(file: string): Recording {
  const r = recordings().find((x) => x.file === file);
  if (!r) throw new Error(`no fixture ${file}`);
  return r;
}
