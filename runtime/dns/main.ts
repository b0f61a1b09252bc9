// The resolver's own process entry (dist/bundle/resolver.cjs). The resolver is the one tsrun process
// that stays resident, so it loads only what serving needs: the table, the wire code, the Store
// and a logger, not the CLI (commander, the engine, the drivers, nft, execa) that `tsrun resolver`
// would bring. Started by runtime/dns/client.ts with its parent's settings in the environment.
import type { Settings } from '../../config/settings.js';
import { createLogger } from '../log.js';
import { openStore } from '../store/open.js';
import { Resolver } from './server.js';
import { closeSync, fstatSync, writeSync } from 'node:fs';

/** The pipe the starting tsrun reads (client.ts spawnResolver): closed once this resolver serves
 * (or has lost the race to another), written with the reason when it cannot start. */
let reportFd = process.env.TSRUN_RESOLVER_REPORT_FD === '3' && isPipe(3) ? 3 : undefined;
delete process.env.TSRUN_RESOLVER_REPORT_FD;

/** Descriptor 3 is the starting tsrun's pipe (not a file this process opened as 3 because no
 * pipe was given: writing to and closing that would hit the log or the Store). */
function isPipe(fd: number): boolean {
  try {
    const st = fstatSync(fd);
    return st.isFIFO() || st.isSocket(); // Node gives a child its pipes as socket pairs
  } catch {
    return false;
  }
}
function report(line?: string): void {
  if (reportFd === undefined) return;
  try {
    if (line !== undefined) writeSync(reportFd, `${line}\n`);
    closeSync(reportFd);
  } catch {
    // The starting tsrun has gone: nobody to tell.
  }
  reportFd = undefined;
}

export async function main(env: NodeJS.ProcessEnv): Promise<number> {
  if (!env.TSRUN_RESOLVER_SETTINGS) {
    process.stderr.write('tsrun resolver: TSRUN_RESOLVER_SETTINGS is not set (tsrun starts the resolver itself)\n');
    return 2;
  }
  const settings = JSON.parse(env.TSRUN_RESOLVER_SETTINGS) as Settings;
  const log = createLogger({ file: settings.logFile, level: settings.logLevel, debug: false, bindings: { component: 'resolver' } });
  const store = await openStore({ url: settings.store, libDir: settings.libDir, log });
  // node:dgram instead of the batched socket (udp-batch.ts): for comparing the two, and a way out.
  const resolver = new Resolver(settings, store, log, { udp: env.TSRUN_RESOLVER_UDP === 'dgram' ? 'dgram' : 'batch' });
  process.on('SIGTERM', () => void resolver.stop('signal SIGTERM'));
  process.on('SIGINT', () => void resolver.stop('signal SIGINT'));
  process.on('SIGHUP', () => void resolver.reload().catch(() => {}));
  const serving = await resolver.start();
  report();
  if (serving) await resolver.done;
  await store.close?.();
  return 0;
}

void main(process.env).then(
  (code) => {
    process.exitCode = code;
    // As the CLI does: a connection attempt to an unreachable etcd must not hold the exit.
    setTimeout(() => process.exit(code), 500).unref();
  },
  (err: unknown) => {
    const line = `tsrun resolver: ${err instanceof Error ? err.message : String(err)}`;
    report(line);
    process.stderr.write(`${line}\n`);
    process.exit(1);
  },
);
