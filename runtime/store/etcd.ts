// The cluster Store: keys in etcd, under one prefix per cluster (default /tsrun/), through the
// `etcd3` client. etcd3 (with grpc-js and protobufjs) is loaded only when an etcd:// store is
// opened: it stays outside the esbuild bundle and costs nothing to the local-store paths.
//
//   createIfAbsent  one transaction: if createRevision(key) == 0 then put, else read it
//   deleteIf        one transaction: if value(key) == expected then delete, else read it
//   list / watch    by key prefix; the agent lists with the revision it read at and watches from
//                   the next one, so no event falls between the two
//   leases          the overlay agent's heartbeat: host and endpoint keys are bound to a lease
//                   that etcd removes when the agent stops renewing it
//
// Failing fast: every call carries a deadline (3 s by default) and is tried once per endpoint,
// so an unreachable cluster costs a few seconds and one line naming the endpoints, never a hang.
// With several endpoints one failure takes a member out of rotation for half a second, so the
// next try (and the next call) goes to another member: a dead leader costs one failed try, not
// one in three of every call until it is back. Lease renewals, which are streams the client's
// retry policy does not cover, retry on the next member the same way.
//
// Writes under an uncertain outcome. A write whose answer never came (deadline, connection reset
// after the request left, a leader lost mid-proposal) may or may not have committed. etcd3's own
// retry would send it again blind, and a create that had committed then reads "exists": the
// caller believes it lost the key it holds (a leaked address, a VXLAN id handed out twice). So
// etcd3 retries nothing here; writes go through mutate(), which tries again itself and knows
// whether an earlier attempt's outcome is unknown. Every conditional write reads the key in its
// else branch (same round trip), and after an unknown outcome:
//   createIfAbsent  the key holds exactly our value → our earlier attempt committed: true
//   deleteIf        the key is absent → our earlier attempt deleted it: true
// This is sound because the values that matter are unique to their writer (lease holders carry
// host, container, boot and a per-attach instance: ipam/holder.ts; lock holders a pid and time).
// A value that two writers could both write (a VXLAN id's network name) is protected by the
// cluster lock that serializes network create/rm instead.
import { createRequire } from 'node:module';
import type { Etcd3, IOptions, IKeyValue, Namespace, Watcher } from 'etcd3';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SystemError, UserError } from '../../config/errors.js';
import type { StoreEntry, WatchEvent } from './store.js';
import type { ClusterStore, WatchHandlers } from './cluster.js';
import { checkKey, compareKeys, prefixSegments } from './keys.js';

export const DEFAULT_ETCD_PREFIX = '/tsrun/';
export const DEFAULT_ETCD_TIMEOUT_MS = 3000;

export interface EtcdTarget {
  /** grpc targets: "host:port", "[v6]:port" or "unix:/path" */
  endpoints: string[];
  /** Every key lives under this prefix ("/tsrun/"): one cluster, one prefix. */
  prefix: string;
  /** What messages name: the endpoints as the user wrote them. */
  display: string;
  /** etcds://: TLS, verified against this CA; cert and key: a client certificate (mutual TLS). */
  tls?: { ca: string; cert?: string | undefined; key?: string | undefined } | undefined;
  /** etcd user authentication; the password is read from a file (never in a URL or the env). */
  auth?: { user: string; passwordFile: string } | undefined;
}

const QUERY_KEYS = ['ca', 'cert', 'key', 'user', 'password-file'] as const;

/**
 * `etcd://HOST:PORT[,HOST:PORT…][/PREFIX]` → endpoints and key prefix. The prefix lets several
 * tsrun clusters (or test runs) share one etcd without seeing each other's keys.
 * `etcds://…?ca=FILE[&cert=FILE&key=FILE][&user=NAME&password-file=FILE]` is the same over TLS,
 * with an optional client certificate and user/password authentication. Everything rides in the
 * one URL, so every front door and the hooks (TSRUN_STORE) see the same store.
 */
export function parseEtcdUrl(url: string): EtcdTarget {
  const bad = (why: string) =>
    new UserError(`invalid store ${JSON.stringify(url)}: ${why}; use etcd://HOST:PORT[,HOST:PORT][/PREFIX] or etcds://HOST:PORT[/PREFIX]?ca=FILE[&cert=FILE&key=FILE][&user=NAME&password-file=FILE]`);
  const scheme = url.startsWith('etcds://') ? 'etcds' : url.startsWith('etcd://') ? 'etcd' : undefined;
  if (!scheme) throw bad('not an etcd:// or etcds:// URL');
  const q = url.indexOf('?');
  const rest = url.slice(`${scheme}://`.length, q < 0 ? undefined : q);
  const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
  for (const k of query.keys()) if (!(QUERY_KEYS as readonly string[]).includes(k)) throw bad(`unknown parameter ${JSON.stringify(k)}`);
  const slash = rest.indexOf('/');
  const hostPart = slash < 0 ? rest : rest.slice(0, slash);
  const pathPart = slash < 0 ? '' : rest.slice(slash + 1).replace(/\/+$/, '');
  if (hostPart === '') throw bad('no endpoint');
  const endpoints = hostPart.split(',').map((h) => {
    const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(h);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw bad(`endpoint ${JSON.stringify(h)} is not HOST:PORT`);
    return h;
  });
  if (pathPart !== '' && !/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(pathPart)) throw bad(`prefix ${JSON.stringify(pathPart)} has characters outside [A-Za-z0-9_.-/]`);
  const target: EtcdTarget = { endpoints, prefix: pathPart === '' ? DEFAULT_ETCD_PREFIX : `/${pathPart}/`, display: hostPart };
  const file = (k: (typeof QUERY_KEYS)[number]): string | undefined => {
    const v = query.get(k) ?? undefined;
    if (v !== undefined && !v.startsWith('/')) throw bad(`${k} must be an absolute path`);
    return v;
  };
  const [ca, cert, key, passwordFile] = [file('ca'), file('cert'), file('key'), file('password-file')];
  const user = query.get('user') ?? undefined;
  if (scheme === 'etcds') {
    if (!ca) throw bad('etcds:// needs ca=FILE (the CA that signed the etcd server certificate)');
    if ((cert === undefined) !== (key === undefined)) throw bad('cert and key go together');
    target.tls = { ca, cert, key };
  } else if (ca || cert || key) throw bad('ca, cert and key need etcds://');
  if ((user === undefined) !== (passwordFile === undefined)) throw bad('user and password-file go together');
  if (user !== undefined) target.auth = { user, passwordFile: passwordFile! };
  return target;
}

/**
 * The TLS material and password of a target, read and checked before any connection: a missing
 * or malformed file, or a key that does not belong to its certificate, is one line naming it.
 */
export function loadEtcdSecrets(t: EtcdTarget): { credentials?: { rootCertificate: Buffer; certChain?: Buffer; privateKey?: Buffer }; auth?: { username: string; password: string } } {
  const read = (what: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new UserError(`cannot read etcd ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const cert = (what: string, file: string): { buf: Buffer; x509: X509Certificate } => {
    const buf = read(what, file);
    try {
      return { buf, x509: new X509Certificate(buf) };
    } catch {
      throw new UserError(`etcd ${what} ${file} is not a PEM certificate`);
    }
  };
  const out: ReturnType<typeof loadEtcdSecrets> = {};
  if (t.tls) {
    const ca = cert('CA certificate', t.tls.ca);
    out.credentials = { rootCertificate: ca.buf };
    if (t.tls.cert && t.tls.key) {
      const c = cert('client certificate', t.tls.cert);
      const keyBuf = read('client key', t.tls.key);
      let key: KeyObject;
      try {
        key = createPrivateKey(keyBuf);
      } catch {
        throw new UserError(`etcd client key ${t.tls.key} is not a PEM private key`);
      }
      if (!c.x509.checkPrivateKey(key)) throw new UserError(`etcd client key ${t.tls.key} does not belong to the certificate ${t.tls.cert}`);
      out.credentials.certChain = c.buf;
      out.credentials.privateKey = keyBuf;
    }
  }
  if (t.auth) {
    const password = read('password file', t.auth.passwordFile).toString('utf8').replace(/\r?\n$/, '');
    if (password === '') throw new UserError(`etcd password file ${t.auth.passwordFile} is empty`);
    out.auth = { username: t.auth.user, password };
  }
  return out;
}

export interface EtcdStoreOptions {
  /** Deadline of each call, and of connecting (default 3000 ms). */
  timeoutMs?: number;
}

export type { RevisionedEvent, WatchHandlers } from './cluster.js';

type Etcd3Module = typeof import('etcd3');
type Cockatiel = typeof import('cockatiel');

let loaded: { etcd3: Etcd3Module; cockatiel: Cockatiel } | undefined;
function loadEtcd3(): { etcd3: Etcd3Module; cockatiel: Cockatiel } {
  if (!loaded) {
    const require = createRequire(import.meta.url);
    const etcd3 = require('etcd3') as Etcd3Module;
    // cockatiel is etcd3's own dependency: resolve it from there, wherever npm placed it.
    const cockatiel = createRequire(require.resolve('etcd3'))('cockatiel') as Cockatiel;
    loaded = { etcd3, cockatiel };
  }
  return loaded;
}

export class EtcdStore implements ClusterStore {
  readonly kind = 'etcd' as const;
  readonly target: EtcdTarget;
  readonly timeoutMs: number;
  private readonly client: Etcd3;
  private readonly ns: Namespace;
  private closed = false;

  constructor(target: EtcdTarget, opts: EtcdStoreOptions = {}) {
    this.target = target;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_ETCD_TIMEOUT_MS;
    const { etcd3, cockatiel } = loadEtcd3();
    const timeout = this.timeoutMs;
    const secrets = loadEtcdSecrets(target);
    if (secrets.credentials) quietIpServerNameWarning();
    const options: IOptions = {
      hosts: target.endpoints,
      ...(secrets.credentials ? { credentials: secrets.credentials } : {}),
      ...(secrets.auth ? { auth: secrets.auth } : {}),
      dialTimeout: timeout,
      // Streams (watch, keepalive) live on; every unary call gets a deadline.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
      faultHandling: {
        // No retry here: mutate() retries, knowing which attempts' outcomes are unknown (header).
        global: cockatiel.retry(cockatiel.handleWhen(etcd3.isRecoverableError), { maxAttempts: 0 }),
        // A short breaker, so a long-lived agent notices quickly when etcd is back.
        // With other members to try, the first failure takes a member out (see the top of the file).
        host: () => cockatiel.circuitBreaker(cockatiel.handleWhen(etcd3.isRecoverableError), { halfOpenAfter: 500, breaker: new cockatiel.ConsecutiveBreaker(target.endpoints.length > 1 ? 1 : 3) }),
        watchBackoff: new cockatiel.ExponentialBackoff({ initialDelay: 200, maxDelay: 2000 }) as unknown as NonNullable<IOptions['faultHandling']>['watchBackoff'],
      },
      grpcOptions: { 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 3_000, 'grpc.initial_reconnect_backoff_ms': 200, 'grpc.max_reconnect_backoff_ms': 2_000 },
    };
    this.client = new etcd3.Etcd3(options);
    this.ns = this.client.namespace(target.prefix);
  }

  /** "etcd at 10.0.0.1:2379" — what messages call this store. */
  get name(): string {
    return `etcd at ${this.target.display}`;
  }

  async get(key: string): Promise<string | undefined> {
    checkKey(key);
    const v = await this.mutate('get', key, () => this.ns.get(key).string());
    return v ?? undefined;
  }

  async put(key: string, value: string): Promise<void> {
    checkKey(key);
    // A put sent twice leaves the same value: no outcome to compare.
    await this.mutate('put', key, () => this.ns.put(key).value(value).exec());
  }

  async createIfAbsent(key: string, value: string): Promise<boolean> {
    checkKey(key);
    return this.mutate('create', key, async (uncertain) => {
      const res = await this.ns.if(key, 'Create', '==', 0).then(this.ns.put(key).value(value)).else(this.ns.get(key)).commit();
      if (res.succeeded) return true;
      // Exists. Holding exactly our value after an attempt whose answer was lost: that attempt
      // committed (see the header). Without a lost answer, an equal value is someone else's.
      return uncertain && rangeValue(res) === value;
    });
  }

  async deleteIf(key: string, expected?: string): Promise<boolean> {
    checkKey(key);
    if (expected === undefined) {
      // Unconditional: after a lost answer "absent now" cannot say who deleted it; callers of the
      // unconditional form do not depend on the answer.
      return this.mutate('delete', key, async () => Number((await this.ns.delete().key(key).exec()).deleted) > 0);
    }
    return this.mutate('delete', key, async (uncertain) => {
      // etcd fails a value comparison on an absent key: the else branch tells absent from other.
      const res = await this.ns.if(key, 'Value', '==', expected).then(this.ns.delete().key(key)).else(this.ns.get(key)).commit();
      if (res.succeeded) return Number(res.responses[0]?.response_delete_range?.deleted ?? 0) > 0;
      // Absent after an attempt whose answer was lost: that attempt deleted it.
      return uncertain && rangeValue(res) === undefined;
    });
  }

  async list(prefix: string): Promise<StoreEntry[]> {
    return (await this.listAt(prefix)).entries;
  }

  /** list's keys alone (a keys-only range: etcd sends no values), e.g. CNI STATUS counting the
   * endpoints of a clustered host, which would otherwise read every endpoint record. */
  async listKeys(prefix: string): Promise<string[]> {
    prefixSegments(prefix);
    const keys = await this.mutate('list', prefix || '(all)', () => (prefix === '' ? this.ns.getAll() : this.ns.getAll().prefix(prefix)).keys('utf8'));
    return keys.sort(compareKeys);
  }

  /** The listing and the revision it was read at (watch from revision + 1 to miss nothing). */
  async listAt(prefix: string): Promise<{ entries: StoreEntry[]; revision: bigint }> {
    prefixSegments(prefix);
    const res = await this.mutate('list', prefix || '(all)', () => (prefix === '' ? this.ns.getAll() : this.ns.getAll().prefix(prefix)).exec());
    const entries = res.kvs.map((kv) => ({ key: this.keyOf(kv), value: kv.value.toString('utf8') }));
    return { entries: entries.sort((a, b) => compareKeys(a.key, b.key)), revision: BigInt(res.header.revision) };
  }

  async watch(prefix: string, onEvent: (e: WatchEvent) => void): Promise<() => Promise<void>> {
    return this.watchFrom(prefix, undefined, { onEvent: ({ revision: _r, ...e }) => onEvent(e), onError: () => {} });
  }

  /** Events under `prefix` from `fromRevision` (default: now) until the returned function is called. */
  async watchFrom(prefix: string, fromRevision: bigint | undefined, h: WatchHandlers): Promise<() => Promise<void>> {
    prefixSegments(prefix);
    let builder = prefix === '' ? this.ns.watch().prefix('') : this.ns.watch().prefix(prefix);
    if (fromRevision !== undefined) builder = builder.startRevision(fromRevision.toString());
    const watcher: Watcher = await this.call('watch', prefix || '(all)', () => builder.create());
    watcher.on('put', (kv) => h.onEvent({ type: 'put', key: this.keyOf(kv), value: kv.value.toString('utf8'), revision: BigInt(kv.mod_revision) }));
    watcher.on('delete', (kv) => h.onEvent({ type: 'delete', key: this.keyOf(kv), revision: BigInt(kv.mod_revision) }));
    watcher.on('error', (err) => h.onError(err));
    return async () => {
      await watcher.cancel().catch(() => undefined);
    };
  }

  // ------------------------------------------------------------ leases (the overlay agent)

  /** A new lease of `ttlSeconds`; its id as a decimal string. */
  async grantLease(ttlSeconds: number): Promise<string> {
    const res = await this.call('grant lease', `ttl ${ttlSeconds}s`, () => this.ns.leaseClient.leaseGrant({ TTL: ttlSeconds }));
    return String(res.ID);
  }

  /** Seconds the lease has left; 0 or less when it is gone. */
  async leaseRemaining(id: string): Promise<number> {
    const res = await this.call('read lease', id, () => this.ns.leaseClient.leaseTimeToLive({ ID: id }));
    return Number(res.TTL);
  }

  /** One renewal. Resolves to the new TTL (0 when the lease has expired); throws when etcd cannot
   * be reached within the deadline. Tried once per endpoint: a keepalive is a stream, and a stream
   * that fails after it opened is outside the client's retry policy, so without this a renewal
   * that picked a dead member would fail although the others are up (three in a row, and the lease
   * and every key bound to it are gone). The failed stream has taken its member out of rotation
   * (the host breaker), so the next try goes to another. */
  async renewLease(id: string): Promise<number> {
    let last: unknown;
    for (let attempt = 0; attempt < this.target.endpoints.length; attempt++) {
      try {
        return await this.keepAliveOnce(id);
      } catch (err) {
        last = err;
        if (!isUnreachable(err) && !isUnavailable(err)) break;
      }
    }
    throw this.failure('renew lease', id, last);
  }

  private async keepAliveOnce(id: string): Promise<number> {
    const stream = await this.ns.leaseClient.leaseKeepAlive();
    try {
      return await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new DeadlineError(this.timeoutMs)), this.timeoutMs);
        stream.on('data', (res: { TTL: string | number }) => {
          clearTimeout(timer);
          resolve(Number(res.TTL));
        });
        stream.on('error', (err: Error) => {
          clearTimeout(timer);
          reject(err);
        });
        stream.write({ ID: id });
      });
    } finally {
      stream.end();
    }
  }

  async revokeLease(id: string): Promise<void> {
    await this.call('revoke lease', id, () => this.ns.leaseClient.leaseRevoke({ ID: id }));
  }

  /** put bound to a lease: etcd deletes the key when the lease expires. */
  async putWithLease(key: string, value: string, leaseId: string): Promise<void> {
    checkKey(key);
    await this.mutate('put', key, () => this.ns.put(key).value(value).lease(leaseId).exec());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.client.close();
  }

  private keyOf(kv: IKeyValue): string {
    // The namespace strips its prefix from listings and events; keep the check cheap.
    return kv.key.toString('utf8');
  }

  /** Runs one lease or watch call, tried once per endpoint; an unreachable cluster becomes one
   * line naming it. (Keys are read and written through mutate(), which is patient.) */
  private async call<T>(op: string, what: string, fn: () => Promise<T>): Promise<T> {
    return this.mutate(op, what, () => fn(), false);
  }

  /**
   * Runs `attempt` until its outcome is known (see the header). `uncertain` tells an attempt that
   * an earlier one may have been applied. A request that never left (connection refused, breaker
   * open) is tried once per other endpoint, as before; one whose answer was lost is tried again,
   * after a short pause (an election takes about a second), until RETRY_BUDGET deadlines have passed.
   */
  private async mutate<T>(op: string, what: string, attempt: (uncertain: boolean) => Promise<T>, patient = true): Promise<T> {
    const started = Date.now();
    let uncertain = false;
    let unsentTries = 0;
    for (let i = 0; ; i++) {
      try {
        return await attempt(uncertain);
      } catch (err) {
        if (!isRetryable(err)) throw this.failure(op, what, err);
        const unsent = !patient || neverSent(err);
        if (!unsent) uncertain = true;
        const again = unsent ? ++unsentTries < this.target.endpoints.length : Date.now() - started < this.timeoutMs * RETRY_BUDGET && i < MAX_RETRIES;
        if (!again) throw this.failure(op, what, err);
        await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** i, 1000)));
      }
    }
  }

  private failure(op: string, what: string, err: unknown): Error {
    if (isUnreachable(err)) {
      return new UserError(`${this.name} is unreachable (${op} ${what}): ${reasonOf(err, this.timeoutMs)}`, { cause: err });
    }
    return new SystemError(`${op} ${what} in ${this.name}`, err);
  }
}

/** How long (in call deadlines) a write whose answer was lost keeps being retried, and how often. */
const RETRY_BUDGET = 2;
const MAX_RETRIES = 6;

/** The value a transaction's else-branch read found; undefined when the key is absent. */
function rangeValue(res: { responses: { response_range?: { kvs: { value: Buffer }[] } | null }[] }): string | undefined {
  return res.responses[0]?.response_range?.kvs[0]?.value.toString('utf8');
}

/** etcd3's transient errors, and the unreachable ones ours names (a breaker, our deadline). */
function isRetryable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (/ClientClosedError/.test(err.constructor.name)) return false;
  return loadEtcd3().etcd3.isRecoverableError(err) || isUnreachable(err) || /leader changed|request timed out|ECONNRESET|Connection dropped|socket hang up/i.test(err.message);
}

/** True when the request certainly never reached etcd: nothing to be uncertain about. */
function neverSent(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return /BrokenCircuitError|IsolatedCircuitError/.test(err.constructor.name) || /ECONNREFUSED|ENOENT|No connection established|circuit breaker is open/i.test(err.message);
}

class DeadlineError extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
  }
}

const UNREACHABLE = /GRPCUnavailableError|GRPCDeadlineExceededError|BrokenCircuitError|GRPCCancelledError|DeadlineError|ClientClosedError|IsolatedCircuitError/;

function isUnreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return UNREACHABLE.test(err.constructor.name) || UNREACHABLE.test(err.name) || /deadline exceeded|no connection established|connect ECONNREFUSED|EHOSTUNREACH|ETIMEDOUT|Execution prevented because the circuit breaker is open/i.test(err.message);
}

/** gRPC UNAVAILABLE (14), as a stream reports it: no connection, or a member without a leader
 * ("etcdserver: no leader" during an election). Another member may answer. */
function isUnavailable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 14;
}

function reasonOf(err: unknown, timeoutMs: number): string {
  const msg = err instanceof Error ? err.message : String(err);
  if (/deadline exceeded|no answer within/i.test(msg)) return `no answer within ${timeoutMs} ms`;
  if (/circuit breaker is open/i.test(msg)) return 'recent calls failed; not retrying yet';
  const refused = /ECONNREFUSED/.exec(msg);
  if (refused) return 'connection refused';
  if (/EHOSTUNREACH/.test(msg)) return 'no route to host';
  if (/ENOENT/.test(msg)) return 'no such socket';
  const tls = /certificate[^\n.;]*|self[- ]signed[^\n.;]*|handshake[^\n.;]*|SSL[^\n.;]*alert[^\n.;]*/i.exec(msg);
  if (tls) return `TLS failed: ${tls[0].trim()} (check the ca, cert and key of the etcds:// store)`;
  if (/No connection established/i.test(msg)) return 'no connection established';
  return msg.split('\n')[0]!.replace(/^\d+ [A-Z_]+: /, '');
}

let quieted = false;
/**
 * grpc-js names an IP-addressed etcd as the TLS server name, which Node flags (DEP0123) on stderr
 * on every run; the certificate is still checked against the IP in its subjectAltName. The CLI's
 * stderr is one line per failure, so this one warning is dropped; every other stays.
 */
function quietIpServerNameWarning(): void {
  if (quieted) return;
  quieted = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((...args: unknown[]) => {
    const [, b, c] = args;
    const code = typeof b === 'object' && b !== null ? (b as { code?: string }).code : c;
    if (code === 'DEP0123') return;
    emit(...args);
  }) as typeof process.emitWarning;
}
