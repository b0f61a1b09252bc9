// `tsrun hook install|uninstall` (a hooks.d directory for podman and CRI-O) and
// `tsrun spec add-hooks` (a bundle's config.json for plain runc). `tsrun hook <stage>` itself
// never comes here: shim/main.ts sends it straight to hook/main.ts without loading the CLI.
// `hook <stage>` is declared here too, for `tsrun --help` and for global flags written before it
// (`tsrun --root DIR hook createRuntime`), which shim/main.ts leaves to the CLI.
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import type { Settings } from '../config/settings.js';
import type { Logger } from '../runtime/log.js';
import type { HookCommand, RecordedSettings } from '../hook/register.js';

type Setup = (cmd: Command) => { settings: Settings; log: Logger };
type OnExitCode = (code: number) => void;
const collect = (value: string, previous: string[]) => [...previous, value];

/** The settings a registration records, and the absolute paths of node and tsrun's entry. */
async function commandFor(cmd: Command, settings: Settings, timeout: string | undefined): Promise<HookCommand> {
  const { hookCommand, hookRunner, DEFAULT_TIMEOUT_S } = await import('../hook/register.js');
  const { resolveBinary } = await import('../runtime/binaries.js');
  const root = (cmd.optsWithGlobals() as { root?: string }).root ?? nonEmpty(process.env.TSRUN_ROOT);
  const recorded: RecordedSettings = {
    root: root === undefined ? undefined : path.resolve(root),
    store: settings.store,
    logFile: settings.logFile,
    logLevel: settings.logLevel,
    nft: resolveBinary(settings.nft),
  };
  if (timeout !== undefined && !/^\d{1,4}$/.test(timeout)) {
    const { UserError } = await import('../config/errors.js');
    throw new UserError(`invalid --timeout ${JSON.stringify(timeout)}: use 1-3600 seconds`);
  }
  const seconds = timeout === undefined ? DEFAULT_TIMEOUT_S : Number(timeout);
  const self = hookRunner(realpathSync(process.execPath), entryPoint());
  return hookCommand(self.node, self.entry, recorded, seconds);
}

/** tsrun's entry point as this process was started (npm's bin link resolved). */
function entryPoint(): string {
  return realpathSync(path.resolve(process.argv[1] ?? ''));
}

export function hookCommands(setup: Setup, onExitCode: OnExitCode): Command[] {
  const hook = new Command('hook')
    .description('the OCI hook: runtimes run `tsrun hook <stage>` with the container state on stdin; install registers it')
    .argument('[stage]', 'prestart | createRuntime | createContainer | startContainer | poststart | poststop')
    .action(async (stage: string | undefined, _f: unknown, cmd: Command) => {
      if (stage === undefined) {
        const { UserError } = await import('../config/errors.js');
        throw new UserError('tsrun hook needs a stage (runtimes run `tsrun hook createRuntime` and `tsrun hook poststop`), or install|uninstall');
      }
      const g = cmd.optsWithGlobals() as { root?: string; store?: string; log?: string; logLevel?: string; debug?: boolean };
      const { hookMain } = await import('../hook/main.js');
      onExitCode(await hookMain(stage, { overrides: { root: g.root, store: g.store, log: g.log, logLevel: g.logLevel, debug: g.debug } }));
    });

  hook
    .command('install')
    .description('write hooks.d files (podman --hooks-dir, containers.conf hooks_dir, CRI-O hooks_dir) that run tsrun\'s hook')
    .requiredOption('--hooks-dir <dir>', 'the hooks.d directory')
    .option('--annotation <KEY=REGEX>', 'only for containers with annotation KEY matching REGEX (repeatable; all must match)', collect, [])
    .option('--stages <list>', 'comma-separated stages', 'createRuntime,poststop')
    .option('--name <name>', 'file name prefix: <name>-<stage>.json', 'tsrun')
    .option('--timeout <seconds>', 'seconds before the runtime kills the hook')
    .action(async (f: { hooksDir: string; annotation: string[]; stages: string; name: string; timeout?: string }, cmd: Command) => {
      const { settings } = setup(cmd);
      const reg = await import('../hook/register.js');
      const stages = reg.parseStages(f.stages);
      const conditions = reg.parseAnnotationConditions(f.annotation);
      const written = reg.installHooksDir(f.hooksDir, { name: f.name, stages, cmd: await commandFor(cmd, settings, f.timeout), conditions });
      for (const file of written) process.stdout.write(`${file}\n`);
    });

  hook
    .command('uninstall')
    .description('remove the hooks.d files written by install')
    .requiredOption('--hooks-dir <dir>', 'the hooks.d directory')
    .option('--name <name>', 'file name prefix given to install', 'tsrun')
    .action(async (f: { hooksDir: string; name: string }) => {
      const { uninstallHooksDir } = await import('../hook/register.js');
      for (const file of uninstallHooksDir(f.hooksDir, f.name)) process.stdout.write(`${file}\n`);
    });

  const spec = new Command('spec').description('edit OCI bundles');
  spec
    .command('add-hooks')
    .description("add tsrun's hooks (network setup and poststop teardown) to a bundle's config.json, for runc users")
    .argument('<bundle>', 'directory holding config.json')
    .option('--stage <stage>', 'setup stage: createRuntime, or prestart for runtimes older than runtime-spec 1.0.2', 'createRuntime')
    .option('--timeout <seconds>', 'seconds before the runtime kills the hook')
    .action(async (bundle: string, f: { stage: string; timeout?: string }, cmd: Command) => {
      const { settings } = setup(cmd);
      const reg = await import('../hook/register.js');
      const { UserError } = await import('../config/errors.js');
      if (!reg.SETUP_STAGES.includes(f.stage as never)) throw new UserError(`invalid --stage ${JSON.stringify(f.stage)}: use createRuntime or prestart`);
      const file = reg.addHooksToBundle(bundle, await commandFor(cmd, settings, f.timeout), f.stage as (typeof reg.SETUP_STAGES)[number]);
      process.stdout.write(`${file}\n`);
    });

  return [hook, spec];
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}
