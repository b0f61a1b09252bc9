// The CNI protocol's fixed parts: the spec versions tsrun speaks, the error codes, and the
// parameters a runtime passes in the environment. Pure: nothing here does I/O.
import { isTsrunError, ConflictError, NotFoundError, SystemError } from '../config/errors.js';
import { checkContainerId, checkIfname } from '../config/ids.js';

/** What VERSION reports. 1.0.0 is what Debian's libcni and reference plugins speak; 0.3.x and
 * 0.4.0 get results in their own shape; 1.1.0 adds GC and STATUS. */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const CURRENT_VERSION: CniVersion = '1.1.0';

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS'] as const;
export type CniCommand = (typeof COMMANDS)[number];

/** The spec's well-known codes (SPEC.md, "Error"), and tsrun's own from 100 up. */
export const CODES = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnvironment: 4,
  ioFailure: 5,
  decodingFailure: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  notAvailable: 50,
  notAvailableLimited: 51,
  /** tsrun: a step failed (netlink, nft, the store). */
  tsrunFailed: 100,
  /** tsrun: something is taken (a host port, an address, the attachment's name). */
  conflict: 101,
  /** tsrun: CHECK found the attachment different from prevResult. */
  checkFailed: 102,
} as const;

export class CniError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly details = '',
  ) {
    super(msg);
    Object.defineProperty(this, 'name', { value: 'CniError', enumerable: false });
  }
}

export interface CniErrorObject {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

/** Any thrown value as the spec's error object. */
export function toErrorObject(err: unknown, cniVersion: string): CniErrorObject {
  const e = asCniError(err);
  return { cniVersion, code: e.code, msg: e.message, ...(e.details ? { details: e.details } : {}) };
}

export function asCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  if (isTsrunError(err)) {
    if (err instanceof ConflictError) return new CniError(CODES.conflict, err.shortMessage);
    if (err instanceof NotFoundError) return new CniError(CODES.invalidConfig, err.shortMessage);
    if (err instanceof SystemError) return new CniError(transient(err) ? CODES.tryAgainLater : CODES.tsrunFailed, err.shortMessage);
    return new CniError(CODES.invalidConfig, err.shortMessage);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new CniError(CODES.tsrunFailed, `internal error: ${message.split('\n')[0]}`);
}

/** Failures that clear by themselves: the cluster store unreachable, a lock held too long. */
function transient(err: SystemError): boolean {
  return /\b(UNAVAILABLE|ECONNREFUSED|ETIMEDOUT|DEADLINE_EXCEEDED|EBUSY|timed out)\b/i.test(err.shortMessage);
}

/** Major.minor.patch order; unknown strings sort first. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Number.isNaN(d) ? 0 : d;
  }
  return 0;
}

export function isSupportedVersion(v: string): v is CniVersion {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

export interface CniEnv {
  command: CniCommand;
  containerId?: string | undefined;
  netns?: string | undefined;
  ifname?: string | undefined;
  /** CNI_ARGS as pairs (IgnoreUnknown, IP, MAC, K8S_POD_NAME…). */
  args: Record<string, string>;
  path?: string | undefined;
}

/** The parameters, checked for the command: a missing or malformed one is code 4 and names it. */
export function parseEnv(env: NodeJS.ProcessEnv): CniEnv {
  const bad = (what: string) => new CniError(CODES.invalidEnvironment, `invalid environment: ${what}`);
  const command = env.CNI_COMMAND ?? '';
  if (!(COMMANDS as readonly string[]).includes(command)) throw bad(`CNI_COMMAND ${JSON.stringify(command)} is not one of ${COMMANDS.join(', ')}`);
  const cmd = command as CniCommand;
  const nonEmpty = (k: string) => (env[k] === undefined || env[k] === '' ? undefined : env[k]);
  const needs: Record<CniCommand, string[]> = {
    ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
    CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
    DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
    VERSION: [],
    GC: [],
    STATUS: [],
  };
  const missing = needs[cmd].filter((k) => nonEmpty(k) === undefined);
  if (missing.length > 0) throw bad(`${cmd} needs ${missing.join(', ')}`);
  const containerId = nonEmpty('CNI_CONTAINERID');
  const ifname = nonEmpty('CNI_IFNAME');
  if (needs[cmd].length > 0) {
    try {
      if (containerId !== undefined) checkContainerId(containerId);
    } catch {
      throw bad(`CNI_CONTAINERID ${JSON.stringify(containerId!.slice(0, 40))} is not a valid container id`);
    }
    try {
      if (ifname !== undefined) checkIfname(ifname);
    } catch {
      throw bad(`CNI_IFNAME ${JSON.stringify(ifname!.slice(0, 40))} is not a valid interface name`);
    }
  }
  return { command: cmd, containerId, netns: nonEmpty('CNI_NETNS'), ifname, args: parseCniArgs(env.CNI_ARGS ?? ''), path: nonEmpty('CNI_PATH') };
}

/** "IgnoreUnknown=1;IP=10.0.0.5;K8S_POD_NAME=web" → pairs; malformed pairs are code 4. */
export function parseCniArgs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text.split(';')) {
    if (pair.trim() === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CniError(CODES.invalidEnvironment, `invalid environment: CNI_ARGS pair ${JSON.stringify(pair.slice(0, 40))} is not KEY=VALUE`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}
