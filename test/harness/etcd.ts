// A real etcd (Debian's etcd-server) for tests, always inside a sandbox namespace: it listens on
// a unix socket in its temp directory (so the test process itself, in the machine's namespace,
// can reach it without any link into that namespace) and, when asked, on one address of the
// sandbox (the simulated hosts' underlay). A single server keeps its peer port on the
// namespace's loopback; an EtcdCluster's members each run in a namespace of their own and talk
// raft to each other over their underlay addresses (port 2380).
import type { ChildProcess } from 'node:child_process';
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
  /** A member of a cluster (EtcdCluster): its name, the whole --initial-cluster and its token.
   * Needs `address` (the peer URL is http://ADDRESS:2380). */
  member?: { name: string; initialCluster: string; token: string };
  /** Prefix of the private temp directory (data, socket), default "tsrun-etcd-". */
  dirPrefix?: string;
}

/** What one member says about the cluster (`etcdctl endpoint status`); ids as decimal strings
 * (they are 64-bit: JSON numbers would lose their low bits). */
export interface EtcdMemberStatus {
  memberId: string;
  leaderId: string;
  raftTerm: string;
}

export class EtcdServer {
  private proc: ChildProcess | undefined;
  /** Set by enableAuth: how tsrun (the URL) and the test process (store()) authenticate. */
  private auth: { user: string; passwordFile: string; rootPasswordFile: string; client?: { cert: string; key: string } } | undefined;
  private stderr = '';
  private constructor(
    readonly ns: Netns,
    readonly dir: string,
    readonly address: string | undefined,
    readonly tls?: EtcdServerOptions['tls'],
    readonly member?: EtcdServerOptions['member'],
  ) {}

  static async start(ns: Netns, opts: EtcdServerOptions = {}): Promise<EtcdServer> {
    const server = EtcdServer.prepare(ns, opts);
    try {
      await server.launch();
    } catch (err) {
      await server.destroy();
      throw err;
    }
    return server;
  }

  /** The server with its directory, not started (EtcdCluster starts its members together). */
  static prepare(ns: Netns, opts: EtcdServerOptions = {}): EtcdServer {
    if (opts.member && !opts.address) throw new Error('an etcd cluster member needs an address');
    const dir = mkdtempSync(path.join(os.tmpdir(), opts.dirPrefix ?? 'tsrun-etcd-'));
    return new EtcdServer(ns, dir, opts.address, opts.tls, opts.member);
  }

  get name(): string {
    return this.member?.name ?? 'tsrun-test';
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
    const ctl = (...args: string[]) => this.etcdctl(args);
    ctl('user', 'add', 'root:root-secret');
    ctl('user', 'add', `${user}:${user}-secret`);
    ctl('role', 'add', user);
    ctl('role', 'grant-permission', '--from-key', user, 'readwrite', '/');
    ctl('user', 'grant-role', user, user);
    ctl('auth', 'enable');
    this.auth = { user, passwordFile, rootPasswordFile, ...(client ? { client } : {}) };
  }

  /** etcdctl on this server's unix socket, run inside its namespace; throws when it fails. */
  etcdctl(args: string[], timeoutMs = 10_000): string {
    const r = this.ns.exec('etcdctl', ['--endpoints', `unix://${path.join(this.dir, 'etcd.sock:0')}`, '--command-timeout', `${Math.ceil(timeoutMs / 1000)}s`, ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      timeoutMs: timeoutMs + 2000,
    });
    if (r.status !== 0) throw new Error(`etcdctl ${args.join(' ')} on ${this.name} → ${r.status}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** This member's id and the leader it follows (leaderId "0": it knows of none). */
  status(timeoutMs = 3000): EtcdMemberStatus {
    const out = this.etcdctl(['endpoint', 'status', '-w', 'json'], timeoutMs);
    const field = (name: string): string => {
      const m = new RegExp(`"${name}":(\\d+)`).exec(out);
      if (!m) throw new Error(`etcdctl endpoint status on ${this.name}: no ${name} in ${out.trim()}`);
      return m[1]!;
    };
    return { memberId: field('member_id'), leaderId: field('leader'), raftTerm: field('raft_term') };
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Starts (or restarts, keeping its data) the server and waits until it answers. */
  async launch(): Promise<void> {
    const scheme = this.tls ? 'https' : 'http';
    const clientUrls = [`unix://etcd.sock:0`, ...(this.address ? [`${scheme}://${this.address}:2379`] : [])];
    const tlsArgs = this.tls ? ['--cert-file', this.tls.cert, '--key-file', this.tls.key, '--trusted-ca-file', this.tls.ca, '--client-cert-auth'] : [];
    // A member's peers reach it on its address; a lone server keeps raft on its loopback. On a
    // restart (data dir present) etcd ignores the --initial-* flags and rejoins as it was.
    const peerUrl = this.member ? `http://${this.address}:2380` : 'http://127.0.0.1:2380';
    const clusterArgs = this.member
      ? ['--initial-cluster', this.member.initialCluster, '--initial-cluster-token', this.member.token, '--initial-cluster-state', 'new']
      : ['--initial-cluster', `${this.name}=${peerUrl}`];
    const args = [
      '--name', this.name,
      '--data-dir', path.join(this.dir, 'data'),
      '--listen-client-urls', clientUrls.join(','),
      '--advertise-client-urls', this.address ? `${scheme}://${this.address}:2379` : 'http://127.0.0.1:2379',
      ...tlsArgs,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      ...clusterArgs,
      '--logger', 'zap', '--log-level', 'error',
    ];
    rmSync(path.join(this.dir, 'etcd.sock:0'), { force: true });
    // cwd: etcd creates the unix socket relative to it.
    this.proc = this.ns.spawn('sh', ['-c', `cd ${JSON.stringify(this.dir)} && exec ${ETCD_BINARY} "$@"`, 'etcd', ...args]);
    this.stderr = '';
    this.proc.stderr?.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    this.proc.stdout?.resume();
    await waitFor(`the socket of etcd ${this.name}`, () => existsSync(path.join(this.dir, 'etcd.sock:0')) || !this.running, 20_000);
    if (!this.running) throw new Error(`etcd ${this.name} exited: ${this.stderr}`);
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

/** One member of an EtcdCluster: its namespace and its address there. */
export interface EtcdMemberSpec {
  ns: Netns;
  address: string;
}

/**
 * A cluster of etcd members, each in its own sandbox namespace on the underlay, with a private
 * data directory. Members are started together (a member answers nothing until a quorum is up),
 * killed with SIGKILL (a crash: its data stays) and relaunched into the same cluster.
 */
export class EtcdCluster {
  private constructor(readonly members: EtcdServer[], readonly tls: EtcdServerOptions['tls']) {}

  static async start(specs: EtcdMemberSpec[], opts: { tls?: EtcdServerOptions['tls']; dirPrefix?: string; token?: string } = {}): Promise<EtcdCluster> {
    const names = specs.map((_, i) => `m${i + 1}`);
    const initialCluster = specs.map((s, i) => `${names[i]}=http://${s.address}:2380`).join(',');
    const token = opts.token ?? `tsrun-test-${process.pid}-${Date.now()}`;
    const members = specs.map((s, i) =>
      EtcdServer.prepare(s.ns, {
        address: s.address,
        ...(opts.tls ? { tls: opts.tls } : {}),
        member: { name: names[i]!, initialCluster, token },
        dirPrefix: opts.dirPrefix ?? `tsrun-etcd-${names[i]}-`,
      }),
    );
    const cluster = new EtcdCluster(members, opts.tls);
    try {
      await Promise.all(members.map((m) => m.launch()));
      await cluster.waitForLeader();
    } catch (err) {
      await cluster.destroy();
      throw err;
    }
    return cluster;
  }

  get running(): EtcdServer[] {
    return this.members.filter((m) => m.running);
  }

  private client: { cert: string; key: string } | undefined;
  useClientCertificate(client: { cert: string; key: string }): void {
    this.client = client;
    for (const m of this.members) m.useClientCertificate(client);
  }

  /** The tsrun store URL naming every member: etcd[s]://A:2379,B:2379,C:2379/PREFIX[?tls…]. */
  url(prefix: string): string {
    const hosts = this.members.map((m) => `${m.address}:2379`).join(',');
    if (!this.tls) return `etcd://${hosts}/${prefix}`;
    const q = new URLSearchParams({ ca: this.tls.ca });
    if (this.client) q.set('cert', this.client.cert), q.set('key', this.client.key);
    return `etcds://${hosts}/${prefix}?${q.toString()}`;
  }

  /** An EtcdStore for the test process, on the unix sockets of the members running now. */
  store(prefix: string): EtcdStore {
    const live = this.running;
    if (live.length === 0) throw new Error('no etcd member is running');
    return new EtcdStore({ endpoints: live.map((m) => m.socketTarget), prefix: `/${prefix}/`, display: 'test etcd cluster' });
  }

  /**
   * The leader, when every running member that answers names the same one and it is running;
   * undefined during an election (or while members disagree).
   */
  leader(): EtcdServer | undefined {
    const seen: { member: EtcdServer; status: EtcdMemberStatus }[] = [];
    for (const member of this.running) {
      try {
        seen.push({ member, status: member.status() });
      } catch {
        // not answering (electing, or just killed)
      }
    }
    const leaderIds = new Set(seen.map((s) => s.status.leaderId));
    if (seen.length === 0 || leaderIds.size !== 1 || leaderIds.has('0')) return undefined;
    const [leaderId] = [...leaderIds];
    return seen.find((s) => s.status.memberId === leaderId)?.member;
  }

  /** Waits until the running members agree on a running leader (other than `not`), and returns it. */
  async waitForLeader(opts: { not?: EtcdServer; timeoutMs?: number } = {}): Promise<EtcdServer> {
    let found: EtcdServer | undefined;
    await waitFor(
      `an etcd leader${opts.not ? ` other than ${opts.not.name}` : ''}`,
      () => {
        found = this.leader();
        return found !== undefined && found !== opts.not;
      },
      opts.timeoutMs ?? 30_000,
    );
    return found!;
  }

  async destroy(): Promise<void> {
    for (const m of this.members) await m.destroy().catch(() => undefined);
  }
}
