// Where tsrun keeps things. One object, computed once at the front door from the environment and
// flags, then passed down: nothing below the front doors reads process.env.
import path from 'node:path';

export interface Settings {
  /** Volatile runtime state: container records, pinned namespaces, rewritten specs, runc's root. */
  runDir: string;
  /** Persistent definitions: networks, and the local store. */
  libDir: string;
  /** `local` or an `etcd://host:port[,host:port]` URL. */
  store: string;
  logFile: string;
  logLevel: LogLevel;
  /** Also print human-readable log lines to stderr. */
  debug: boolean;
  /** Binaries tsrun executes, by name or path; runtime/binaries.ts resolves names against PATH and
   * the system directories, because hooks may run with no PATH at all (podman's poststop). */
  runc: string;
  nft: string;
  /** How nftables commands are applied: libnftables in-process ('lib'), the nft process
   * ('process'), or ('auto', the default) element batches straight to nf_tables over netlink and
   * the rest through the library when it loads. TSRUN_NFT_BACKEND. */
  nftBackend?: 'auto' | 'lib' | 'process';
  /** The host's resolv.conf (of the namespace tsrun runs in): the upstreams the DNS resolver
   * forwards to, and what containers without the resolver copy. */
  resolvConf: string;
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface SettingsOverrides {
  root?: string | undefined;
  store?: string | undefined;
  log?: string | undefined;
  logLevel?: string | undefined;
  debug?: boolean | undefined;
}

/**
 * TSRUN_ROOT moves everything tsrun writes under one directory, so several instances (tests,
 * simulated hosts) run side by side. Without it tsrun follows the FHS: /run for what must not
 * survive a reboot, /var/lib for definitions, /var/log for the log.
 */
export function resolveSettings(env: NodeJS.ProcessEnv, flags: SettingsOverrides = {}): Settings {
  const root = flags.root ?? nonEmpty(env.TSRUN_ROOT);
  const runDir = root ? path.join(root, 'run') : '/run/tsrun';
  const libDir = root ? path.join(root, 'lib') : '/var/lib/tsrun';
  const defaultLog = root ? path.join(root, 'log', 'tsrun.log') : '/var/log/tsrun/tsrun.log';
  const level = flags.logLevel ?? nonEmpty(env.TSRUN_LOG_LEVEL) ?? 'info';
  return {
    runDir: path.resolve(runDir),
    libDir: path.resolve(libDir),
    store: flags.store ?? nonEmpty(env.TSRUN_STORE) ?? 'local',
    logFile: path.resolve(flags.log ?? nonEmpty(env.TSRUN_LOG) ?? defaultLog),
    logLevel: isLogLevel(level) ? level : 'info',
    debug: flags.debug ?? env.TSRUN_DEBUG === '1',
    runc: nonEmpty(env.TSRUN_RUNC) ?? 'runc',
    nft: nonEmpty(env.TSRUN_NFT) ?? 'nft',
    nftBackend: nftBackendOf(env.TSRUN_NFT_BACKEND),
    resolvConf: path.resolve(nonEmpty(env.TSRUN_RESOLV_CONF) ?? '/etc/resolv.conf'),
  };
}

export function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

function nftBackendOf(s: string | undefined): 'auto' | 'lib' | 'process' {
  return s === 'lib' || s === 'process' ? s : 'auto';
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}

