// `tsrun attach [--no-stdin] [--detach-keys KEYS] ID`: built only when it is the command asked for
// (shim/cli.ts ON_DEMAND); the socket work is in attach.ts, loaded when it runs.
import { Command } from 'commander';
import type { Settings } from '../../config/settings.js';
import type { Logger } from '../../runtime/log.js';
import { DEFAULT_DETACH_KEYS, parseDetachKeys } from './attach-keys.js';

type Setup = (cmd: Command) => { settings: Settings; log: Logger };

export function attachCommand(setup: Setup, onExitCode: (code: number) => void): Command {
  return new Command('attach')
    .description("join this terminal to a detached container's stdio (conmon's attach socket); ctrl-p ctrl-q detaches")
    .argument('<id>', 'container id (or a prefix of one)')
    .option('--no-stdin', 'do not send this terminal\'s input to the container')
    .option('--detach-keys <keys>', `the key sequence that detaches (default ${DEFAULT_DETACH_KEYS}; "" for none)`, DEFAULT_DETACH_KEYS)
    .action(async (name: string, f: { stdin: boolean; detachKeys: string }, cmd: Command) => {
      const { settings } = setup(cmd);
      parseDetachKeys(f.detachKeys); // a bad value: one line before anything is opened
      const { detachedIds } = await import('./resolve.js');
      const [id] = detachedIds(settings.runDir, [name], undefined, undefined, 'attach');
      const { attachContainer } = await import('./attach.js');
      onExitCode(await attachContainer(settings, id!, { noStdin: f.stdin === false, detachKeys: f.detachKeys }));
    });
}
