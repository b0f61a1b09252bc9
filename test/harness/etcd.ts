// A real etcd (Debian's etcd-server) for tests, always inside a sandbox namespace: it listens on
// a unix socket in its temp directory (so the test process itself, in the machine's namespace,
// can reach it without any link into that namespace) and, when asked, on one address of the
// sandbox (the simulated hosts' underlay). Its peer port stays on the namespace's loopback.
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
  /** Set by enableAuth: how tsrun (the URL) and the test process (store()) authenticate. */
  private auth: { user: string; passwordFile: string; rootPasswordFile: string; client?: { cert: string; key: string } } | undefined;
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

  /** The tsrun store URL for the TCP listener, with a key prefix of its own: etcds://… with the
   * CA, client certificate, user and password file when the server runs TLS and auth. */
  url(prefix: string): string {
    if (!this.address) throw new Error('etcd was started without a TCP address');
    if (!this.tls) return `etcd://${this.address}:2379/${prefix}`;
    const q = new URLSearchParams({ ca: this.tls.ca });
    const client = this.auth?.client ?? this.client;
    if (client) q.set('cert', client.cert), q.set('key', client.key);
    if (this.auth) q.set('user', this.auth.user), q.set('password-file', this.auth.passwordFile);
    return `etcds://${this.address}:2379/${prefix}?${q.toString()}`;
  }

  /** An EtcdStore on the unix socket, for the test process itself (as root once auth is on). */
  store(prefix: string): EtcdStore {
    const auth = this.auth ? { user: 'root', passwordFile: this.auth.rootPasswordFile } : undefined;
    return new EtcdStore({ endpoints: [this.socketTarget], prefix: `/${prefix}/`, display: 'test etcd', auth });
  }

  private client: { cert: string; key: string } | undefined;
  /** The client certificate tsrun presents (the server runs --client-cert-auth with TLS). */
  useClientCertificate(client: { cert: string; key: string }): void {
    this.client = client;
  }

  /**
   * Turns on etcd authentication: a root user, and `user` with read-write access to every key
   * (tsrun's tests use several prefixes), whose password goes to a 0600 file for the etcds:// URL.
   */
  enableAuth(user: string, client?: { cert: string; key: string }): void {
    const rootPasswordFile = path.join(this.dir, 'root-password');
    const passwordFile = path.join(this.dir, `${user}-password`);
    writeFileSync(rootPasswordFile, 'root-secret\n', { mode: 0o600 });
    writeFileSync(passwordFile, `${user}-secret\n`, { mode: 0o600 });
    const ctl = (...args: string[]) =>
      execFileSync('etcdctl', ['--endpoints', `unix://${path.join(this.dir, 'etcd.sock:0')}`, ...args], { stdio: 'pipe', env: { ...process.env, ETCDCTL_API: '3' } });
    ctl('user', 'add', 'root:root-secret');
    ctl('user', 'add', `${user}:${user}-secret`);
    ctl('role', 'add', user);
    ctl('role', 'grant-permission', '--from-key', user, 'readwrite', '/');
    ctl('user', 'grant-role', user, user);
    ctl('auth', 'enable');
    this.auth = { user, passwordFile, rootPasswordFile, ...(client ? { client } : {}) };
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
