// `tsrun topology [--format text|dot|svg] [NETWORK...]` and the picture formats of
// `tsrun network inspect`: what tsrun built on this host, as a tree or a Graphviz graph.
import { spawnSync } from 'node:child_process';
import { Command, Option } from 'commander';
import { UserError } from '../config/errors.js';
import type { Settings } from '../config/settings.js';
import { resolveBinary } from '../runtime/binaries.js';
import type { Logger } from '../runtime/log.js';
import { FORMATS, toDot, toText, type Format } from './topology-format.js';

type Setup = (cmd: Command) => { settings: Settings; log: Logger };

export function topologyCommand(setup: Setup): Command {
  return new Command('topology')
    .description("show what tsrun built on this host: networks, bridges/parents/VXLAN devices, containers, addresses, published ports, overlay hosts")
    .argument('[network...]', 'only these networks (default: all)')
    .addOption(new Option('--format <format>', 'text (a tree), dot (Graphviz) or svg (needs Graphviz dot)').choices(FORMATS).default('text'))
    .action(async (names: string[], f: { format: Format }, cmd: Command) => {
      const { settings, log } = setup(cmd);
      process.stdout.write(await renderTopology(settings, log, names, f.format));
    });
}

/** The topology of `names` (all when empty) in `format`. */
export async function renderTopology(settings: Settings, log: Logger, names: string[], format: Format): Promise<string> {
  const { withEngine } = await import('../runtime/context.js');
  const { collectTopology } = await import('../runtime/topology.js');
  const topology = await withEngine(settings, log, (e) => collectTopology(e, names));
  if (format === 'text') return toText(topology);
  const dot = toDot(topology);
  return format === 'dot' ? dot : svgOf(dot);
}

/** Graphviz's rendering of a DOT graph. TSRUN_DOT names another dot binary. */
function svgOf(dot: string): string {
  let bin: string;
  try {
    bin = resolveBinary(process.env.TSRUN_DOT ?? 'dot');
  } catch {
    throw new UserError('--format svg needs Graphviz (the dot program), which is not installed: apt-get install graphviz, or use --format dot');
  }
  const r = spawnSync(bin, ['-Tsvg'], { input: dot, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new UserError(`dot -Tsvg failed: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n')[0]}`);
  return r.stdout;
}
