// Throwaway network namespaces for the firewall tests: each is pinned by an `unshare -n sleep`
// child and entered with `nsenter --net=/proc/PID/ns/net`; killing the child ends it, so nothing
// can leak into the machine's own namespace. Interface names start with "tsB".
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';

const ROOT_NETNS = readlinkSync('/proc/self/ns/net');

export class ScratchNs {
  private readonly background: ChildProcess[] = [];
  private constructor(
    readonly name: string,
    private readonly pin: ChildProcess,
  ) {}

  static async create(name: string): Promise<ScratchNs> {
    const pin = spawn('unshare', ['-n', 'sleep', 'infinity'], { stdio: 'ignore' });
    const ns = new ScratchNs(name, pin);
    for (let i = 0; i < 200; i++) {
      try {
        if (readlinkSync(`/proc/${pin.pid}/ns/net`) !== ROOT_NETNS) {
          await ns.sh('ip link set lo up');
          return ns;
        }
      } catch {
        // not started yet
      }
      await sleep(10);
    }
    pin.kill('SIGKILL');
    throw new Error(`scratch namespace ${name} did not start`);
  }

  get pid(): number {
    return this.pin.pid!;
  }

  /** For nsenter --net= and NftOptions.netns. */
  get path(): string {
    return `/proc/${this.pid}/ns/net`;
  }

  /** Runs argv inside the namespace; rejects on a non-zero exit. */
  async run(argv: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
    const r = await execa('nsenter', [`--net=${this.path}`, ...argv], { timeout: opts.timeoutMs ?? 20_000, stdin: 'ignore' });
    return String(r.stdout);
  }

  /** Like run, but never rejects. */
  async tryRun(argv: string[], opts: { timeoutMs?: number } = {}): Promise<{ ok: boolean; stdout: string; stderr: string }> {
    const r = await execa('nsenter', [`--net=${this.path}`, ...argv], { timeout: opts.timeoutMs ?? 20_000, stdin: 'ignore', reject: false });
    return { ok: r.exitCode === 0, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  async sh(script: string): Promise<string> {
    return this.run(['sh', '-ec', script]);
  }

  /** Starts a long-running process inside the namespace; killed by destroy(). */
  startBackground(argv: string[]): ChildProcess {
    const child = spawn('nsenter', [`--net=${this.path}`, ...argv], { stdio: 'ignore' });
    this.background.push(child);
    return child;
  }

  async destroy(): Promise<void> {
    for (const child of this.background) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (this.pin.exitCode === null && this.pin.signalCode === null) {
      const exited = new Promise((resolve) => this.pin.once('exit', resolve));
      this.pin.kill('SIGKILL');
      await exited;
    }
  }
}

/** Starts a `busybox httpd` answering /cgi-bin/who with "<label> <client address>". */
export async function startWhoServer(ns: ScratchNs, dir: string, label: string, port: number): Promise<void> {
  mkdirSync(path.join(dir, 'cgi-bin'), { recursive: true });
  const script = `#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s %s\\n' '${label}' "$REMOTE_ADDR"\n`;
  writeFileSync(path.join(dir, 'cgi-bin', 'who'), script, { mode: 0o755 });
  ns.startBackground(['/bin/busybox', 'httpd', '-f', '-p', String(port), '-h', dir]);
  for (let i = 0; i < 100; i++) {
    const r = await ns.tryRun(['ss', '-Hltn', `sport = :${port}`]);
    if (r.stdout.trim() !== '') return;
    await sleep(20);
  }
  throw new Error(`httpd on port ${port} in ${ns.name} did not start`);
}

/** GET http://host:port/cgi-bin/who from inside ns: the answer, or undefined if unreachable. */
export async function who(ns: ScratchNs, hostPort: string, timeoutSec = 5): Promise<string | undefined> {
  const r = await ns.tryRun(['timeout', String(timeoutSec), '/bin/busybox', 'wget', '-q', '-O', '-', `http://${hostPort}/cgi-bin/who`], {
    timeoutMs: (timeoutSec + 3) * 1000,
  });
  if (!r.ok) return undefined;
  // httpd listens on a dual-stack socket: "[::ffff:192.0.2.1]" means 192.0.2.1.
  return r.stdout.trim().replace(/\[(?:::ffff:)?([^\]]+)\]/, '$1');
}

export async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}
