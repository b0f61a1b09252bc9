// `tsrun resolver`: the DNS resolver's process (started by tsrun itself, in the background, when
// an attach needs it; see runtime/dns/server.ts). `tsrun resolver --stats` prints the running
// resolver's counters and resident memory as JSON.
import { Command } from 'commander';
import type { Settings } from '../config/settings.js';
import { UserError } from '../config/errors.js';
import type { Logger } from '../runtime/log.js';

type Setup = (cmd: Command) => { settings: Settings; log: Logger };

export function resolverCommand(setup: Setup, settingsFromParent: () => Settings | undefined): Command {
  return new Command('resolver')
    .description('the DNS resolver of user networks (started on demand; --stats shows the running one)')
    .option('--stats', 'print the running resolver\'s statistics as JSON')
    .action(async (f: { stats?: boolean }, cmd: Command) => {
      const { settings: fromFlags, log } = setup(cmd);
      const settings = settingsFromParent() ?? fromFlags;
      if (f.stats) {
        const { resolverRequest } = await import('../runtime/dns/client.js');
        const r = await resolverRequest(settings.runDir, 'stats');
        if (r === undefined) throw new UserError('no resolver is running');
        process.stdout.write(`${r}\n`);
        return;
      }
      const { openStore } = await import('../runtime/store/open.js');
      const { Resolver } = await import('../runtime/dns/server.js');
      const store = await openStore({ url: settings.store, libDir: settings.libDir, log });
      const resolver = new Resolver(settings, store, log.child({ component: 'resolver' }));
      const stop = (sig: string) => void resolver.stop(`signal ${sig}`);
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGHUP', () => void resolver.reload().catch(() => {}));
      if (await resolver.start()) await resolver.done;
      await store.close?.();
    });
}

/** The settings a resolver was started with (its parent's, whatever flags the parent had). */
export function inheritedSettings(env: NodeJS.ProcessEnv): Settings | undefined {
  if (!env.TSRUN_RESOLVER_SETTINGS) return undefined;
  return JSON.parse(env.TSRUN_RESOLVER_SETTINGS) as Settings;
}
