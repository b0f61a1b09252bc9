// Loading a user's OCI bundle for `tsrun run`: the directory, its config.json (config/bundle.ts:
// parsed and validated, errors name the field), and its root filesystem.
import { realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { loadBundleConfig } from '../config/bundle.js';
import type { Spec } from '../config/oci.js';
import { UserError } from '../config/errors.js';

export interface Bundle {
  dir: string;
  spec: Spec;
  rootfs: string;
}

export function loadBundle(dirArg: string): Bundle {
  const dir = path.resolve(dirArg);
  if (!isDirectory(dir)) throw new UserError(`bundle ${dirArg}: no such directory`);
  const { spec } = loadBundleConfig(dirArg);
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
