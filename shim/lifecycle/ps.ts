// `tsrun ps` and `tsrun inspect`: every container under the run directory, detached or foreground,
// with its derived status, its network endpoints (from the Store) and its published ports.
import { runcPaths } from '../runc.js';
import type { Settings } from '../../config/settings.js';
import type { Logger } from '../../runtime/log.js';
import type { PortMapping } from '../../config/ports.js';
import { openStore } from '../../runtime/store/open.js';
import { allEndpoints, endpointsOf, type EndpointRecord } from '../../runtime/records.js';
import { pathsOf } from './record.js';
import { listContainerIds, runcState, runcStates, viewOf, type ContainerView } from './status.js';
import { unreadableRecord } from '../../runtime/containers.js';
import { NoSuchContainer } from './resolve.js';

export interface PsEntry {
  id: string;
  status: string;
  exitCode?: number | undefined;
  pid?: number | undefined;
  detached: boolean;
  networks: { network: string; ipv4?: string | undefined; ipv6?: string | undefined; mac: string }[];
  ports: string[];
  created: string;
  startedAt?: string | undefined;
  finishedAt?: string | undefined;
  command: string[];
}

export async function listContainers(settings: Settings, log: Logger, all: boolean): Promise<PsEntry[]> {
  const states = await runcStates(runcPaths(settings));
  const ids = listContainerIds(settings.runDir);
  const views = ids
    .map((id) => viewOf(settings.runDir, id, states.get(id)))
    .filter((v): v is ContainerView => v !== undefined)
    .filter((v) => all || v.status === 'running' || v.status === 'paused');
  // A record that does not parse: shown as unknown (with -a, or while runc runs it), so that what
  // rm -f can remove is seen; before, only gc ever named it. Its network is the Store's.
  const unknown = ids.filter((id) => unreadableRecord(settings.runDir, id) !== undefined && (all || LIVE_STATES.has(states.get(id)?.status ?? '')));
  const endpoints = views.length + unknown.length > 0 ? await withStore(settings, log, (s) => allEndpoints(s)) : [];
  const entries = views.map((v) => entryOf(v, endpoints.filter((e) => e.containerId === v.id)));
  for (const id of unknown) entries.push(unknownEntry(id, states.get(id)?.pid, endpoints.filter((e) => e.containerId === id)));
  return entries.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

const LIVE_STATES = new Set(['running', 'paused']);

/** ps's entry of a container whose record is unreadable: its id, runc's pid, its network. */
function unknownEntry(id: string, pid: number | undefined, endpoints: EndpointRecord[]): PsEntry {
  return { id, status: 'unknown', pid, detached: false, ...networkFields(endpoints), created: '', command: [] };
}

function networkFields(endpoints: EndpointRecord[]): Pick<PsEntry, 'networks' | 'ports'> {
  return {
    networks: endpoints.map((e) => ({ network: e.network, ipv4: e.ipv4?.address, ipv6: e.ipv6?.address, mac: e.mac })),
    ports: endpoints.flatMap((e) => e.ports).map(formatPort),
  };
}

export function entryOf(v: ContainerView, endpoints: EndpointRecord[]): PsEntry {
  const l = v.lifecycle;
  return {
    id: v.id,
    status: v.status,
    exitCode: v.exitCode,
    pid: v.pid,
    detached: v.record.detached !== undefined,
    ...networkFields(endpoints),
    created: l?.created ?? v.record.created,
    startedAt: l?.startedAt ?? (v.record.detached ? undefined : v.record.created),
    finishedAt: v.finishedAt,
    command: l?.command ?? [],
  };
}

export function formatPort(p: PortMapping): string {
  const host = p.hostIp === undefined ? '0.0.0.0' : p.hostIp.includes(':') ? `[${p.hostIp}]` : p.hostIp;
  return `${host}:${p.hostPort}->${p.containerPort}/${p.protocol}`;
}

export function formatTable(entries: PsEntry[], now = Date.now()): string {
  const rows = [['CONTAINER ID', 'STATUS', 'PID', 'NETWORKS', 'PORTS', 'UPTIME', 'COMMAND']];
  for (const e of entries) {
    const status = e.status === 'exited' ? `exited (${e.exitCode ?? '?'})` : e.status;
    const nets = e.networks.map((n) => `${n.network}:${n.ipv4 ?? n.ipv6 ?? '-'}`).join(',') || '-';
    const up = e.status === 'running' && e.startedAt ? duration(now - Date.parse(e.startedAt)) : '-';
    rows.push([e.id, status, e.pid === undefined ? '-' : String(e.pid), nets, e.ports.join(',') || '-', up, truncate(e.command.join(' '), 40) || '-']);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

export function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** `tsrun inspect ID`: everything tsrun knows about one container, as JSON. */
export async function inspectContainer(settings: Settings, log: Logger, id: string): Promise<Record<string, unknown>> {
  const v = viewOf(settings.runDir, id, await runcState(runcPaths(settings), id));
  if (!v) throw unreadableRecord(settings.runDir, id) ?? new NoSuchContainer(`no such container: ${id}`);
  const endpoints = await withStore(settings, log, (s) => endpointsOf(s, id));
  const e = entryOf(v, endpoints);
  const l = v.lifecycle;
  return {
    id,
    created: e.created,
    bundle: v.record.bundle,
    command: e.command,
    detached: e.detached,
    config: l ? { ...l.options, stopSignal: l.stopSignal ?? 'SIGTERM', logMaxBytes: l.logMaxBytes ?? null, autoRemove: l.autoRemove === true } : null,
    tty: l?.tty ?? false,
    state: {
      status: v.status,
      running: v.status === 'running',
      paused: v.status === 'paused',
      pid: v.pid ?? null,
      exitCode: v.exitCode ?? null,
      startedAt: e.startedAt ?? null,
      finishedAt: e.finishedAt ?? null,
      cleanedUp: l?.cleanedUp ?? false,
      restartCount: l?.restartCount ?? 0,
    },
    monitor: v.record.detached ? { conmonPid: l?.conmonPid ?? null } : { tsrunPid: v.record.ownerPid },
    network: {
      netnsPin: v.record.netnsPin ?? null,
      endpoints: endpoints.map((ep) => ({ network: ep.network, driver: ep.driver, ifname: ep.ifname, hostIfname: ep.hostIfname, mac: ep.mac, ipv4: ep.ipv4 ?? null, ipv6: ep.ipv6 ?? null, ports: ep.ports.map(formatPort) })),
    },
    logPath: v.record.detached ? pathsOf(settings.runDir, id).log : null,
  };
}

async function withStore<T>(settings: Settings, log: Logger, fn: (s: Awaited<ReturnType<typeof openStore>>) => Promise<T>): Promise<T> {
  const store = await openStore({ url: settings.store, libDir: settings.libDir, log });
  try {
    return await fn(store);
  } finally {
    await store.close?.();
  }
}
