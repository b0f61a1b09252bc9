// The nf_tables generation at which tsrun's tables in its own namespace were last known intact,
// kept across processes in the run directory.
//
// The firewall self-check (backend.ts intactOverNetlink) dumps the sets, chains and rules of the
// three tables and compares them with this version's: ~3-4 ms of a cold hook poststop or CNI DEL,
// every time. The kernel moves the namespace's ruleset generation on with every commit, by anyone,
// to anything (NFT_MSG_GETGEN; exactly one step per commit): the same generation as when the tables
// were found intact means nothing was committed since, and they still are. Within one process that
// was already so (intactAtGeneration); this record carries it to the next process:
//   - a check that finds the tables intact records the generation it read before its dumps;
//   - a batch of tsrun's own (elements added or removed: structure it defines) applied on a known
//     intact generation G, after which the generation is G + 1, was the only commit in between, so
//     the tables are still intact at G + 1, and that is recorded.
// Anything else (another program's commit, a rule deleted by hand, `nft flush ruleset`, a batch of
// tsrun's that met another commit) moves the generation past the record: the next check is the
// full one, as before. The record names this version's schema (an upgraded tsrun does not take an
// older version's word) and the namespace (dev:inode of its nsfs file); the run directory is a
// tmpfs (gone with the boot) that only root writes.
import { readFileSync } from 'node:fs';
import { writeFileReplacing } from '../files.js';

export interface IntactRecord {
  /** The generation id recorded for `scope` (schema and namespace), if any. */
  read(scope: string): number | undefined;
  /** Records `id` for `scope`; best effort (a record not written only costs a full check). */
  write(scope: string, id: number): void;
}

/** The record in `file` (in the run directory). */
export function intactRecordAt(file: string): IntactRecord {
  let cached: { scope: string; id: number } | undefined | null = null;
  return {
    read(scope) {
      if (cached === null) {
        cached = undefined;
        try {
          const [s, id] = readFileSync(file, 'utf8').trim().split('\n');
          if (s !== undefined && id !== undefined && /^\d{1,10}$/.test(id)) cached = { scope: s, id: Number(id) };
        } catch {
          // none yet, or unreadable: no record
        }
      }
      return cached?.scope === scope ? cached.id : undefined;
    },
    write(scope, id) {
      cached = { scope, id };
      try {
        writeFileReplacing(file, `${scope}\n${id}\n`);
      } catch {
        // best effort (see above)
      }
    },
  };
}

/** The generation after `id`: the kernel skips 0 when its counter wraps. */
export function nextGeneration(id: number): number {
  const next = (id + 1) % 2 ** 32;
  return next === 0 ? 1 : next;
}

/** The generation before `id` (nextGeneration's inverse: 1 follows 2^32 - 1). */
export function previousGeneration(id: number): number {
  return id <= 1 ? 2 ** 32 - 1 : id - 1;
}
