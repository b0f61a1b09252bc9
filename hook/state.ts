// The hook's input: the stage name from argv and the OCI state JSON from stdin, checked before
// anything uses them. The container id becomes a store key and part of interface names, so it
// must pass runc's own id rule (which keeps "../../etc" out of every path); the pid becomes
// /proc/<pid>/ns/net, so it must be a plausible process id.
import { UserError } from '../config/errors.js';
import { checkContainerId } from '../config/ids.js';
import { StateSchema, type State } from '../config/oci.js';
import { parseOrThrow } from '../config/validate.js';

/** The OCI runtime-spec hook stages, in the order a runtime runs them. */
export const STAGES = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;
export type Stage = (typeof STAGES)[number];

/** Linux's PID_MAX_LIMIT (2^22): no process id is larger. */
const PID_MAX = 4_194_304;

export function isStage(s: string): s is Stage {
  return (STAGES as readonly string[]).includes(s);
}

export function checkStage(s: string): Stage {
  if (isStage(s)) return s;
  const shown = s.length > 40 ? `${s.slice(0, 37)}...` : s;
  throw new UserError(`unknown hook stage ${JSON.stringify(shown)}: use one of ${STAGES.join(', ')}`);
}

const WHAT = 'state JSON on stdin';

/** Parses and validates the state; every failure is a UserError naming the field. */
export function parseState(text: string): State {
  if (text.trim() === '') throw new UserError(`no ${WHAT}: a runtime pipes the container state to its hooks`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${WHAT} is not valid JSON: ${(err as Error).message}`);
  }
  // Valibot's object and record schemas take arrays too; a state is never one.
  if (Array.isArray(json)) throw new UserError(`${WHAT}: must be an object (got an array)`);
  if (Array.isArray((json as { annotations?: unknown } | null)?.annotations)) throw new UserError(`${WHAT}: annotations: must be an object of strings (got an array)`);
  const state = parseOrThrow(StateSchema, json, WHAT);
  try {
    checkContainerId(state.id);
  } catch (err) {
    throw new UserError(`${WHAT}: id: ${(err as UserError).shortMessage}`);
  }
  if (state.pid !== undefined && state.pid > PID_MAX) throw new UserError(`${WHAT}: pid: ${state.pid} is not a process id (the limit is ${PID_MAX})`);
  return state;
}
