// The detached-container verbs: create, start, ps, logs, exec, stop, kill, pause, unpause, wait,
// rm, inspect, restart, and `cleanup` (conmon's exit command). `run -d` is `run` with a flag
// (shim/cli.ts hands it to runDetached). Each action loads its module only when it runs.
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Settings } from '../../config/settings.js';
import { UserError } from '../../config/errors.js';
import type { Logger } from '../../runtime/log.js';
import type { RunOptions } from '../run.js';
import { addDetachOnlyOptions, detachOptionsOf } from './detach-options.js';
import { runDetached, runDetachedCmd } from './run-detached.js';

export { runDetached, runDetachedCmd };

type Setup = (cmd: Command) => { settings: Settings; log: Logger };
type OnExitCode = (code: number) => void;
type Normalize = (bundle: string, command: string[], flags: Record<string, unknown>) => RunOptions;
const collect = (value: string, previous: string[]) => [...previous, value];

export interface LifecycleDeps {
  setup: Setup;
  onExitCode: OnExitCode;
  /** `run`, whose options (network, limits, env, -t, -i…) `create` takes too. */
  runCommand: Command;
  normalizeRunOptions: Normalize;
}

const out = (s: string) => process.stdout.write(s);

async function wiring() {
  return (await import('../network-wiring.js')).shimNetworkWiring;
}

function positiveSeconds(flag: string, s: string): number {
  if (!/^\d{1,6}$/.test(s)) throw new UserError(`invalid ${flag} ${JSON.stringify(s)}: use a whole number of seconds`);
  return Number(s);
}

export function lifecycleCommands(deps: LifecycleDeps): Command[] {
  const { setup, onExitCode } = deps;
  const cmds: Command[] = [];
  const add = (c: Command) => {
    cmds.push(c);
    return c;
  };

  addDetachOnlyOptions(deps.runCommand);
  const create = add(new Command('create'))
    .description('create a container under conmon without starting it (tsrun start ID starts it)')
    .argument('<bundle>', 'directory holding config.json and the root filesystem')
    .argument('[command...]', 'program and arguments (after --)');
  for (const opt of deps.runCommand.options) if (opt.long !== '--detach') create.addOption(opt);
  create.action(async (bundle: string, command: string[], f: Record<string, unknown>, cmd: Command) => {
    const { settings, log } = setup(cmd);
    const o = deps.normalizeRunOptions(bundle, command, f);
    const d = detachOptionsOf(f);
    const { createDetached } = await import('./create.js');
    out(`${await createDetached(o, d, settings, log, await wiring())}\n`);
  });

  add(new Command('start'))
    .description('start created containers')
    .argument('<id...>')
    .action(async (names: string[], _f: unknown, cmd: Command) => {
      const { settings } = setup(cmd);
      const missing: string[] = [];
      const ids = await detachedIds(settings, names, 'start', missing);
      const { startCreated } = await import('./create.js');
      for (const id of ids) {
        await startCreated(id, settings);
        out(`${id}\n`);
      }
      await reportMissing(missing);
    });

  add(new Command('ps'))
    .description('list containers (running ones; -a: all)')
    .option('-a, --all', 'also created and exited containers')
    .option('-q, --quiet', 'only the ids')
    .addOption(new Option('--format <format>', 'table or json').choices(['table', 'json']).default('table'))
    .action(async (f: { all?: boolean; quiet?: boolean; format: string }, cmd: Command) => {
      const { settings, log } = setup(cmd);
      const { listContainers, formatTable } = await import('./ps.js');
      const entries = await listContainers(settings, log, f.all === true);
      if (f.quiet) out(entries.map((e) => `${e.id}\n`).join(''));
      else if (f.format === 'json') out(`${JSON.stringify(entries, null, 2)}\n`);
      else out(formatTable(entries));
    });

  add(new Command('logs'))
    .description('print a detached container output (stdout and stderr), also after it exited')
    .argument('<id>')
    .option('-f, --follow', 'keep printing new output until the container ends')
    .option('--tail <n>', 'only the last N lines')
    .option('-t, --timestamps', 'prefix each line with its time')
    .action(async (name: string, f: { follow?: boolean; tail?: string; timestamps?: boolean }, cmd: Command) => {
      const { settings } = setup(cmd);
      if (f.tail !== undefined && !/^\d{1,9}$/.test(f.tail)) throw new UserError(`invalid --tail ${JSON.stringify(f.tail)}: use a number of lines`);
      const [id] = await detachedIds(settings, [name], 'logs');
      const { printLogs } = await import('./logs.js');
      const { pathsOf } = await import('./record.js');
      const { currentView, hasEnded } = await import('./signals.js');
      const view = await currentView(settings, id!);
      await printLogs(pathsOf(settings.runDir, id!).log, {
        follow: f.follow === true,
        tail: f.tail === undefined ? undefined : Number(f.tail),
        timestamps: f.timestamps === true,
        ended: () => hasEnded(settings, view),
      });
    });

  add(new Command('exec'))
    .description('run a command in a running container (runc exec); its exit status is returned')
    .argument('<id>')
    .argument('<command...>', 'program and arguments')
    .option('-i, --interactive', 'pass stdin to the process')
    .option('-t, --tty', 'give the process a pseudo-terminal')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect, [])
    .option('--env-file <file>', "read environment variables from FILE, as run's --env-file (repeatable)", collect, [])
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user[:group]>', "run as this user (default: the container's): a uid or a name from the container's /etc/passwd, and a gid or group name")
    .action(async (name: string, command: string[], f: { interactive?: boolean; tty?: boolean; env: string[]; envFile: string[]; workdir?: string; user?: string }, cmd: Command) => {
      const { settings } = setup(cmd);
      const { checkUserSpec, envFiles, envFlags } = await import('../run-options.js');
      const env = [...envFiles(f.envFile), ...envFlags(f.env)];
      if (f.user !== undefined) checkUserSpec(f.user);
      if (f.workdir !== undefined && !f.workdir.startsWith('/')) throw new UserError(`invalid --workdir ${JSON.stringify(f.workdir)}: must be an absolute path`);
      const { resolveId } = await import('./resolve.js');
      const id = resolveId(settings.runDir, name);
      const { currentView } = await import('./signals.js');
      const v = await currentView(settings, id);
      if (v.status !== 'running') throw new UserError(`container ${id} is not running (${describe(v.status, v.exitCode)})`);
      const { execInContainer } = await import('./exec.js');
      const { runcPaths } = await import('../run.js');
      const { pathsOf } = await import('./record.js');
      const stateDir = pathsOf(settings.runDir, id).dir;
      // Names are looked up in the root filesystem the container runs (its spec's root.path).
      const user = f.user === undefined ? undefined : (await import('../user.js')).resolveUser(containerRootfs(stateDir, id), f.user);
      onExitCode(await execInContainer(runcPaths(settings), { id, args: command, env, cwd: f.workdir, tty: f.tty === true, interactive: f.interactive === true, stateDir, user }));
    });

  add(new Command('stop'))
    .description('stop containers: their stop signal (SIGTERM), then SIGKILL after the timeout')
    .argument('<id...>')
    .option('-t, --time <seconds>', "seconds to wait before SIGKILL (default: the container's --stop-timeout, else 10)")
    .action(async (names: string[], f: { time?: string }, cmd: Command) => {
      const { settings, log } = setup(cmd);
      const timeout = f.time === undefined ? undefined : positiveSeconds('--time', f.time);
      // An ended container is already stopped: docker and podman print its id and exit 0, so a
      // script's `stop x; rm x` works whether or not x ended on its own first.
      // A name that matches no container does not keep the others running (docker's: each
      // named on stderr afterwards, exit 1).
      const missing: string[] = [];
      const views = await liveViews(settings, names, 'stopped', true, missing);
      const { isLive, stopContainer } = await import('./signals.js');
      const network = await wiring();
      await Promise.all(views.filter(isLive).map((v) => stopContainer(settings, log, network, v, timeout)));
      out(views.map((v) => `${v.id}\n`).join(''));
      await reportMissing(missing);
    });

  add(new Command('kill'))
    .description('send a signal to containers (default SIGKILL)')
    .argument('<id...>')
    .option('-s, --signal <signal>', 'signal name or number', 'KILL')
    .action(async (names: string[], f: { signal: string }, cmd: Command) => {
      const { settings } = setup(cmd);
      const { parseSignal, runcKill } = await import('./signals.js');
      const signal = parseSignal(f.signal);
      const missing: string[] = [];
      const views = await liveViews(settings, names, 'killed', false, missing);
      const { runcPaths } = await import('../run.js');
      const { resumeAfterSignal } = await import('./pause.js');
      for (const v of views) {
        await runcKill(runcPaths(settings), v.id, signal);
        // SIGKILL must end a paused container; other signals wait, pending, until unpause.
        if (signal === 'SIGKILL') await resumeAfterSignal(runcPaths(settings), v);
      }
      out(views.map((v) => `${v.id}\n`).join(''));
      await reportMissing(missing);
    });

  for (const [verb, runcVerb, what] of [['pause', 'pause', 'freeze'], ['unpause', 'resume', 'thaw']] as const) {
    add(new Command(verb))
      .description(`${what} every process of running containers (runc ${runcVerb})`)
      .argument('<id...>')
      .action(async (names: string[], _f: unknown, cmd: Command) => {
        const { settings } = setup(cmd);
        const { resolveIds } = await import('./resolve.js');
        const { currentView } = await import('./signals.js');
        const missing: string[] = [];
        const views = await Promise.all(resolveIds(settings.runDir, names, missing).map((id) => currentView(settings, id)));
        const { pauseContainers } = await import('./pause.js');
        await pauseContainers(settings, views, runcVerb);
        out(views.map((v) => `${v.id}\n`).join(''));
        await reportMissing(missing);
      });
  }

  add(new Command('wait'))
    .description('wait until containers end; print their exit codes')
    .argument('<id...>')
    .action(async (names: string[], _f: unknown, cmd: Command) => {
      const { settings } = setup(cmd);
      const missing: string[] = [];
      const ids = await detachedIds(settings, names, 'wait', missing);
      const { currentView, waitEnded } = await import('./signals.js');
      const { readExitFile, pathsOf, readLifecycle, readKeptExitCode } = await import('./record.js');
      for (const id of ids) {
        // The instance named now is the one waited for: removed meanwhile (--rm, rm -f), its code
        // is kept for this wait; a container of the same name created since is another one.
        const instance = readLifecycle(settings.runDir, id)?.instance;
        const kept = () => (instance === undefined ? undefined : readKeptExitCode(settings.runDir, id, instance));
        let view;
        try {
          view = await currentView(settings, id);
        } catch (err) {
          if (kept() === undefined) throw err;
        }
        if (view) await waitEnded(settings, view, Number.MAX_SAFE_INTEGER, 20, instance);
        const l = readLifecycle(settings.runDir, id);
        const same = l !== undefined && (instance === undefined || l.instance === instance);
        const code = (same ? (readExitFile(pathsOf(settings.runDir, id))?.code ?? l.exitCode) : undefined) ?? kept();
        out(`${code ?? -1}\n`);
      }
      await reportMissing(missing);
    });

  add(new Command('rm'))
    .description('remove detached containers (-f: stop running ones first, with SIGKILL)')
    .argument('<id...>')
    .option('-f, --force', 'kill and remove running containers')
    .action(async (names: string[], f: { force?: boolean }, cmd: Command) => {
      const { settings, log } = setup(cmd);
      const { missingError, removalViews, removeAll, removeOrphan } = await import('./signals.js');
      const missing: string[] = [];
      const orphans: string[] = [];
      const views = await removalViews(settings, names, f.force === true, missing, orphans);
      const ids = await removeAll(settings, log, await wiring(), views);
      for (const id of orphans) await removeOrphan(settings, log, await wiring(), id);
      out(`${[...ids, ...orphans].map((id) => `${id}\n`).join('')}`);
      if (missing.length > 0) throw missingError(missing);
    });

  add(new Command('inspect'))
    .description('show a container as JSON: config, state, pid, exit code, times, network endpoints, log path')
    .argument('<id...>')
    .action(async (names: string[], _f: unknown, cmd: Command) => {
      const { settings, log } = setup(cmd);
      const { resolveIds } = await import('./resolve.js');
      const missing: string[] = [];
      const ids = resolveIds(settings.runDir, names, missing);
      const { inspectContainer } = await import('./ps.js');
      const all = [];
      for (const id of ids) all.push(await inspectContainer(settings, log, id));
      out(`${JSON.stringify(all, null, 2)}\n`);
      await reportMissing(missing);
    });

  add(new Command('restart'))
    .description('stop (if running) and start detached containers again, with the same options')
    .argument('<id...>')
    .option('-t, --time <seconds>', "seconds to wait before SIGKILL (default: the container's --stop-timeout, else 10)")
    .action(async (names: string[], f: { time?: string }, cmd: Command) => {
      const { settings, log } = setup(cmd);
      const timeout = f.time === undefined ? undefined : positiveSeconds('--time', f.time);
      const missing: string[] = [];
      const ids = await detachedIds(settings, names, 'restart', missing);
      const { restartContainer } = await import('./restart.js');
      for (const id of ids) await restartContainer(settings, log, await wiring(), id, timeout);
      out(ids.map((id) => `${id}\n`).join(''));
      await reportMissing(missing);
    });

  add(new Command('cleanup'))
    .description("tear down an ended detached container's network and record its exit code (conmon's exit command)")
    .argument('<id>')
    .option('--instance <token>', 'only this creation of the container (conmon passes it)')
    .action(async (id: string, f: { instance?: string }, cmd: Command) => {
      const { settings, log } = setup(cmd);
      const { checkContainerId } = await import('../../config/ids.js');
      const { cleanupContainer, removeIfAutoRemove } = await import('./cleanup.js');
      const r = await cleanupContainer(checkContainerId(id), settings, log, await wiring(), f.instance);
      if (r === 'running') throw new UserError(`container ${id} is still running`);
      // --rm: the container goes with its monitor (this instance only).
      if (r === 'done') await removeIfAutoRemove(settings, log, id, f.instance);
    });

  return cmds;
}

/** The root filesystem of a container, from the spec runc runs (in its state directory). */
function containerRootfs(stateDir: string, id: string): string {
  try {
    const root = (JSON.parse(readFileSync(path.join(stateDir, 'bundle', 'config.json'), 'utf8')) as { root?: { path?: unknown } }).root?.path;
    if (typeof root === 'string' && root.startsWith('/')) return root;
  } catch {
    // below
  }
  throw new UserError(`container ${id}: its spec cannot be read to look up --user`);
}

function describe(status: string, code: number | undefined): string {
  return status === 'exited' ? `exited with ${code ?? 'an unknown status'}` : status;
}

/** Ids of detached containers; with `missing`, names that match no container go there (the
 * command does the others, then reportMissing names them: docker's way, exit 1). */
async function detachedIds(settings: Settings, names: string[], verb: string, missing?: string[]): Promise<string[]> {
  return (await import('./resolve.js')).detachedIds(settings.runDir, names, missing, undefined, verb);
}

async function reportMissing(missing: readonly string[]): Promise<void> {
  if (missing.length > 0) throw (await import('./resolve.js')).noSuchContainers(missing);
}

/** Views of containers that must be live (stop, kill): all checked before anything is sent; names
 * that match no container go to `missing`. */
async function liveViews(settings: Settings, names: string[], verb: string, endedToo: boolean, missing: string[]) {
  const { resolveIds } = await import('./resolve.js');
  const { currentView, isLive } = await import('./signals.js');
  const views = await Promise.all(resolveIds(settings.runDir, names, missing).map((id) => currentView(settings, id)));
  for (const v of views) {
    if (endedToo && (v.status === 'exited' || v.status === 'stopped')) continue;
    if (!isLive(v)) throw new UserError(`container ${v.id} cannot be ${verb}: it is not running (${describe(v.status, v.exitCode)})`);
  }
  return views;
}

const VALUE_OPTIONS = new Set(['-e', '--env', '--env-file', '-w', '--workdir', '-u', '--user', '--root', '--store', '--log', '--log-level']);

/**
 * `tsrun exec ID cmd -o x`: everything after the id belongs to the command, as in docker. A `--`
 * is put after the id (unless there is one) so the options of the command are not taken for
 * exec's own. Other argument lists are returned unchanged.
 */
export function separateExecCommand(argv: string[]): string[] {
  const firstOperand = (from: number): number => {
    for (let i = from; i < argv.length; i++) {
      const a = argv[i]!;
      if (a === '--') return -1;
      if (!a.startsWith('-')) return i;
      if (VALUE_OPTIONS.has(a)) i++;
    }
    return -1;
  };
  const verb = firstOperand(2);
  if (verb < 0 || argv[verb] !== 'exec') return argv;
  const id = firstOperand(verb + 1);
  if (id < 0 || argv[id + 1] === '--') return argv;
  return [...argv.slice(0, id + 1), '--', ...argv.slice(id + 1)];
}
