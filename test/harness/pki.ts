// A throwaway PKI for tests, made with openssl: a CA, an etcd server certificate for one IP
// address (or several: one certificate shared by the members of a cluster), and a client certificate. Elliptic-curve keys (fast), valid two days.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Pki {
  dir: string;
  ca: string;
  server: { cert: string; key: string };
  client: { cert: string; key: string };
  destroy(): void;
}

export function makePki(serverIps: string | string[]): Pki {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-pki-'));
  const ssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl(['req', '-x509', ...ec, '-days', '2', '-subj', '/CN=tsrun-test-ca', '-keyout', 'ca.key', '-out', 'ca.pem']);
  const sign = (name: string, san: string) => {
    ssl(['req', ...ec, '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`]);
    writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\n`);
    ssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`]);
  };
  sign('server', [serverIps].flat().map((ip) => `IP:${ip}`).join(','));
  sign('client', 'DNS:tsrun');
  const f = (n: string) => path.join(dir, n);
  return {
    dir,
    ca: f('ca.pem'),
    server: { cert: f('server.pem'), key: f('server.key') },
    client: { cert: f('client.pem'), key: f('client.key') },
    destroy: () => rmSync(dir, { recursive: true, force: true }),
  };
}
