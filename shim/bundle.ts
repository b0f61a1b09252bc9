// Loading a user's OCI bundle: the directory, its config.json (parsed and validated, errors name
// the field), and its root filesystem.
import { readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { SpecSchema, type Spec } from '../config/oci.js';
import { UserError } from '../config/errors.js';
import { parseOrThrow } from '../config/validate.js';

export interface Bundle {
  dir: string;
  spec: Spec;
  rootfs: string;
}

export function loadBundle(dirArg: string): Bundle {
  const dir = path.resolve(dirArg);
  if (!isDirectory(dir)) throw new UserError(`bundle ${dirArg}: no such directory`);
  const configPath = path.join(dir, 'config.json');
  let text: string;
  try {
    text = readFileSync(configPath, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `bundle ${dirArg}: config.json not found` : `bundle ${dirArg}: cannot read config.json (${code})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UserError(`bundle ${dirArg}: config.json is not valid JSON: ${(err as Error).message}`);
  }
  const spec = parseOrThrow(SpecSchema, json, `bundle ${dirArg}: config.json`);
  const rootfs = path.resolve(dir, spec.root.path);
  if (!isDirectory(rootfs)) throw new UserError(`bundle ${dirArg}: root.path ${JSON.stringify(spec.root.path)}: no such directory`);
  return { dir, spec, rootfs: realpathSync(rootfs) };
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
