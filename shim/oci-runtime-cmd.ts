// `tsrun oci-runtime install --path FILE` writes the executable an engine registers as its
// runtime: a two-line wrapper that fixes tsrun's settings (state root, store, log, the runc, nft
// and node binaries) and execs tsrun-runc. Engines start their runtime with an environment of
// their own (conmon's, a containerd shim's), so, as with the hook's registration, what the
// runtime must use is recorded rather than inherited. `uninstall` removes such a file.
import { chmodSync, readFileSync, realpathSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import type { Settings } from '../config/settings.js';
import type { Logger } from '../runtime/log.js';

type Setup = (cmd: Command) => { settings: Settings; log: Logger };
const MARK = '# written by tsrun oci-runtime install';

/** A word for sh, single-quoted. */
function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function wrapperScript(front: string, env: string[]): string {
  const lines = ['#!/bin/sh', MARK, '# tsrun-runc with these settings (docs/oci-runtime.md)'];
  for (const kv of env) {
    const eq = kv.indexOf('=');
    lines.push(`${kv.slice(0, eq)}=${shQuote(kv.slice(eq + 1))}; export ${kv.slice(0, eq)}`);
  }
  lines.push(`exec ${shQuote(front)} "$@"`, '');
  return lines.join('\n');
}

export function ociRuntimeCommand(setup: Setup): Command {
  const c = new Command('oci-runtime').description('register tsrun-runc with an engine (podman, containerd, Docker): see docs/oci-runtime.md');
  c.command('install')
    .description('write an executable that runs tsrun-runc with the current settings, for an engine to use as its runtime')
    .requiredOption('--path <file>', 'where to write it, e.g. /usr/local/bin/tsrun-runc')
    .option('--runc <path>', 'the runc tsrun-runc runs (default: runc on PATH)', 'runc')
    .option('--env-keys', "also read tsrun's keys from the container's environment when it has no tsrun annotation (Docker before 24); the image's ENV can then set them too")
    .action(async (f: { path: string; runc: string; envKeys?: boolean }, cmd: Command) => {
      const { settings } = setup(cmd);
      const { hookEnv } = await import('../hook/register.js');
      const { resolveBinary } = await import('../runtime/binaries.js');
      const root = (cmd.optsWithGlobals() as { root?: string }).root ?? (process.env.TSRUN_ROOT || undefined);
      const env = [
        ...hookEnv({ root: root === undefined ? undefined : path.resolve(root), store: settings.store, logFile: settings.logFile, logLevel: settings.logLevel, nft: resolveBinary(settings.nft) }),
        `TSRUN_RUNC=${resolveBinary(f.runc)}`,
        `TSRUN_NODE=${realpathSync(process.execPath)}`,
        ...(f.envKeys ? ['TSRUN_RUNC_ENV_KEYS=1'] : []),
      ];
      const front = path.join(path.dirname(realpathSync(path.resolve(process.argv[1] ?? ''))), 'tsrun-runc');
      const file = path.resolve(f.path);
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, wrapperScript(front, env), { mode: 0o755 });
      chmodSync(tmp, 0o755);
      renameSync(tmp, file);
      process.stdout.write(`${file}\n`);
    });
  c.command('uninstall')
    .description('remove a file written by install (anything else is left alone)')
    .requiredOption('--path <file>', 'the file install wrote')
    .action(async (f: { path: string }) => {
      const file = path.resolve(f.path);
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        return; // already gone
      }
      if (!text.split('\n').includes(MARK)) {
        const { UserError } = await import('../config/errors.js');
        throw new UserError(`${file} was not written by tsrun oci-runtime install: left alone`);
      }
      unlinkSync(file);
    });
  return c;
}
