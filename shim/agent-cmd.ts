// `tsrun agent`: the overlay agent of this host, in the foreground until SIGTERM or SIGINT (a
// systemd unit ships in scripts/systemd/). JSON log lines go to the log file; readable ones to
// stderr, where a service manager collects them.
import { Command } from 'commander';
import { isIP } from 'node:net';
import { UserError } from '../config/errors.js';
import type { Settings } from '../config/settings.js';
import { fileSink, levelValue, loggerTo, stderrSink, type LogSink, type Logger } from '../runtime/log.js';

type Setup = (cmd: Command) => { settings: Settings; log: Logger };

const DEFAULT_TTL = 15;
const DEFAULT_RESYNC = 30;

export function agentCommand(setup: Setup): Command {
  return new Command('agent')
    .description('run this host\'s overlay agent in the foreground: register the host in etcd and program its VXLAN devices')
    .option('--advertise-address <ip>', 'underlay address other hosts tunnel to (default: the source address of the route towards etcd)')
    .option('--ttl <seconds>', `lease TTL: how long this host's entries outlive a dead agent (default ${DEFAULT_TTL})`)
    .option('--resync <seconds>', `interval of full resynchronization with etcd and the kernel (default ${DEFAULT_RESYNC})`)
    .action(async (f: { advertiseAddress?: string; ttl?: string; resync?: string }, cmd: Command) => {
      const { settings } = setup(cmd);
      const ttl = seconds('--ttl', f.ttl, DEFAULT_TTL, 2);
      const resync = seconds('--resync', f.resync, DEFAULT_RESYNC, 1);
      if (f.advertiseAddress !== undefined && isIP(f.advertiseAddress) !== 4) throw new UserError(`invalid --advertise-address ${JSON.stringify(f.advertiseAddress)}: expected an IPv4 address of this host`);
      const log = agentLogger(settings);
      const { openStore } = await import('../runtime/store/open.js');
      const { clusterOf } = await import('../runtime/store/scoped.js');
      const { parseEtcdUrl } = await import('../runtime/store/etcd.js');
      const { OverlayAgent } = await import('../runtime/agent/overlay.js');
      const store = await openStore({ url: settings.store, libDir: settings.libDir, log });
      const cluster = clusterOf(store);
      try {
        if (!cluster) throw new UserError('tsrun agent needs a cluster store: pass --store etcd://HOST:PORT (or set TSRUN_STORE)');
        const agent = new OverlayAgent({
          store,
          cluster,
          runDir: settings.runDir,
          advertiseAddress: f.advertiseAddress,
          etcdEndpoint: parseEtcdUrl(settings.store).endpoints[0],
          ttlSeconds: ttl,
          resyncSeconds: resync,
          log,
        });
        const stopping = new Promise<NodeJS.Signals>((resolve) => {
          process.once('SIGTERM', () => resolve('SIGTERM'));
          process.once('SIGINT', () => resolve('SIGINT'));
        });
        await agent.start();
        const stopGuard = await guardFirewall(settings, store, log, () => agent.underlay());
        const sig = await stopping;
        log.info({ signal: sig }, 'stopping');
        stopGuard();
        await agent.stop();
      } finally {
        await store.close?.();
      }
    });
}

function seconds(flag: string, text: string | undefined, dflt: number, min: number): number {
  if (text === undefined) return dflt;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > 3600) throw new UserError(`invalid ${flag} ${JSON.stringify(text)}: use whole seconds from ${min} to 3600`);
  return Number(text);
}

/** The log file as for every command, plus readable lines on stderr at the same level. */
function agentLogger(settings: Settings): Logger {
  const level = settings.debug ? 'debug' : settings.logLevel;
  const at = levelValue(level === 'silent' ? 'fatal' : level);
  const sinks: LogSink[] = [stderrSink(at)];
  // no log file: stderr still has everything
  const file = fileSink(settings.logFile, at);
  if (file) sinks.push(file);
  return loggerTo(level, sinks, { component: 'agent' });
}

/** How often the agent checks tsrun's firewall table (one terse listing). */
const FIREWALL_CHECK_MS = 500;

/**
 * Restores tsrun's firewall table within a second of a flush (`nft flush ruleset`, a reload of
 * nftables.service): a cheap periodic check against the fingerprint, a rebuild from the Store
 * when it fails. Never two checks at once.
 */
async function guardFirewall(settings: Settings, store: import('../runtime/store/store.js').Store, log: Logger, underlay: () => { local: string[]; peers: string[] }): Promise<() => void> {
  const { engineFor } = await import('../runtime/context.js');
  const engine = engineFor(store, settings, log);
  const firewall = engine.firewall();
  let busy = false;
  let applied = '';
  let ticks = 0;
  const tick = async () => {
    // Another command may have rebuilt the table (without the agent's sets): refill now and then.
    if (++ticks % 20 === 0) applied = '';
    const rebuilt = await engine.repairFirewall();
    if (rebuilt) log.warn(rebuilt, 'firewall table was missing or changed: rebuilt from the store');
    // The VXLAN source filter follows the registered hosts (and comes back after a rebuild).
    const want = underlay();
    const key = JSON.stringify(want);
    if (rebuilt || key !== applied) {
      await firewall.setUnderlay(want.local, want.peers);
      applied = key;
      log.info(want, 'VXLAN accepted from registered hosts only');
    }
  };
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    tick()
      .catch((err: Error) => log.warn({ err: err.message }, 'firewall check failed'))
      .finally(() => (busy = false));
  }, FIREWALL_CHECK_MS);
  return () => clearInterval(timer);
}
