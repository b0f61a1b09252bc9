// The entry sends a foreground `tsrun run` to its own door when shim/run-args.ts can read the
// command line without commander: for every command line here, it must either read exactly what
// commander reads (bundle, command, run's flags, the global flags) or leave the line to the CLI.
import { describe, expect, it } from '@jest/globals';
import { Command } from 'commander';
import { buildProgram } from '../../../shim/cli.js';
import { parseRunArgs, wiresANetwork } from '../../../shim/run-args.js';
import { doneWhenReturned, runsTheEngine } from '../../../shim/command-word.js';

/** What commander hands run's action for `args` (as typed after `tsrun`), or its error. */
function viaCommander(args: string[]): { bundle: string; command: string[]; flags: Record<string, unknown>; globals: Record<string, unknown> } | 'error' | 'not run' {
  const program = buildProgram(() => {}, ['node', 'tsrun.cjs', ...args]);
  let got: ReturnType<typeof viaCommander> = 'not run';
  const quiet = (c: Command) => {
    c.exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    for (const s of c.commands) quiet(s);
  };
  quiet(program);
  const run = program.commands.find((c) => c.name() === 'run')!;
  run.action((bundle: string, command: string[], flags: Record<string, unknown>, cmd: Command) => {
    const { root, store, log, logLevel, debug } = cmd.optsWithGlobals() as Record<string, unknown>;
    const globals = Object.fromEntries(Object.entries({ root, store, log, logLevel, debug }).filter(([, v]) => v !== undefined));
    got = { bundle, command, flags: { ...flags }, globals };
  });
  try {
    program.parse(['node', 'tsrun.cjs', ...args]);
  } catch {
    return 'error';
  }
  return got;
}

const FAST = [
  ['run', 'b'],
  ['run', '--net', 'none', 'b'],
  ['run', '--net=none', 'b', '--', '/bin/sh', '-c', 'exit 3'],
  ['--root', '/r', '--debug', 'run', '-e', 'A=1', '--env', 'B=2', 'b', 'cmd', 'arg'],
  ['run', 'b', '--name', 'c1', '-p', '8080:80', '--publish', '127.0.0.1:9090:90/udp', '--memory-swap', '-1'],
  ['run', '--root', '/r', 'b', '--log-level', 'debug', '-t', '-i', '--init'],
  ['--log-level=warn', 'run', '--memory', '64m', '-m', '128m', '--cpus', '1.5', '--cpu-shares', '512', '--pids-limit', '10', 'b'],
  ['run', '--hostname', 'h', '--cwd', '/w', '--ip', '10.0.0.5', '--ip6', 'fd00::5', '--mac', '02:00:00:00:00:01', 'b'],
  ['run', '--network-alias', 'a', '--network-alias', 'b', '--dns', '1.1.1.1', '--stop-timeout', '0', 'b'],
  ['run', '--store', 'local', '--log', '/tmp/x.log', '--tty', '--interactive', 'b', '-'],
  ['run', '--net', 'none', '--net', 'host', 'b'],
  ['run', '--', 'b', 'cmd', '--net', 'x'],
  ['run', 'b', 'run', 'cmd'],
  ['run', '--name', 'run', 'b'],
  ['run', '--net=', 'b'],
  ['run', '-d', 'b'],
  ['run', '--detach', '-p', '8080:80', 'b', '--', 'sleep', '1000'],
  ['run', '-d', '--log-max-size', '1m', '--stop-signal', 'SIGINT', 'b'],
  ['run', '--stop-signal=SIGHUP', '-t', '-i', '-d', 'b'],
  ['run', '--env-file', 'a.env', '--env-file=b.env', '-e', 'A=1', '-u', '1000:1000', 'b'],
  ['run', '--user=nobody', '--net', 'none', 'b', '--', 'id'],
  ['run', '-d', '--rm', '--net', 'none', 'b'],
];

const TO_THE_CLI = [
  [],
  ['--help'],
  ['run', '--help'],
  ['run', '-h', 'b'],
  ['--version'],
  ['run', '-V', 'b'],
  ['run'],
  ['run', '--net', 'none'],
  ['run', '--log-max-size', '1m', 'b'],
  ['run', '--stop-signal', 'SIGINT', 'b'],
  ['run', '-it', 'b'],
  ['run', '-p8080:80', 'b'],
  ['run', '--nett', 'none', 'b'],
  ['run', 'b', 'sh', '-c', 'x'],
  ['run', '--name', '--debug', 'b'],
  ['run', '--name', '--root=/x', 'b'],
  ['run', '--memory-swap', '--', 'b'],
  ['run', '-e'],
  ['run', '--tty=yes', 'b'],
  ['--log-level', 'loud', 'run', 'b'],
  ['-e', 'A=1', 'run', 'b'],
  ['--', 'run', 'b'],
  ['ps'],
  ['create', 'b'],
  ['network', 'ls'],
  ['runn', 'b'],
  ['hook', 'poststart'],
];

describe('run\'s command line without commander', () => {
  it.each(FAST.map((a) => [a]))('reads %j as commander does', (args) => {
    const mine = parseRunArgs(args);
    const theirs = viaCommander(args);
    expect(mine).toBeDefined();
    expect(theirs).not.toBe('error');
    if (mine === undefined || typeof theirs === 'string') return;
    const own = Object.fromEntries(Object.entries(theirs.flags).filter(([k]) => k in mine.flags || ['name', 'hostname', 'cwd', 'ip', 'ip6', 'mac', 'memory', 'memorySwap', 'cpus', 'cpuShares', 'pidsLimit', 'init', 'stopTimeout', 'tty', 'interactive', 'detach', 'logMaxSize', 'stopSignal', 'user'].includes(k)));
    expect({ bundle: mine.bundle, command: mine.command, flags: mine.flags, globals: mine.globals }).toEqual({ bundle: theirs.bundle, command: theirs.command, flags: own, globals: theirs.globals });
  });

  it.each(TO_THE_CLI.map((a) => [a]))('leaves %j to the CLI', (args) => {
    expect(parseRunArgs(args)).toBeUndefined();
  });

  it('knows every option of run (a new option of run goes to the CLI until it is added)', () => {
    const run = buildProgram(() => {}, ['node', 'tsrun.cjs', 'run', 'b']).commands.find((c) => c.name() === 'run')!;
    const detachedOnly = new Set(['--log-max-size', '--stop-signal']);
    for (const o of run.options) {
      for (const flag of [o.long, o.short].filter((f): f is string => f !== undefined)) {
        const args = ['run', ...(detachedOnly.has(o.long!) ? ['-d'] : []), flag, ...(o.required ? ['1'] : []), 'b'];
        const got = parseRunArgs(args);
        expect([flag, got?.bundle]).toEqual([flag, 'b']);
        expect([flag, got?.flags[o.attributeName()]]).toEqual([flag, viaCommander(args) === 'error' ? undefined : (viaCommander(args) as { flags: Record<string, unknown> }).flags[o.attributeName()]]);
      }
    }
  });

  it('reads nothing that commander would have refused or sent elsewhere', () => {
    // Random command lines from the words above: whatever the fast path reads, commander reads
    // the same way into run's action.
    const words = ['run', 'b', 'c', '--', '-', '--net', 'none', '--net=host', '-e', 'A=1', '-p', '80', '--debug', '--root', '/r', '-t', '-i', '-it', '--init', '--memory-swap', '-1', '--name', 'x', '-d', '--detach', '--stop-signal', 'SIGINT', '--log-max-size=1m', '--help', '--log-level', 'info', 'ps'];
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    let fast = 0;
    for (let k = 0; k < 3000; k++) {
      const args = Array.from({ length: 1 + rnd(7) }, () => words[rnd(words.length)]!);
      if (rnd(2) === 0) args.unshift('run');
      const mine = parseRunArgs(args);
      if (mine === undefined) continue;
      fast++;
      const theirs = viaCommander(args);
      if (typeof theirs === 'string') throw new Error(`${JSON.stringify(args)}: fast path read it, commander says ${theirs}`);
      expect([args, mine.bundle, mine.command, mine.globals]).toEqual([args, theirs.bundle, theirs.command, theirs.globals]);
      for (const [k, v] of Object.entries(mine.flags)) expect([args, k, v]).toEqual([args, k, theirs.flags[k]]);
    }
    expect(fast).toBeGreaterThan(100);
  });
});

describe('which run wires a network (it loads run.cjs with its eager code cache)', () => {
  it('none, host and container:<id> wire none; bridge, default and network names do', () => {
    expect(['none', 'host', 'container:c1', ' none'].map(wiresANetwork)).toEqual([false, false, false, false]);
    expect(['bridge', 'default', 'mynet', ''].map(wiresANetwork)).toEqual([true, true, true, true]);
  });
});

describe("which CLI command runs the engine (it loads cli.cjs with its eager code cache)", () => {
  it('run -d, create, stop, rm, restart, cleanup, network and gc do; ps, logs, help do not', () => {
    for (const args of [['run', '-d', 'b'], ['--root', '/r', 'rm', '-f', 'c'], ['network', 'ls'], ['cleanup', 'c'], ['gc']]) expect([args, runsTheEngine(args)]).toEqual([args, true]);
    for (const args of [['ps'], ['logs', 'c'], ['--help'], [], ['--log-level', 'rm', 'ps']]) expect([args, runsTheEngine(args)]).toEqual([args, false]);
  });
});

describe('which CLI command exits as soon as it returns', () => {
  it('the lifecycle verbs do; what may serve or stream keeps the natural exit', () => {
    for (const args of [['rm', '-f', 'c'], ['--root', '/r', 'ps'], ['cleanup', 'c'], ['stop', 'c'], ['create', 'b']]) expect([args, doneWhenReturned(args)]).toEqual([args, true]);
    for (const args of [['resolver'], ['agent', 'run'], ['logs', '-f', 'c'], ['exec', 'c', 'sh'], ['network', 'create', 'n'], ['--help'], []]) expect([args, doneWhenReturned(args)]).toEqual([args, false]);
  });
});
