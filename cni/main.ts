// The CNI front door: the tsrun executable run by a container runtime with CNI_COMMAND set
// (CRI-O, containerd, podman's CNI backend, cnitool). Parameters come in the environment, the
// plugin configuration on stdin; the result (ADD), the version list (VERSION) or an error object
// with the spec's code goes to stdout, as JSON. stderr gets one line when something fails; the
// log file gets the details, every line bound to the container id and the command.
//
// A cold process on every call, as the hook is: the engine (netlink, nft, the store) is imported
// only by the verbs that use it, and VERSION (which libcni runs for every plugin whenever it loads
// a conflist) does not come here at all: shim/main.ts sends it to cni/version-door.ts.
import { resolveSettings } from '../config/settings.js';
import { createLogger, type Logger } from '../runtime/log.js';
import { newCallState, readCall, reportFailure, versionAnswer } from './call.js';
import { parseConfig, type PluginConfig } from './config.js';
import { loadedMs } from '../runtime/load-clock.js';
import { writeStderr, writeStdout } from '../runtime/stdout.js';

export interface CniOptions {
  env?: NodeJS.ProcessEnv;
  stdinFd?: number;
  writeOut?: (text: string) => void;
  writeErr?: (text: string) => void;
  /** performance.now() when the entry started (logged, for the start-up split). */
  entryMs?: number;
}

const round = (ms: number | undefined) => (ms === undefined ? undefined : +ms.toFixed(2));

/** The front door as the entry (shim/main.ts) and the start-up snapshot (scripts/snapshot-entry.cjs)
 * call it: the CNI protocol is in the environment and on stdin, not in the arguments. */
export async function door(_args: string[], entryMs?: number): Promise<number> {
  // A short process with nothing else to do: the resolver is asked without loading node:net.
  (await import('../runtime/dns/client.js')).askResolverBlocking();
  const code = await cniMain({ entryMs });
  // Exit now rather than when the event loop runs dry: everything is done, the log is written
  // synchronously, and stdio to pipes and files is synchronous on Linux, so nothing is lost. A
  // natural exit first tears V8's heap down and runs the native addons' exit handlers: ~4 ms of
  // a cold process (measured), paid on every container start and stop. A call that loaded koffi
  // (ADD, DEL, CHECK: the host lock, netlink) leaves through libc's _exit, which also skips Node's
  // own exit (its threads stopped and joined, destructors: ~1 ms, runtime/koffi.ts exitFast): the
  // answer on stdout, the log and the failure line are all written synchronously.
  (await import('../runtime/koffi.js')).exitFast(code);
  process.exit(code);
}

/** Runs one CNI call and returns the exit code; never throws. */
export async function cniMain(opts: CniOptions = {}): Promise<number> {
  const env = opts.env ?? process.env;
  const writeOut = opts.writeOut ?? writeStdout;
  const writeErr = opts.writeErr ?? writeStderr;
  const state = newCallState();
  let log: Logger | undefined;
  try {
    const { env: parsed, input } = readCall(env, opts.stdinFd ?? 0, state);
    if (parsed.command === 'VERSION') {
      writeOut(versionAnswer(state.version));
      return 0;
    }
    const conf: PluginConfig = parseConfig(input, parsed);
    const settings = resolveSettings(env, { root: conf.root, store: conf.store, logLevel: conf.logLevel });
    log = createLogger({
      file: settings.logFile,
      level: settings.logLevel,
      debug: settings.debug,
      bindings: { cni: parsed.command, containerId: parsed.containerId ?? null, network: conf.network, ifname: parsed.ifname ?? null },
    });
    log.debug({ netns: parsed.netns, args: parsed.args, conf: { ...conf, prevResult: conf.prevResult ? '…' : undefined }, startupMs: opts.entryMs }, 'cni call');
    const verbs = await import('./verbs.js');
    const ctx = { env: parsed, conf, settings, log };
    const started = performance.now();
    // What the verb spends loading code (the engine's modules, native libraries) is loading too.
    const clockAtStart = loadedMs();
    switch (parsed.command) {
      case 'ADD':
        writeOut(`${JSON.stringify(await verbs.add(ctx))}\n`);
        break;
      case 'DEL':
        await verbs.del(ctx);
        break;
      case 'CHECK':
        await verbs.check(ctx);
        break;
      case 'GC':
        await verbs.gc(ctx);
        break;
      case 'STATUS':
        await verbs.status(ctx);
        break;
    }
    // The split of a call: Node start-up (process start → entry), loading and parsing, the verb.
    const now = performance.now();
    const loadedInVerb = loadedMs() - clockAtStart;
    log.info({ startupMs: round(opts.entryMs), loadMs: round(started - (opts.entryMs ?? 0) + loadedInVerb), verbMs: round(now - started - loadedInVerb), totalMs: round(now) }, 'cni done');
    return 0;
  } catch (err) {
    const obj = reportFailure(err, state, writeOut, writeErr);
    try {
      log?.error({ err, code: obj.code }, 'cni failed');
    } catch {
      // the log is best effort; the runtime has the error object
    }
    return 1;
  }
}
