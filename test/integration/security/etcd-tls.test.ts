// The cluster store over TLS with a client certificate and user/password authentication
// (etcds://…?ca=&cert=&key=&user=&password-file=), and one line for each kind of bad credential.
// Certificates are made with openssl in a temp directory; etcd runs inside the sandbox namespace.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EtcdServer, haveEtcd } from '../../harness/etcd.js';
import { SandboxHost } from '../../harness/sandbox.js';

const d = haveEtcd ? describe : describe.skip;
let host: SandboxHost;
let etcd: EtcdServer;
let dir: string;
const ADDR = '127.0.0.1';

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

/** A CA, and a certificate it signs (SAN: the etcd address). */
function makeCa(name: string): void {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.pem`]);
}
function makeCert(name: string, ca: string, san: string): void {
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`]);
  writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`]);
}
const f = (name: string) => path.join(dir, name);

function url(o: { ca?: string; cert?: string; key?: string; user?: string; pw?: string } = {}): string {
  const q = new URLSearchParams({ ca: o.ca ?? f('ca.pem'), cert: o.cert ?? f('client.pem'), key: o.key ?? f('client.key'), user: o.user ?? 'tsrun', 'password-file': o.pw ?? f('password') });
  return `etcds://${ADDR}:2379/i10tls?${q.toString()}`;
}

beforeAll(async () => {
  if (!haveEtcd) return;
  dir = mkdtempSync(path.join(os.tmpdir(), 'i10-etcd-tls-'));
  makeCa('ca');
  makeCa('rogue');
  makeCert('server', 'ca', `IP:${ADDR}`);
  makeCert('client', 'ca', 'DNS:tsrun');
  makeCert('stranger', 'rogue', 'DNS:tsrun');
  writeFileSync(f('password'), 'tsrun-secret\n', { mode: 0o600 });
  writeFileSync(f('wrong-password'), 'nope\n', { mode: 0o600 });
  writeFileSync(f('not-a-cert.pem'), 'hello\n');
  host = await SandboxHost.create('i10tls');
  etcd = await EtcdServer.start(host.ns, { address: ADDR, tls: { cert: f('server.pem'), key: f('server.key'), ca: f('ca.pem') } });
  // Users and roles over the plain setup socket, then authentication on for everyone.
  const ctl = (...args: string[]) => execFileSync('etcdctl', ['--endpoints', `unix://${path.join(etcd.dir, 'etcd.sock:0')}`, ...args], { stdio: 'pipe', env: { ...process.env, ETCDCTL_API: '3' } });
  ctl('user', 'add', 'root:root-secret');
  ctl('user', 'add', 'tsrun:tsrun-secret');
  ctl('role', 'add', 'tsrun');
  ctl('role', 'grant-permission', '--prefix=true', 'tsrun', 'readwrite', '/i10tls/');
  ctl('user', 'grant-role', 'tsrun', 'tsrun');
  ctl('auth', 'enable');
});
afterAll(async () => {
  if (!haveEtcd) return;
  await etcd?.destroy();
  host?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

d('etcd over TLS with authentication', () => {
  it('stores networks in etcd over TLS, authenticated as the tsrun user', () => {
    const r = host.tsrun(['--store', url(), 'network', 'create', 'i10tlsnet', '--subnet', '10.81.0.0/24']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const ls = host.tsrun(['--store', url(), 'network', 'ls', '-q']);
    expect(ls.stdout.split('\n')).toContain('i10tlsnet');
    const rm = host.tsrun(['--store', url(), 'network', 'rm', 'i10tlsnet']);
    expect(rm.status).toBe(0);
  });

  it.each([
    ['a server certificate from another CA', { ca: 'rogue.pem' }, /etcd at 127\.0\.0\.1:2379 is unreachable .*/],
    ['a client certificate from another CA', { cert: 'stranger.pem', key: 'stranger.key' }, /etcd at 127\.0\.0\.1:2379 is unreachable .*/],
    ['a CA file that is not a certificate', { ca: 'not-a-cert.pem' }, /^tsrun: etcd CA certificate .*not-a-cert\.pem is not a PEM certificate$/],
    ['a key that belongs to another certificate', { key: 'stranger.key' }, /^tsrun: etcd client key .*stranger\.key does not belong to the certificate .*client\.pem$/],
    ['a missing CA file', { ca: 'missing.pem' }, /^tsrun: cannot read etcd CA certificate .*missing\.pem: ENOENT$/],
    ['a wrong password', { pw: 'wrong-password' }, /authentication failed|invalid user ID or password/],
  ])('refuses %s with one line and a non-zero exit', (_what, o, why) => {
    const files = Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v)]));
    const r = host.tsrun(['--store', url(files), 'network', 'ls'], { timeoutMs: 30_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(why);
  });

  it('refuses plain etcd:// with TLS parameters, and etcds:// without a CA', () => {
    const plain = host.tsrun(['--store', `etcd://${ADDR}:2379?ca=${f('ca.pem')}`, 'network', 'ls']);
    expect(plain.status).toBe(125);
    expect(plain.stderr).toMatch(/^tsrun: invalid store .*ca, cert and key need etcds:\/\/; use .*\n$/);
    const noCa = host.tsrun(['--store', `etcds://${ADDR}:2379`, 'network', 'ls']);
    expect(noCa.stderr).toMatch(/^tsrun: invalid store .*etcds:\/\/ needs ca=FILE/);
  });
});
