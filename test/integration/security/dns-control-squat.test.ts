// A local unprivileged user against the resolver's control socket. It was an abstract unix socket
// named after the state root (predictable: a hash of the run directory), and the name was also
// the resolver's lock: anyone in the host's network namespace could bind it before tsrun's
// resolver started, which then found "another resolver" holding it and gave up (no names on user
// networks), while the squatter answered the engine's reloads. Now the socket is a file in the
// run directory's dns/ (0700) and the lock a record lock there. Real resolver, real queries, the
// squatter a process of uid 65534 holding every name tsrun ever used.
import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import path from 'node:path';
import { BridgeWorld } from '../../harness/bridge-world.js';
import { waitFor } from '../../harness/sandbox.js';
import { controlAddress, controlSocketName } from '../../../runtime/dns/paths.js';

let w: BridgeWorld;
let squatter: ChildProcess | undefined;

beforeAll(async () => {
  w = await BridgeWorld.create('h7sq', { outside: false });
  w.tsrunOk(['network', 'create', 'sqnet', '--subnet', '10.72.0.0/24']);
});
afterAll(async () => {
  squatter?.kill('SIGKILL');
  await w?.destroy();
});
afterEach(async () => {
  await w.stopAll();
  expect(w.leaks()).toEqual([]);
});

it('a local user binding the control socket\'s names first does not keep the resolver from serving names', async () => {
  const runDir = path.join(w.host.root, 'run');
  // The abstract name exactly as the old resolver bound it (node:net, so padded as libuv pads
  // it): a squatter answering every command with "ok".
  const code = `
    require('node:net').createServer((c) => c.on('data', () => c.end('ok 1\\n')))
      .listen(${JSON.stringify(controlSocketName(runDir))}, () => console.log('up'));`;
  squatter = w.host.ns.spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', code]);
  let up = false;
  squatter.stdout!.on('data', (d: Buffer) => (up ||= d.toString().includes('up')));
  await waitFor('the squatter to bind', () => up);

  const server = await w.start(['--net', 'sqnet'], 'sleep 600', 'sqsrv');
  const r = w.run(['--net', 'sqnet'], ['nslookup', server.id, '10.72.0.1']);
  expect(r.stdout).toMatch(/Address:?\s+10\.72\.0\.\d+/);
  expect(r.status).toBe(0);
  const address = controlAddress(runDir);
  expect(address.startsWith('/')).toBe(true);
  expect(statSync(address).isSocket()).toBe(true);
  expect((statSync(path.dirname(address)).mode & 0o777).toString(8)).toBe('700');
});
