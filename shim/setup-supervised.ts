// setup() for the commands that supervise the DNS resolver as they start (the CLI, run.cjs's and
// rm's doors): shim/setup.ts's settings and logger, then one look at the resolver. Apart from
// shim/setup.ts so that the doors that do without it (the plain run doors, which load the
// resolver's client only when the resolver died) do not evaluate the client, its stand-ins of
// node:child_process and node:net and the synchronous control request when their bundle loads.
import { reviveResolver } from '../runtime/dns/client.js';
import { settingsAndLog, type GlobalFlags } from './setup.js';
import type { Settings } from '../config/settings.js';
import type { Logger } from '../runtime/log.js';

export function setup(g: GlobalFlags, opts: { supervise?: boolean } = {}): { settings: Settings; log: Logger } {
  const { settings, log } = settingsAndLog(g);
  // Every command supervises the DNS resolver: one file read when it is well or absent.
  if (opts.supervise !== false) reviveResolver(settings, log);
  return { settings, log };
}
