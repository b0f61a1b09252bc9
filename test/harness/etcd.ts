// A real etcd (Debian's etcd-server) for tests, always inside a sandbox namespace: it listens on
// a unix socket in its temp directory (so the test process itself, in the machine's namespace,
// can reach it without any link into that namespace) and, when asked, on one address of the
// sandbox (the simulated hosts' underlay). Its peer port stays on the namespace's loopback.
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Netns, waitFor } from './sandbox.js';
import { EtcdStore } from '../../runtime/store/etcd.js';

export const ETCD_BINARY = '/usr/bin/etcd';
export const haveEtcd = existsSync(ETCD_BINARY);

export interface EtcdServerOptions {
  /** Also listen on this address of the namespace (port 2379). */
  address?: string;
  /** Serve that address over TLS with this server certificate; `ca`: require client certificates
   * signed by it. The unix socket stays plain (the test's own setup channel). */
  tls?: { cert: string; key: string; ca: string };
}

export class EtcdServer {
  private proc: ChildProcess | undefined;
  private stderr = '';
  private constructor(readonly ns: Netns, readonly dir: string, readonly address: string | undefined, readonly tls?: EtcdServerOptions['tls']) {}

  static async start(ns: Netns, opts: EtcdServerOptions = {}): Promise<EtcdServer> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-etcd-'));
    const server = new EtcdServer(ns, dir, opts.address, opts.tls);
    await server.launch();
    return server;
  }

  /** grpc target of the unix socket (etcd names the file host:port, relative to its cwd). */
  get socketTarget(): string {
    return `unix:${path.join(this.dir, 'etcd.sock:0')}`;
  }

  /** The tsrun store URL for the TCP listener, with a key prefix of its own. */
  url(prefix: string): string {
    if (!this.address) throw new Error('etcd was started without a TCP address');
    return `etcd://${this.address}:2379/${prefix}`;
  }

  /** An EtcdStore on the unix socket, for the test process itself. */
  store(prefix: string): EtcdStore {
    return new EtcdStore({ endpoints: [this.socketTarget], prefix: `/${prefix}/`, display: 'test etcd' });
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Starts (or restarts, keeping its data) the server and waits until it answers. */
  async launch(): Promise<void> {
    const scheme = this.tls ? 'https' : 'http';
    const clientUrls = [`unix://etcd.sock:0`, ...(this.address ? [`${scheme}://${this.address}:2379`] : [])];
    const tlsArgs = this.tls ? ['--cert-file', this.tls.cert, '--key-file', this.tls.key, '--trusted-ca-file', this.tls.ca, '--client-cert-auth'] : [];
    const args = [
      '--name', 'tsrun-test',
      '--data-dir', path.join(this.dir, 'data'),
      '--listen-client-urls', clientUrls.join(','),
      '--advertise-client-urls', this.address ? `${scheme}://${this.address}:2379` : 'http://127.0.0.1:2379',
      ...tlsArgs,
      '--listen-peer-urls', 'http://127.0.0.1:2380',
      '--initial-advertise-peer-urls', 'http://127.0.0.1:2380',
      '--initial-cluster', 'tsrun-test=http://127.0.0.1:2380',
      '--logger', 'zap', '--log-level', 'error',
    ];
    rmSync(path.join(this.dir, 'etcd.sock:0'), { force: true });
    // cwd: etcd creates the unix socket relative to it.
    this.proc = this.ns.spawn('sh', ['-c', `cd ${JSON.stringify(this.dir)} && exec ${ETCD_BINARY} "$@"`, 'etcd', ...args]);
    this.stderr = '';
    this.proc.stderr?.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    this.proc.stdout?.resume();
    await waitFor('the etcd socket', () => existsSync(path.join(this.dir, 'etcd.sock:0')) || !this.running, 20_000);
    if (!this.running) throw new Error(`etcd exited: ${this.stderr}`);
    const probe = this.store('probe');
    try {
      for (let i = 0; ; i++) {
        try {
          await probe.get('ready');
          break;
        } catch (err) {
          if (i > 100) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    } finally {
      await probe.close();
    }
  }

  /** Stops the server (SIGKILL: as abrupt as a crash); its data stays for launch(). */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || !this.running) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
