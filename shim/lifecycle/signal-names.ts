// Signal names as runc takes them, from what a user types. A module of its own: `run`/`create`
// check --stop-signal while parsing, before any of the heavier lifecycle modules is loaded.
import { constants } from 'node:os';
import { UserError } from '../../config/errors.js';

/** `-s TERM`, `SIGTERM`, `15` → the canonical name runc takes. */
export function parseSignal(s: string): string {
  const n = Number(s);
  if (Number.isInteger(n) && n > 0) {
    const name = Object.entries(constants.signals).find(([, v]) => v === n)?.[0];
    if (name) return name;
  }
  const name = s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`;
  if (name in constants.signals) return name;
  throw new UserError(`invalid signal ${JSON.stringify(s)}: use a name (TERM, SIGKILL) or a number`);
}
