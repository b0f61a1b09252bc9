// Names on the command line become containers here: an exact id, or a prefix that matches one
// container only. Every id of a command is resolved before anything is done, so a typo in the
// third id of `tsrun rm a b c` changes nothing.
import { NotFoundError, UserError } from '../../config/errors.js';
import { isAlive, readRecord, unreadableRecord } from '../../runtime/containers.js';
import { listContainerIds } from './status.js';

/** A name that matches no container: exit 1, as docker's rm, stop, kill, logs… (125 is for tsrun's
 * own failures: a bad flag, a run that could not be set up). */
export class NoSuchContainer extends NotFoundError {
  readonly exitCode = 1;
}

/** The one line of the names that matched no container (rm, stop, kill name each, once the others
 * are done). */
export function noSuchContainers(names: readonly string[]): NoSuchContainer {
  return new NoSuchContainer(names.map((n) => `no such container: ${n}`).join('; '));
}

export function resolveId(runDir: string, name: string): string {
  const ids = listContainerIds(runDir);
  if (ids.includes(name)) return name;
  const matches = ids.filter((id) => id.startsWith(name));
  if (name === '' || matches.length === 0) throw new NoSuchContainer(`no such container: ${name}`);
  if (matches.length > 1) {
    throw new UserError(`container id prefix ${name} matches ${matches.length} containers (${matches.slice(0, 4).join(', ')}${matches.length > 4 ? ', …' : ''}): give more of the id`);
  }
  return matches[0]!;
}

/** With `missing`, a name that matches no container goes there instead of failing the command. */
export function resolveIds(runDir: string, names: string[], missing?: string[]): string[] {
  const ids = missing === undefined ? names.map((n) => resolveId(runDir, n)) : names.flatMap((n) => resolvedOrMissing(runDir, n, missing));
  return [...new Set(ids)];
}

/** Ids resolved, each a detached container (logs, start, wait, rm, restart need its monitor).
 * With `missing`, a name that matches no container goes there instead of failing the command
 * (rm, as docker's: the others are removed, each missing one named); any other refusal (an
 * ambiguous prefix, a live foreground container) still fails it before anything is done. With
 * `orphans` (rm -f), a container nothing owns any more goes there (signals.ts removeOrphan): its
 * record unreadable, or its tsrun gone (a foreground run or a setup killed). Before, rm -f refused
 * them ("runs in the foreground (tsrun process N)" of a process long dead) and only gc removed
 * them. */
export function detachedIds(runDir: string, names: string[], missing?: string[], orphans?: string[], verb = 'rm'): string[] {
  const ids = resolveIds(runDir, names, missing);
  const out: string[] = [];
  const orphan = (id: string, refusal: UserError): void => {
    if (orphans === undefined) throw refusal;
    orphans.push(id);
  };
  for (const id of ids) {
    const rec = readRecord(runDir, id);
    if (!rec) {
      const unreadable = unreadableRecord(runDir, id);
      if (unreadable) {
        orphan(id, unreadable);
        continue;
      }
    }
    const ownerGone = rec !== undefined && rec.detached !== 'monitored' && !isAlive(rec.ownerPid, rec.ownerStart);
    if (rec && !rec.detached) {
      if (!ownerGone) throw new UserError(`container ${id} runs in the foreground (tsrun process ${rec.ownerPid}): ${FOREGROUND_HINT[verb] ?? `tsrun ${verb} works on detached containers (run -d, create)`}`);
      orphan(id, new UserError(`container ${id} was left by a tsrun process that is gone (killed): tsrun rm -f ${id} removes it`));
      continue;
    }
    if (rec?.detached === 'setup') {
      // Its tsrun died half-way (killed while runc create ran): removed as a crashed run.
      if (!ownerGone) throw new UserError(`container ${id} is still being created`);
      orphan(id, new UserError(`container ${id} was left half-created by a tsrun process that is gone: tsrun rm -f ${id} removes it`));
      continue;
    }
    out.push(id);
  }
  return out;
}

/** What to say of a foreground container to the verbs that need a detached one. */
const FOREGROUND_HINT: Record<string, string> = {
  rm: 'stop it, or end that process',
  // Its output is that tsrun's own stdout and stderr: there is no log to read.
  logs: "its output goes to that process's stdout and stderr, and no log is kept (tsrun logs reads those of run -d and create)",
  attach: "its stdio is that process's own: there is nothing to attach to (tsrun attach joins those of run -d and create)",
};

function resolvedOrMissing(runDir: string, name: string, missing: string[]): string[] {
  try {
    return [resolveId(runDir, name)];
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
    missing.push(name);
    return [];
  }
}
