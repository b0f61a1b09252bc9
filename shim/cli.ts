// The command line: parses and normalizes flags once (so nothing below sees raw strings), turns
// every failure into one line on stderr, and picks the exit code: 125 when tsrun itself fails,
// as docker and podman do, otherwise the container's own status.
import { Command, CommanderError, Option } from 'commander';
import { LOG_LEVELS } from '../config/settings.js';
import { normalizeRunOptions } from './run-options.js';
import { commandWord } from './command-word.js';
import { EXIT_TSRUN_FAILED, reportFailure, sayOnStderr, type GlobalFlags } from './setup.js';
import { setup } from './setup-supervised.js';
import { lifecycleCommands, runDetachedCmd, separateExecCommand } from './lifecycle/commands.js';
import { networkCommand } from './network-cmd.js';
import { agentCommand } from './agent-cmd.js';
import { hookCommands } from './hook-cmd.js';
import { topologyCommand } from './topology-cmd.js';
import { cniCommand } from './cni-cmd.js';
import { portCommand } from './port-cmd.js';
import { attachCommand } from './lifecycle/attach-cmd.js';
import { ociRuntimeCommand } from './oci-runtime-cmd.js';
import { inheritedSettings, resolverCommand } from './resolver-cmd.js';

export { EXIT_TSRUN_FAILED, normalizeRunOptions };

const collect = (value: string, previous: string[]) => [...previous, value];

/** Top-level commands built only when they are the one asked for (see buildProgram). */
const ON_DEMAND = new Set(['network', 'agent', 'topology', 'oci-runtime', 'hook', 'spec', 'cni', 'resolver', 'gc', 'port', 'attach']);
export { commandWord };

/**
 * The program. Building every command's options costs a cold process a few milliseconds, and a
 * process runs one command: given `argv`, the commands of ON_DEMAND that were not asked for are
 * left out. Without argv, or when the command word is none of tsrun's (help, a typo), all are
 * built, so help and "unknown command" see everything. `run` and the lifecycle commands are always
 * built (the lifecycle adds run's detach options).
 */
export function buildProgram(onExitCode: (code: number) => void, argv?: string[]): Command {
  const word = argv ? commandWord(argv) : undefined;
  const program = new Command('tsrun')
    .description('Container networking runtime: runs OCI bundles through runc and wires their networks')
    .version('0.1.0')
    .option('--root <dir>', 'keep all state under DIR (env TSRUN_ROOT)')
    .option('--store <url>', 'local, or etcd://HOST:PORT[,HOST:PORT] (env TSRUN_STORE)')
    .option('--log <file>', 'log file (env TSRUN_LOG; default /var/log/tsrun/tsrun.log)')
    .addOption(new Option('--log-level <level>', 'log level (env TSRUN_LOG_LEVEL)').choices(LOG_LEVELS))
    .option('--debug', 'also print readable log lines on stderr')
    .showHelpAfterError(false);

  const run = program
    .command('run')
    .description('run an OCI bundle through runc, with its network wired')
    .argument('<bundle>', 'directory holding config.json and the root filesystem')
    .argument('[command...]', 'program and arguments, replacing process.args (put them after --)')
    .option('--name <id>', 'container id (generated when absent)')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect, [])
    .option('--env-file <file>', "read environment variables from FILE: KEY=VALUE lines, # comments, a bare KEY takes this shell's value (repeatable)", collect, [])
    .option('-u, --user <user[:group]>', "run the process as this user: a uid or a name from the root filesystem's /etc/passwd, and a gid or group name")
    .option('--hostname <name>', 'the container hostname')
    .option('--cwd <dir>', 'working directory inside the container')
    .option('-w, --workdir <dir>', 'the same as --cwd (docker\'s name)')
    .option('--net <mode>', 'none | host | bridge | container:<id> | <network name>', 'bridge')
    .option('-p, --publish <spec>', 'publish [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|/udp] (repeatable)', collect, [])
    .option('--ip <address>', 'static IPv4 address on the network')
    .option('--ip6 <address>', 'static IPv6 address on the network')
    .option('--mac <address>', 'MAC address of the container interface')
    .option('--network-alias <name>', 'another DNS name of the container on its network (repeatable)', collect, [])
    .option('--dns <ip>', 'upstream DNS server for the container (repeatable; default: the host\'s)', collect, [])
    .option('-m, --memory <size>', 'memory limit, e.g. 256m')
    .option('--memory-swap <size>', 'memory plus swap limit, or -1 for unlimited swap')
    .option('--cpus <n>', 'CPU limit, e.g. 1.5')
    .option('--cpu-shares <n>', 'relative CPU weight')
    .option('--pids-limit <n>', 'maximum number of processes')
    .option('--init', 'run a minimal init (tini or catatonit) as PID 1: forwards signals, reaps zombies')
    .option('--stop-timeout <seconds>', 'seconds from SIGINT/SIGTERM to SIGKILL (default 10)')
    .option('-t, --tty', 'give the container a pseudo-terminal')
    .option('-i, --interactive', 'keep stdin open (detached: conmon holds it)')
    .option('--rm', 'remove the container when it ends (a foreground one always is; -d and create: once it exits or is stopped)')
    .action(async (bundle: string, command: string[], flags: Record<string, unknown>, cmd: Command) => {
      const globals = cmd.optsWithGlobals() as GlobalFlags;
      const options = normalizeRunOptions(bundle, command, flags);
      const { settings, log } = setup(globals);
      if (flags.detach === true) return void (await runDetachedCmd(options, flags, settings, log));
      const { runContainer } = await import('./run.js');
      const { shimNetworkWiring } = await import('./network-wiring.js');
      log.debug({ options }, 'run');
      onExitCode(await runContainer(options, settings, log, shimNetworkWiring, flags.tty === true ? true : undefined));
    });
  // Detached containers: `run -d` and create/start/ps/logs/exec/stop/kill/wait/rm/inspect/restart.
  run.option('-d, --detach', 'run in the background under conmon and print the id (tsrun ps, logs, stop, rm)');
  for (const c of lifecycleCommands({ setup: (cmd) => setup(cmd.optsWithGlobals() as GlobalFlags), onExitCode, runCommand: run, normalizeRunOptions })) program.addCommand(c);

  const always = new Set(program.commands.map((c) => c.name()));
  const want = (name: string) => (word !== undefined && always.has(word) ? false : word === undefined || !ON_DEMAND.has(word) || word === name);
  if (want('network')) program.addCommand(networkCommand((cmd) => setup(cmd.optsWithGlobals() as GlobalFlags)));
  if (want('agent')) program.addCommand(agentCommand((cmd) => setup(cmd.optsWithGlobals() as GlobalFlags)));
  if (want('topology')) program.addCommand(topologyCommand((cmd) => setup(cmd.optsWithGlobals() as GlobalFlags)));
  if (want('oci-runtime')) program.addCommand(ociRuntimeCommand((cmd) => setup(cmd.optsWithGlobals() as GlobalFlags)));
  if (want('hook') || want('spec')) for (const c of hookCommands((cmd) => setup(cmd.optsWithGlobals() as GlobalFlags), onExitCode)) program.addCommand(c);
  if (want('attach')) program.addCommand(attachCommand((cmd) => setup(cmd.optsWithGlobals() as GlobalFlags), onExitCode));
  if (want('port')) program.addCommand(portCommand((cmd) => setup(cmd.optsWithGlobals() as GlobalFlags)));
  if (want('cni')) program.addCommand(cniCommand((cmd) => setup(cmd.optsWithGlobals() as GlobalFlags)));
  if (want('resolver')) program.addCommand(resolverCommand((cmd) => setup(cmd.optsWithGlobals() as GlobalFlags, { supervise: false }), () => inheritedSettings(process.env)), { hidden: true });
  if (!want('gc')) return program;

  program
    .command('gc')
    .description('remove what crashed containers left behind (leases, links, firewall elements, pins, bridges of deleted networks)')
    .action(async (_f: unknown, cmd: Command) => {
      const { settings, log } = setup(cmd.optsWithGlobals() as GlobalFlags);
      const { collectGarbage } = await import('./gc-cmd.js');
      const report = await collectGarbage(settings, log);
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    });

  return program;
}

/** Runs the CLI and returns the process exit code; never throws. */
/**
 * The front door as the entry (shim/main.ts) and the start-up snapshot (scripts/snapshot-entry.cjs)
 * call it: `args` as typed after `tsrun`; process.argv[1] is the entry script (tsrun.cjs) either way.
 */
export function door(args: string[]): Promise<number> {
  return main([process.argv[0] ?? process.execPath, process.argv[1] ?? '', ...args]);
}

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  let parseError: string | undefined;
  const program = buildProgram((code) => {
    exitCode = code;
  }, argv);
  program.exitOverride();
  program.configureOutput({
    writeErr: (s) => {
      parseError ??= s.trim().replace(/^error: /, '');
    },
  });
  const overrideAll = (cmd: Command) => {
    for (const sub of cmd.commands) {
      sub.exitOverride();
      sub.configureOutput({ writeErr: (s) => void (parseError ??= s.trim().replace(/^error: /, '')) });
      overrideAll(sub);
    }
  };
  overrideAll(program);
  try {
    await program.parseAsync(separateExecCommand(argv));
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return 0; // --help, --version
      sayOnStderr(`tsrun: ${parseError ?? err.message.replace(/^error: /, '')}\n`);
      return EXIT_TSRUN_FAILED;
    }
    return reportFailure(err);
  }
}
