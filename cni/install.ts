// `tsrun cni install|uninstall`: puts tsrun where CNI runtimes look for plugins. The plugin
// directory gets an executable `tsrun`, a small wrapper (node by its shebang) that runs the
// bundled entry with this Node by absolute paths (runtimes call plugins with a bare environment, often without
// PATH) and the settings in force at install time (TSRUN_ROOT, the store, the log); the
// configuration directory gets a conflist naming the network. Files are written temp-then-rename,
// so a runtime scanning the directories never reads half of one.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { writeFileReplacing } from '../runtime/files.js';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { UserError } from '../config/errors.js';
import { checkNetworkName } from '../config/ids.js';
import { CODES } from './protocol.js';

/** The first line after the shebang: how uninstall knows the wrapper is tsrun's. */
export const WRAPPER_MARK = '# tsrun CNI plugin wrapper, written by `tsrun cni install`';
export const PLUGIN_NAME = 'tsrun';
/** The conflist's cniVersion: what Debian's libcni (podman 4, containerd, CRI-O) and the
 * reference plugins chained after tsrun all speak. */
export const CONFLIST_VERSION = '1.0.0';

export interface InstallOptions {
  binDir: string;
  confDir: string;
  /** An existing tsrun network; absent: the default network `tsrun`, created on first ADD. */
  network?: string | undefined;
  node: string;
  entry: string;
  /** Environment the wrapper sets (TSRUN_ROOT, TSRUN_STORE, TSRUN_LOG, TSRUN_LOG_LEVEL, TSRUN_NFT). */
  env: Record<string, string>;
}

/** The same mark in the Node form of the wrapper (a JavaScript comment). */
const JS_WRAPPER_MARK = `//${WRAPPER_MARK.slice(1)}`;

/**
 * The plugin's executable. Runtimes exec it for every call, so it is node itself by its shebang,
 * setting the recorded environment and requiring the entry: a sh before node cost each call ~1.3 ms
 * of wall (30 interleaved VERSION calls) and ~0.7 ms of CPU (60 calls, wait4: 34.0 -> 33.3 ms,
 * `node tsrun.cjs` 33.1; loaded 2-core machine, medians). A node path a shebang cannot carry
 * (whitespace, too long for the kernel's 256-byte line), or an entry that is not the bundle's
 * CommonJS tsrun.cjs (an ES module cannot be required), gets the sh form, which execs the same.
 */
export function wrapperScript(node: string, entry: string, env: Record<string, string>): string {
  for (const [what, p] of [['node', node], ['entry point', entry]] as const) {
    if (!path.isAbsolute(p)) throw new UserError(`the CNI wrapper needs absolute paths: ${what} is ${JSON.stringify(p)}`);
  }
  if (!shebangSafe(node) || !entry.endsWith('.cjs')) {
    const lines = ['#!/bin/sh', WRAPPER_MARK, ...Object.entries(env).map(([k, v]) => `export ${k}=${shellQuote(v)}`), `exec ${shellQuote(node)} ${shellQuote(entry)} "$@"`];
    return `${lines.join('\n')}\n`;
  }
  // CommonJS unless a package.json above the plugin directory says "type": "module" (Node reads an
  // extensionless file by the nearest one): then require does not exist and the entry is imported.
  const lines = [
    `#!${node}`,
    JS_WRAPPER_MARK,
    ...Object.entries(env).map(([k, v]) => `process.env[${JSON.stringify(k)}] = ${JSON.stringify(v)};`),
    // An entry gone (tsrun moved or removed after install) is the runtime's error object, not a
    // Node stack trace: one line on stderr, the spec's error on stdout, exit 1. Only that failure
    // is caught (the entry's own errors are its own to report); nothing is paid on success.
    `const gone = (e, code, fs) => { if (e?.code !== code || fs.existsSync(${JSON.stringify(entry)})) throw e; const msg = ${JSON.stringify(`tsrun's CNI plugin is broken: its entry ${entry} is gone (run \`tsrun cni install\` again)`)}; fs.writeSync(1, JSON.stringify({ cniVersion: ${JSON.stringify(CONFLIST_VERSION)}, code: ${CODES.tsrunFailed}, msg }) + '\\n'); fs.writeSync(2, msg + '\\n'); process.exit(1); };`,
    `if (typeof require === 'function') { try { require(${JSON.stringify(entry)}); } catch (e) { gone(e, 'MODULE_NOT_FOUND', require('node:fs')); } }`,
    `else import(${JSON.stringify(pathToFileURL(entry).href)}).catch(async (e) => gone(e, 'ERR_MODULE_NOT_FOUND', await import('node:fs')));`,
  ];
  return `${lines.join('\n')}\n`;
}

/** A path the kernel runs as a shebang's interpreter as written: no whitespace or control
 * characters (the line is split at the first blank), and the line within its 256 bytes. */
function shebangSafe(node: string): boolean {
  return Buffer.byteLength(node) <= 200 && !/[\s\x00-\x1f\x7f]/.test(node);
}

export function conflist(network: string | undefined): Record<string, unknown> {
  const name = network ?? 'tsrun';
  return {
    cniVersion: CONFLIST_VERSION,
    name,
    plugins: [
      {
        type: PLUGIN_NAME,
        ...(network !== undefined ? { network } : {}),
        // tsrun publishes ports, takes static addresses and MACs and shapes bandwidth itself;
        // a chained portmap or bandwidth plugin must then not declare the same capability.
        capabilities: { portMappings: true, ips: true, mac: true, aliases: true, bandwidth: true },
      },
    ],
  };
}

export function conflistFile(confDir: string, network: string | undefined): string {
  return path.join(confDir, `10-tsrun-${network ?? 'tsrun'}.conflist`);
}

export function install(o: InstallOptions): string[] {
  if (o.network !== undefined) checkNetworkName(o.network);
  mkdirSync(o.binDir, { recursive: true });
  mkdirSync(o.confDir, { recursive: true });
  const plugin = path.join(o.binDir, PLUGIN_NAME);
  if (existsSync(plugin) && !isOurWrapper(plugin)) throw new UserError(`${plugin} exists and is not tsrun's wrapper: remove it or choose another --bin-dir`);
  writeAtomic(plugin, wrapperScript(o.node, o.entry, o.env), 0o755);
  const conf = conflistFile(o.confDir, o.network);
  writeAtomic(conf, `${JSON.stringify(conflist(o.network), null, 2)}\n`, 0o644);
  return [plugin, conf];
}

/** Removes the wrapper (only if it is tsrun's) and tsrun's conflists (one network's, or all). */
export function uninstall(o: { binDir: string; confDir: string; network?: string | undefined }): string[] {
  const removed: string[] = [];
  const confs = existsSync(o.confDir)
    ? readdirSync(o.confDir).filter((f) => (o.network === undefined ? /^10-tsrun-.+\.conflist$/.test(f) : f === path.basename(conflistFile(o.confDir, o.network))))
    : [];
  for (const f of confs) {
    const file = path.join(o.confDir, f);
    if (!isOurConflist(file)) continue;
    rmSync(file, { force: true });
    removed.push(file);
  }
  // The wrapper goes with the last conflist.
  const left = existsSync(o.confDir) ? readdirSync(o.confDir).filter((f) => /^10-tsrun-.+\.conflist$/.test(f)) : [];
  const plugin = path.join(o.binDir, PLUGIN_NAME);
  if (left.length === 0 && existsSync(plugin) && isOurWrapper(plugin)) {
    rmSync(plugin, { force: true });
    removed.push(plugin);
  }
  return removed;
}

function isOurWrapper(file: string): boolean {
  try {
    const mark = readFileSync(file, 'utf8').split('\n')[1];
    return mark === WRAPPER_MARK || mark === JS_WRAPPER_MARK;
  } catch {
    return false;
  }
}

function isOurConflist(file: string): boolean {
  try {
    const c = JSON.parse(readFileSync(file, 'utf8')) as { plugins?: { type?: string }[] };
    return c.plugins?.[0]?.type === PLUGIN_NAME;
  } catch {
    return false;
  }
}

// Through writeFileReplacing: a random temporary name created with O_EXCL|O_NOFOLLOW. A
// predictable `<file>.tmp-<pid>` written with writeFileSync followed a symlink planted under that
// name, so whoever could write the plugin or configuration directory had root write a wrapper or
// conflist through it into any file.
function writeAtomic(file: string, text: string, mode: number): void {
  writeFileReplacing(file, text, mode);
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
