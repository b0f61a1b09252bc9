// `tsrun cni install|uninstall`: registers tsrun as a CNI plugin for CRI-O, containerd and
// podman's CNI backend. The plugin itself never comes here: shim/main.ts sends a call with
// CNI_COMMAND set straight to cni/main.ts.
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import type { Settings } from '../config/settings.js';
import type { Logger } from '../runtime/log.js';

type Setup = (cmd: Command) => { settings: Settings; log: Logger };

export function cniCommand(setup: Setup): Command {
  const cni = new Command('cni').description('tsrun as a CNI plugin (CRI-O, containerd, podman\'s CNI backend): install writes the plugin and a conflist');

  cni
    .command('install')
    .description('write an executable `tsrun` into the CNI plugin directory and a conflist into the configuration directory')
    .requiredOption('--bin-dir <dir>', 'CNI plugin directory (e.g. /opt/cni/bin)')
    .requiredOption('--conf-dir <dir>', 'CNI configuration directory (e.g. /etc/cni/net.d)')
    .option('--network <name>', 'an existing tsrun network (default: the network "tsrun", created on first use)')
    .action(async (f: { binDir: string; confDir: string; network?: string }, cmd: Command) => {
      const { settings, log } = setup(cmd);
      if (f.network !== undefined) {
        // Refuse a typo now rather than at the first container start.
        const { withEngine } = await import('../runtime/context.js');
        await withEngine(settings, log, (e) => e.networks.require(f.network!));
      }
      const { install } = await import('../cni/install.js');
      const { resolveBinary } = await import('../runtime/binaries.js');
      const root = (cmd.optsWithGlobals() as { root?: string }).root ?? nonEmpty(process.env.TSRUN_ROOT);
      const env: Record<string, string> = {};
      if (root !== undefined) env.TSRUN_ROOT = path.resolve(root);
      env.TSRUN_STORE = settings.store;
      env.TSRUN_LOG = settings.logFile;
      env.TSRUN_LOG_LEVEL = settings.logLevel;
      env.TSRUN_NFT = resolveBinary(settings.nft);
      // The wrapper runs the bundle's entry (tsrun.cjs) with this node (node itself by its
      // shebang: cni/install.ts), as a hook is registered, not the sh launcher: a sh before node
      // cost every plugin call ~1 ms, and the launcher's one choice (TSRUN_SNAPSHOT=1, the door's
      // start-up snapshot) measured slower.
      const { hookRunner } = await import('../hook/register.js');
      const self = hookRunner(realpathSync(process.execPath), realpathSync(path.resolve(process.argv[1] ?? '')));
      for (const file of install({ binDir: path.resolve(f.binDir), confDir: path.resolve(f.confDir), network: f.network, node: self.node, entry: self.entry, env })) {
        process.stdout.write(`${file}\n`);
      }
    });

  cni
    .command('uninstall')
    .description('remove the conflists written by install (one network\'s with --network), and the plugin with the last one')
    .requiredOption('--bin-dir <dir>', 'CNI plugin directory')
    .requiredOption('--conf-dir <dir>', 'CNI configuration directory')
    .option('--network <name>', 'only this network\'s conflist')
    .action(async (f: { binDir: string; confDir: string; network?: string }) => {
      const { uninstall } = await import('../cni/install.js');
      for (const file of uninstall({ binDir: path.resolve(f.binDir), confDir: path.resolve(f.confDir), network: f.network })) process.stdout.write(`${file}\n`);
    });

  return cni;
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}
