// The CNI front door: the tsrun executable run by a container runtime with CNI_COMMAND set
// (CRI-O, containerd, podman's CNI backend, cnitool). Parameters come in the environment, the
// plugin configuration on stdin; the result (ADD), the version list (VERSION) or an error object
// with the spec's code goes to stdout, as JSON. stderr gets one line when something fails; the
// log file gets the details, every line bound to the container id and the command.
//
// A cold process on every call, as the hook is: VERSION (which libcni runs when it loads a
// conflist) loads nothing but this file and the protocol tables, and the engine (netlink, nft,
// the store) is imported only by the verbs that use it.
import { resolveSettings } from '../config/settings.js';
import { readAllSync } from '../hook/stdin.js';
import { createLogger, type Logger } from '../runtime/log.js';
import { CODES, CURRENT_VERSION, CniError, SUPPORTED_VERSIONS, isSupportedVersion, parseEnv, toErrorObject, type CniEnv } from './protocol.js';
import { parseConfig, peekVersion, type PluginConfig } from './config.js';
import { loadedMs } from '../runtime/load-clock.js';
import { writeStdout } from '../shim/setup.js';

/** The stdin of a CNI call is a network config with its prevResult: a few KiB. */
const CONFIG_MAX_BYTES = 4 * 1024 * 1024;

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
  // a cold process (measured), paid on every container start and stop.
  process.exit(code);
}

/** Runs one CNI call and returns the exit code; never throws. */
export async function cniMain(opts: CniOptions = {}): Promise<number> {
  const env = opts.env ?? process.env;
  // fd 1 written directly: building process.stdout's stream for a pipe (net, stream) cost every
  // ADD and VERSION ~4 ms of a cold process (measured: node writing 700 bytes to a pipe through
  // process.stdout 38.0 ms, through writeSync 33.8 ms, node -e 0 33.4 ms; 30 interleaved runs).
  const writeOut = opts.writeOut ?? writeStdout;
  const writeErr = opts.writeErr ?? ((t: string) => void process.stderr.write(t));
  let version: string = CURRENT_VERSION;
  let log: Logger | undefined;
  let parsed: CniEnv | undefined;
  try {
    parsed = parseEnv(env);
    // Programs this call starts (nft, tc, the DNS resolver, which is tsrun itself) are not CNI
    // plugins: they must not inherit the protocol's variables.
    if (env === process.env) for (const k of Object.keys(process.env)) if (k.startsWith('CNI_')) delete process.env[k];
    let input: string;
    try {
      input = readAllSync(opts.stdinFd ?? 0, CONFIG_MAX_BYTES);
    } catch (err) {
      throw new CniError(CODES.ioFailure, 'cannot read the network config on stdin', (err as Error).message);
    }
    const peeked = peekVersion(input);
    if (peeked !== undefined && isSupportedVersion(peeked)) version = peeked;
    if (parsed.command === 'VERSION') {
      writeOut(`${JSON.stringify({ cniVersion: version, supportedVersions: SUPPORTED_VERSIONS })}\n`);
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
    const obj = toErrorObject(err, version);
    writeOut(`${JSON.stringify(obj)}\n`);
    writeErr(`tsrun: CNI ${parsed?.command ?? 'call'}: ${obj.msg}\n`);
    try {
      log?.error({ err, code: obj.code }, 'cni failed');
    } catch {
      // the log is best effort; the runtime has the error object
    }
    return 1;
  }
}
