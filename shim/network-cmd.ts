// `tsrun network create|ls|inspect|rm|reload`: thin wrappers over the engine's network registry.
// Every one of them first checks tsrun's firewall table and rebuilds it from the Store when it
// was lost (a flush, a firewall reload); `reload` rebuilds it unconditionally.
import { Command, Option } from 'commander';
import type { Settings } from '../config/settings.js';
import { UserError } from '../config/errors.js';
import type { Logger } from '../runtime/log.js';

type Setup = (cmd: Command) => { settings: Settings; log: Logger };
const collect = (value: string, previous: string[]) => [...previous, value];


export function networkCommand(setup: Setup): Command {
  const network = new Command('network').description('manage networks');

  network
    .command('create')
    .description('create a network')
    .argument('<name>', 'network name')
    .option('--driver <driver>', 'bridge, macvlan, ipvlan or overlay (overlay needs --store etcd://…)', 'bridge')
    .option('--subnet <cidr>', 'IPv4 subnet (default: a free /16 from 10.88-99.0.0 and 172.18-31.0.0)')
    .option('--gateway <ip>', 'IPv4 gateway (default: the first address of the subnet)')
    .option('--ipv6-subnet <cidr>', 'IPv6 subnet: containers get dual-stack addresses')
    .option('--ipv6-gateway <ip>', 'IPv6 gateway')
    .option('--internal', 'no way out: no NAT and no forwarding to other interfaces')
    .option('--mtu <n>', 'MTU of the bridge and the container interfaces')
    .option('--bridge <ifname>', 'bridge interface name (default ts-<name>)')
    .option('-o, --opt <key=value>', 'driver option, e.g. icc=false (repeatable)', collect, [])
    .option('--parent <ifname>', 'macvlan/ipvlan: the host interface whose segment the containers join')
    .option('--mode <mode>', 'macvlan: bridge (default), private, vepa, passthru; ipvlan: l2 (default), l3, l3s')
    .option('--disable-dns', 'no name resolution between the containers (they get the host\'s resolvers)')
    .option('--enable-dns', 'name resolution on a network that has it off by default (the default network tsrun)')
    .option('--vni <n>', 'overlay: VXLAN id, unique in the cluster (default: the lowest free one from 4096)')
    .action(async (name: string, f: Record<string, unknown>, cmd: Command) => {
      const { settings, log } = setup(cmd);
      if (f.disableDns === true && f.enableDns === true) throw new UserError('--disable-dns and --enable-dns contradict each other');
      const def = await withEngine(settings, log, (e) =>
        e.createNetwork({
          name,
          driver: f.driver as string,
          subnet: f.subnet as string | undefined,
          gateway: f.gateway as string | undefined,
          ipv6Subnet: f.ipv6Subnet as string | undefined,
          ipv6Gateway: f.ipv6Gateway as string | undefined,
          internal: f.internal === true,
          mtu: f.mtu as string | undefined,
          bridge: f.bridge as string | undefined,
          opts: f.opt as string[],
          parent: f.parent as string | undefined,
          mode: f.mode as string | undefined,
          vni: f.vni as string | undefined,
          dns: f.disableDns === true ? false : f.enableDns === true ? true : undefined,
        }),
      );
      process.stdout.write(`${def.name}\n`);
    });

  network
    .command('ls')
    .description('list networks')
    .option('-q, --quiet', 'names only')
    .action(async (f: { quiet?: boolean }, cmd: Command) => {
      const { settings, log } = setup(cmd);
      const nets = await withEngine(settings, log, (e) => e.networks.list());
      if (f.quiet) {
        for (const n of nets) process.stdout.write(`${n.name}\n`);
        return;
      }
      const rows = [['NAME', 'DRIVER', 'BRIDGE', 'SUBNET', 'GATEWAY', 'IPV6 SUBNET', 'INTERNAL', 'ICC']];
      for (const n of nets) rows.push([n.name, n.driver, n.bridge || (n.parent ? `(parent ${n.parent})` : '-'), n.subnet4 ?? '-', n.gateway4 ?? '-', n.subnet6 ?? '-', String(n.internal), String(n.icc)]);
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
    });

  network
    .command('inspect')
    .description('show a network: configuration, bridge, endpoints (JSON), or as a picture')
    .argument('<name>', 'network name')
    .addOption(new Option('--format <format>', 'json, text (a tree), dot (Graphviz) or svg (needs Graphviz dot)').choices(['json', 'text', 'dot', 'svg']).default('json'))
    .action(async (name: string, f: { format: string }, cmd: Command) => {
      const { settings, log } = setup(cmd);
      if (f.format !== 'json') {
        const { renderTopology } = await import('./topology-cmd.js');
        process.stdout.write(await renderTopology(settings, log, [name], f.format as 'text' | 'dot' | 'svg'));
        return;
      }
      const info = await withEngine(settings, log, (e) => e.inspectNetwork(name));
      process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
    });

  network
    .command('rm')
    .description('remove a network (refused while containers are attached)')
    .argument('<name...>', 'network names')
    .option('-f, --force', 'detach attached containers first')
    .action(async (names: string[], f: { force?: boolean }, cmd: Command) => {
      const { settings, log } = setup(cmd);
      await withEngine(settings, log, async (e) => {
        for (const name of names) {
          await e.removeNetwork(name, f.force === true);
          process.stdout.write(`${name}\n`);
        }
      });
    });

  network
    .command('connect')
    .description('connect a running container to one more network (its next interface: eth1, eth2…)')
    .argument('<network>', 'network name')
    .argument('<container>', 'container id (or a prefix of one)')
    .option('--ip <address>', 'static IPv4 address on the network')
    .option('--ip6 <address>', 'static IPv6 address on the network')
    .option('--alias <name>', 'another DNS name of the container on this network (repeatable)', collect, [])
    .option('--mac <address>', 'MAC address of the new interface')
    .action(async (name: string, container: string, f: { ip?: string; ip6?: string; alias: string[]; mac?: string }, cmd: Command) => {
      const { settings, log } = setup(cmd);
      const { connectContainer } = await import('./network-connect.js');
      await connectContainer(settings, log, { network: name, container, ip: f.ip, ip6: f.ip6, mac: f.mac, aliases: f.alias });
    });

  network
    .command('disconnect')
    .description('disconnect a container from a network (a detached one keeps it off across restarts)')
    .argument('<network>', 'network name')
    .argument('<container>', 'container id (or a prefix of one)')
    .option('-f, --force', 'no error when it is not connected; also release what a killed connect left on the network')
    .action(async (name: string, container: string, f: { force?: boolean }, cmd: Command) => {
      const { settings, log } = setup(cmd);
      const { disconnectContainer } = await import('./network-connect.js');
      await disconnectContainer(settings, log, name, container, f.force === true);
    });

  network
    .command('reload')
    .description('rebuild tsrun\'s firewall table (rules, networks, published ports) from the store, e.g. after `nft flush ruleset`')
    .action(async (_f: unknown, cmd: Command) => {
      const { settings, log } = setup(cmd);
      const done = await withEngine(settings, log, (e) => e.repairFirewall({ force: true }));
      process.stdout.write(done ? `firewall rebuilt: ${done.networks} network(s), ${done.endpoints} endpoint(s)\n` : 'no firewall (nftables not in use)\n');
    });

  return network;
}

/** The engine loads when a network command runs, not when the CLI starts. */
async function withEngine<T>(settings: Settings, log: Logger, fn: (engine: import('../runtime/engine.js').Engine) => Promise<T>): Promise<T> {
  return (await import('../runtime/context.js')).withEngine(settings, log, async (engine) => {
    await engine.repairFirewall();
    return fn(engine);
  });
}
