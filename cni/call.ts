// What every CNI call does before its verb, shared by the plugin's two doors (cni/main.ts and
// cni/version-door.ts): the parameters from the environment, the network config from stdin, the
// version to answer in, and the error object on stdout (with one line on stderr) when it fails.
import { readAllSync } from '../hook/stdin.js';
import { CODES, CURRENT_VERSION, CniError, SUPPORTED_VERSIONS, isSupportedVersion, parseEnv, toErrorObject, type CniEnv, type CniErrorObject } from './protocol.js';
import { peekVersion } from './config.js';

/** The stdin of a CNI call is a network config with its prevResult: a few KiB. */
const CONFIG_MAX_BYTES = 4 * 1024 * 1024;

export interface Call {
  env: CniEnv;
  /** The network config as read from stdin. */
  input: string;
}

/** What is known of a call so far: a failure answers in its version and names its command. */
export interface CallState {
  version: string;
  env?: CniEnv | undefined;
}

export function newCallState(): CallState {
  return { version: CURRENT_VERSION };
}

/** Reads the call, filling `state` as it learns; throws a CniError. */
export function readCall(env: NodeJS.ProcessEnv, stdinFd: number, state: CallState): Call {
  const parsed = parseEnv(env);
  state.env = parsed;
  // Programs this call starts (nft, tc, the DNS resolver, which is tsrun itself) are not CNI
  // plugins: they must not inherit the protocol's variables.
  if (env === process.env) for (const k of Object.keys(process.env)) if (k.startsWith('CNI_')) delete process.env[k];
  let input: string;
  try {
    input = readAllSync(stdinFd, CONFIG_MAX_BYTES);
  } catch (err) {
    throw new CniError(CODES.ioFailure, 'cannot read the network config on stdin', (err as Error).message);
  }
  const peeked = peekVersion(input);
  if (peeked !== undefined && isSupportedVersion(peeked)) state.version = peeked;
  return { env: parsed, input };
}

/** VERSION's answer. */
export function versionAnswer(version: string): string {
  return `${JSON.stringify({ cniVersion: version, supportedVersions: SUPPORTED_VERSIONS })}\n`;
}

/** A failed call: the error object on stdout, one line on stderr. */
export function reportFailure(err: unknown, state: CallState, writeOut: (t: string) => void, writeErr: (t: string) => void): CniErrorObject {
  const obj = toErrorObject(err, state.version);
  // Each write on its own: a runtime that closed its end of stdout (EPIPE) still gets the line on
  // stderr, and neither failure escapes as a second error with a stack trace.
  const attempt = (write: () => void) => {
    try {
      write();
    } catch {
      // the reader is gone; the exit status still says the call failed
    }
  };
  attempt(() => writeOut(`${JSON.stringify(obj)}\n`));
  attempt(() => writeErr(`tsrun: CNI ${state.env?.command ?? 'call'}: ${obj.msg}\n`));
  return obj;
}
