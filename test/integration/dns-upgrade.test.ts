// An in-place upgrade with a resolver of a tsrun from before session 7 still running. That one's
// control socket is the abstract name (runtime/dns/paths.ts: controlSocketName), it holds no
// record lock, and it holds port 53 on the gateways; the new clients knock on the socket file, so
// a new resolver starts, takes the lock, and (before the fix) retried its binds on port 53 for
// ever while the old one, hearing no reload, served a table refreshed only by its 10 s re-read and
// never exited while containers ran. Here the old resolver is a stand-in that does what the old
// one does at the OS level (the abstract name, a wildcard bind of port 53 on UDP and TCP, which
// keeps any gateway's bind out as the old one's did, its pidfile with pid and start time, exit on
// SIGTERM) but answers no query: a name resolves only if the new resolver took over.
import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { BridgeWorld } from '../harness/bridge-world.js';
import { waitFor } from '../harness/sandbox.js';
import { controlSocketName, pidfilePath, readResolverPid } from '../../runtime/dns/paths.js';

let w: BridgeWorld;
let old: ChildProcess | undefined;

beforeAll(async () => {
  w = await BridgeWorld.create('h7up', { outside: false });
  w.tsrunOk(['network', 'create', 'upnet', '--subnet', '10.73.0.0/24']);
});
afterAll(async () => {
  old?.kill('SIGKILL');
  await w?.destroy();
});
afterEach(async () => {
  await w.stopAll();
  expect(w.leaks()).toEqual([]);
});

it('a new resolver retires an older tsrun\'s resolver and serves the gateways itself', async () => {
  const runDir = path.join(w.host.root, 'run');
  const pidfile = pidfilePath(runDir);
  const code = `
    const fs = require('node:fs'), net = require('node:net'), dgram = require('node:dgram');
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    net.createServer((c) => c.on('data', () => c.end('ok 1\\n'))).listen(${JSON.stringify(controlSocketName(runDir))});
    const u = dgram.createSocket('udp4');
    u.bind({ port: 53, exclusive: true }, () => net.createServer().listen({ port: 53, exclusive: true }, () => {
      fs.mkdirSync(${JSON.stringify(path.dirname(pidfile))}, { recursive: true, mode: 0o700 });
      fs.writeFileSync(${JSON.stringify(pidfile)}, JSON.stringify({ pid: process.pid, start, runDir: ${JSON.stringify(runDir)} }) + '\\n');
      console.log('up');
    }));
    process.on('SIGTERM', () => process.exit(0));`;
  old = w.host.ns.spawn(process.execPath, ['-e', code]);
  let up = false;
  let exited = false;
  old.stdout!.on('data', (d: Buffer) => (up ||= d.toString().includes('up')));
  old.on('exit', () => (exited = true));
  await waitFor('the old resolver to bind', () => up);

  const server = await w.start(['--net', 'upnet'], 'sleep 600', 'upsrv');
  const r = w.run(['--net', 'upnet'], ['nslookup', server.id, '10.73.0.1']);
  expect(r.stdout).toMatch(/Address:?\s+10\.73\.0\.\d+/);
  expect(r.status).toBe(0);
  expect(exited).toBe(true);
  expect(readResolverPid(runDir)?.pid).not.toBe(old.pid);
});
