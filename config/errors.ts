// tsrun's error hierarchy. Every failure that reaches a front door is one of these, so the CLI
// can print exactly one line (`shortMessage`) and choose the exit code, while the log keeps the
// whole chain through `cause`.

const BRAND = Symbol.for('tsrun.error');

/** Whose mistake: the user's input ('user') or the kernel's, runc's, nft's or the store's ('system'). */
export type Blame = 'user' | 'system';

export abstract class TsrunError extends Error {
  readonly [BRAND] = true;
  /** One line, safe to print to a user: what failed and on which object. */
  readonly shortMessage: string;
  abstract readonly kind: Blame;

  constructor(shortMessage: string, options?: { cause?: unknown }) {
    super(shortMessage, options);
    this.shortMessage = oneLine(shortMessage);
    Object.defineProperty(this, 'name', { value: new.target.name, enumerable: false });
  }
}

/** Bad input from the user or the runtime: exit 125 from the shim, a hook failure from the hook. */
export class UserError extends TsrunError {
  readonly kind = 'user' as const;
}

/** The kernel, runc, nft or the store failed while tsrun carried out a step. */
export class SystemError extends TsrunError {
  readonly kind = 'system' as const;
  /** The step that failed, e.g. "create veth tsv1a2b3c4" */
  readonly step: string;
  constructor(step: string, cause: unknown, detail?: string) {
    super(`${step}: ${detail ?? describeCause(cause)}`, { cause });
    this.step = step;
  }
}

/**
 * The two errors whose meaning callers act on, whoever caused them: the class says what happened
 * (NotFoundError: teardown counts it as "already done"; ConflictError: ensure-style creation
 * accepts it and re-fetches), `kind` says whose mistake it is. A lookup of something the user
 * named (a network, a container id) is theirs; an answer from the kernel or the filesystem (a
 * link or namespace gone in the middle of an attach) is the system's. Without an explicit
 * `kind`, an error carrying a `cause` came from such an answer and is 'system'.
 */
abstract class LookupError extends TsrunError {
  readonly kind: Blame;
  constructor(shortMessage: string, options: { cause?: unknown; kind?: Blame } = {}) {
    super(shortMessage, options);
    this.kind = options.kind ?? (options.cause === undefined ? 'user' : 'system');
  }
}

/** A lookup found nothing: teardown treats it as "already done". */
export class NotFoundError extends LookupError {}

/** Something already exists (container id, network name, address lease, a kernel object). */
export class ConflictError extends LookupError {}

export function isTsrunError(e: unknown): e is TsrunError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
}

/** 'user', 'system', or undefined for a value that is no tsrun error (a bug: 'internal'). */
export function blameOf(e: unknown): Blame | 'internal' {
  return isTsrunError(e) ? e.kind : 'internal';
}

/** The single line a front door prints for any thrown value. */
export function userFacingMessage(e: unknown): string {
  if (isTsrunError(e)) return e.shortMessage;
  return oneLine(`internal error: ${describeCause(e)}`);
}

export function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    const withShort = cause as Error & { shortMessage?: string };
    return oneLine(withShort.shortMessage ?? cause.message);
  }
  return oneLine(String(cause));
}

function oneLine(s: string): string {
  const flat = s.replace(/\s*\n\s*/g, '; ').trim();
  return flat.length > 500 ? `${flat.slice(0, 497)}...` : flat;
}
