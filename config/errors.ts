// tsrun's error hierarchy. Every failure that reaches a front door is one of these, so the CLI
// can print exactly one line (`shortMessage`) and choose the exit code, while the log keeps the
// whole chain through `cause`.

const BRAND = Symbol.for('tsrun.error');

export abstract class TsrunError extends Error {
  readonly [BRAND] = true;
  /** One line, safe to print to a user: what failed and on which object. */
  readonly shortMessage: string;
  abstract readonly kind: 'user' | 'system';

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

/** A lookup found nothing: teardown treats it as "already done". */
export class NotFoundError extends UserError {}

/** Something already exists (container id, network name, address lease). */
export class ConflictError extends UserError {}

export function isTsrunError(e: unknown): e is TsrunError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
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
