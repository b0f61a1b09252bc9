// Driving tsrun as a CNI plugin the way runtimes do: the parameters in the environment, the
// plugin configuration on stdin, the plugin run in the runtime's namespace (the sandbox host).
// `chain` is a small libcni: it runs a conflist's plugins in order for ADD and CHECK and in
// reverse for DEL, derives each one's runtimeConfig from its capabilities, and hands each the
// previous result, so tsrun can be tested in a chain with the reference plugins in /usr/lib/cni.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Netns, TSRUN_BIN, type SandboxHost } from '../../harness/sandbox.js';

export const REFERENCE_PLUGINS = '/usr/lib/cni';
export const haveReferencePlugins = existsSync(path.join(REFERENCE_PLUGINS, 'portmap'));

export interface Attachment {
  containerId: string;
  netns?: string | undefined;
  ifname?: string | undefined;
  args?: string | undefined;
}

export interface CniCall {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stdout as JSON (the result, the version list or the error object), if it parses. */
  json: any;
}

export type Conf = Record<string, unknown>;

/** One plugin call: `type` is tsrun (the bundle) or a reference plugin. */
export function callPlugin(host: SandboxHost, command: string, conf: Conf | string, at: Attachment | undefined, env: NodeJS.ProcessEnv = {}): CniCall {
  const type = typeof conf === 'string' ? 'tsrun' : String(conf.type ?? 'tsrun');
  const [cmd, args] = type === 'tsrun' ? [TSRUN_BIN, []] : [path.join(REFERENCE_PLUGINS, type), []];
  const cniEnv: NodeJS.ProcessEnv = { ...host.env, CNI_COMMAND: command, CNI_PATH: REFERENCE_PLUGINS, ...env };
  if (at) {
    cniEnv.CNI_CONTAINERID = at.containerId;
    cniEnv.CNI_IFNAME = at.ifname ?? 'eth0';
    if (at.netns !== undefined) cniEnv.CNI_NETNS = at.netns;
    if (at.args !== undefined) cniEnv.CNI_ARGS = at.args;
  }
  const r = host.ns.exec(cmd, args, { input: typeof conf === 'string' ? conf : JSON.stringify(conf), env: cniEnv });
  let json: unknown;
  try {
    json = r.stdout.trim() === '' ? undefined : JSON.parse(r.stdout);
  } catch {
    json = undefined;
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json };
}

/** callPlugin without waiting: for runtimes' parallel calls on different containers. */
export function callPluginAsync(host: SandboxHost, command: string, conf: Conf, at: Attachment): Promise<CniCall> {
  const env: NodeJS.ProcessEnv = { ...host.env, CNI_COMMAND: command, CNI_PATH: REFERENCE_PLUGINS, CNI_CONTAINERID: at.containerId, CNI_IFNAME: at.ifname ?? 'eth0' };
  if (at.netns !== undefined) env.CNI_NETNS = at.netns;
  const child = host.ns.spawn(TSRUN_BIN, [], { env });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin!.end(JSON.stringify(conf));
  return new Promise((resolve) => {
    child.once('close', (status) => {
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ status, stdout, stderr, json });
    });
  });
}

export interface Conflist {
  cniVersion: string;
  name: string;
  plugins: Conf[];
}

/** The request config of one plugin (SPEC.md section 3): name, version, runtimeConfig, prevResult. */
function derive(list: Conflist, plugin: Conf, capabilityArgs: Record<string, unknown>, prevResult: unknown): Conf {
  const { capabilities, ...rest } = plugin as Conf & { capabilities?: Record<string, boolean> };
  const runtimeConfig: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(capabilities ?? {})) if (on && capabilityArgs[cap] !== undefined) runtimeConfig[cap] = capabilityArgs[cap];
  return {
    ...rest,
    cniVersion: list.cniVersion,
    name: list.name,
    ...(Object.keys(runtimeConfig).length > 0 ? { runtimeConfig } : {}),
    ...(prevResult !== undefined ? { prevResult } : {}),
  };
}

/** ADD through the whole list; returns the final result, or the failing call. */
export function chainAdd(host: SandboxHost, list: Conflist, at: Attachment, caps: Record<string, unknown> = {}): { result?: any; failed?: CniCall & { plugin: string } } {
  let prev: unknown;
  for (const p of list.plugins) {
    const r = callPlugin(host, 'ADD', derive(list, p, caps, prev), at);
    if (r.status !== 0) return { failed: { ...r, plugin: String(p.type) } };
    prev = r.json;
  }
  return { result: prev };
}

/** DEL in reverse order, each plugin given the final ADD result. */
export function chainDel(host: SandboxHost, list: Conflist, at: Attachment, result: unknown, caps: Record<string, unknown> = {}): CniCall[] {
  return [...list.plugins].reverse().map((p) => callPlugin(host, 'DEL', derive(list, p, caps, result), at));
}

/** CHECK in order, each plugin given the final ADD result; the first failure stops it. */
export function chainCheck(host: SandboxHost, list: Conflist, at: Attachment, result: unknown, caps: Record<string, unknown> = {}): CniCall | undefined {
  for (const p of list.plugins) {
    const r = callPlugin(host, 'CHECK', derive(list, p, caps, result), at);
    if (r.status !== 0) return r;
  }
  return undefined;
}

/** A "container": a network namespace of its own, like the pause container's. */
export async function containerNs(name: string): Promise<Netns> {
  return Netns.create(name);
}

/** An HTTP server in `ns` answering `body` on every path, with node (no busybox NSS trouble). */
export function httpServer(ns: Netns, port: number, body: string) {
  const script = `require('http').createServer((q,s)=>s.end(${JSON.stringify(body)})).listen(${port},'::',()=>console.log('listening'))`;
  const child = ns.spawn(process.execPath, ['-e', script]);
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
    child.once('exit', (code) => reject(new Error(`http server exited ${code}`)));
  });
  return { ready, stop: () => child.kill('SIGKILL') };
}

/** Addresses (CIDR) of `dev` inside `ns`. */
export function addressesOf(ns: Netns | { exec: Netns['exec'] }, dev: string): string[] {
  const r = ns.exec('ip', ['-j', 'addr', 'show', 'dev', dev]);
  if (r.status !== 0) return [];
  const rows = JSON.parse(r.stdout || '[]') as { addr_info: { local: string; prefixlen: number; scope: string }[] }[];
  return rows.flatMap((row) => row.addr_info.filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`));
}
