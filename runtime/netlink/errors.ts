// Kernel refusals as tsrun errors. The classes carry the meaning callers act on: NotFoundError is
// "already gone" for teardown, ConflictError is "already there" for ensure-style creation
// (accept, re-fetch, check kind); everything else is a SystemError naming the step and object,
// e.g. `create veth "tsv1234": File exists`. The errno stays reachable as `cause.code`.
import { ConflictError, NotFoundError, SystemError, type TsrunError } from '../../config/errors.js';
import { ErrnoError, strerror } from '../netns/errno.js';

const NOT_FOUND = new Set(['ENODEV', 'ENOENT', 'ESRCH']);

/** `step` names the operation and object: `create veth "tsv1234"`. */
export function kernelError(step: string, errno: number, notFound: readonly string[] = []): TsrunError {
  const cause = new ErrnoError(errno, 'netlink', step);
  const text = `${step}: ${strerror(errno)}`;
  if (NOT_FOUND.has(cause.code) || notFound.includes(cause.code)) return new NotFoundError(text, { cause });
  if (cause.code === 'EEXIST') return new ConflictError(text, { cause });
  return new SystemError(step, cause, strerror(errno));
}

/** The errno name behind a tsrun or system error ('EEXIST'), if there is one. */
export function errnoCode(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let depth = 0; depth < 5 && typeof cur === 'object' && cur !== null; depth++) {
    if (cur instanceof ErrnoError) return cur.code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}
