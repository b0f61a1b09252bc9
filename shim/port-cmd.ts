// `tsrun port CONTAINER [PRIVATE_PORT[/PROTO]]`: the container's published ports, in docker's
// format (shim/port-format.ts), from its endpoint records in the Store (a container that is not
// wired, stopped or without a network, has none). Reads only: no engine, no firewall check.
import { Command } from 'commander';
import type { Settings } from '../config/settings.js';
import { NotFoundError } from '../config/errors.js';
import type { Logger } from '../runtime/log.js';
import { parsePrivatePort, portLines } from './port-format.js';

type Setup = (cmd: Command) => { settings: Settings; log: Logger };

/** docker's exit status for a port that is not published (its daemon errors are 1). */
class NoPublicPort extends NotFoundError {
  readonly exitCode = 1;
}

export function portCommand(setup: Setup): Command {
  return new Command('port')
    .description("list a container's published ports, or the host side of one private port (docker's format)")
    .argument('<container>', 'container id (or a prefix of one)')
    .argument('[port]', 'PRIVATE_PORT[/tcp|/udp] (tcp when no protocol is given)')
    .action(async (name: string, port: string | undefined, _f: unknown, cmd: Command) => {
      const { settings, log } = setup(cmd);
      const only = port === undefined ? undefined : parsePrivatePort(port);
      const { resolveId } = await import('./lifecycle/resolve.js');
      const { unreadableRecord, readRecord } = await import('../runtime/containers.js');
      const id = resolveId(settings.runDir, name);
      if (!readRecord(settings.runDir, id)) {
        const bad = unreadableRecord(settings.runDir, id);
        if (bad) throw bad;
      }
      const { openStore } = await import('../runtime/store/open.js');
      const { endpointsOf } = await import('../runtime/records.js');
      const store = await openStore({ url: settings.store, libDir: settings.libDir, log });
      let endpoints;
      try {
        endpoints = await endpointsOf(store, id);
      } finally {
        await store.close?.();
      }
      const lines = portLines(
        endpoints.map((e) => ({ ports: e.ports, ipv4: e.ipv4 !== undefined, ipv6: e.ipv6 !== undefined })),
        only,
      );
      if (lines === undefined) throw new NoPublicPort(`no public port '${only!.port}/${only!.protocol}' published for ${id}`);
      process.stdout.write(lines.map((l) => `${l}\n`).join(''));
    });
}
