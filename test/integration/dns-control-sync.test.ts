// The resolver's control socket asked synchronously (runtime/dns/control-sync.ts, what the hook and
// the CNI plugin use): against a server made with node:net, exactly as the resolver makes its
// own, every answer node:net's client gets comes back the same, a silent server is a timeout,
// and no server is 'unavailable' (the caller then asks through node:net). Abstract socket names
// belong to a network namespace: server and client run in a sandbox namespace.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Netns, PROJECT_ROOT, waitFor } from '../harness/sandbox.js';

let ns: Netns;
let server: ChildProcess;
let dir: string;
let ready = false;

const CONTROL = path.join(PROJECT_ROOT, 'dist/runtime/dns/control-sync.js');
const CLIENT = path.join(PROJECT_ROOT, 'dist/runtime/dns/client.js');
const PATHS = path.join(PROJECT_ROOT, 'dist/runtime/dns/paths.js');

beforeAll(async () => {
  ns = await Netns.create('ctlsync');
  dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-ctlsync-'));
  // The resolver's control server in miniature: one reply per command, as server.ts answers.
  const code = `
    const net = require('node:net');
    import(${JSON.stringify(PATHS)}).then(({ controlAddress }) => {
      const s = net.createServer((c) => c.on('data', (d) => {
        const cmd = d.toString().trim();
        if (cmd.startsWith('reload')) c.end('ok ' + cmd.split(' ').length + '\\n');
        else if (cmd === 'stopping') c.end('error stopping\\n');
        else if (cmd === 'close') c.destroy();
        else if (cmd === 'split') { c.write('ok sp'); setTimeout(() => c.end('lit\\nrest\\n'), 50); }
        // 'silent': never answers
      }));
      const address = controlAddress(process.argv[1]);
      require('node:fs').mkdirSync(require('node:path').dirname(address), { recursive: true });
      s.listen(address, () => console.log('ready'));
    });`;
  server = ns.spawn(process.execPath, ['-e', code, dir]);
  server.stdout!.on('data', (d: Buffer) => (ready ||= d.toString().includes('ready')));
  await waitFor('the control server to listen', () => ready);
});

afterAll(() => {
  server?.kill('SIGKILL');
  ns?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs requests in a client process inside the namespace; returns what each gave. */
function ask(requests: { runDir: string; command: string; timeoutMs: number }[]): unknown[] {
  const code = `
    const { resolverRequestSync } = await import(${JSON.stringify(CONTROL)});
    const { resolverRequest } = await import(${JSON.stringify(CLIENT)});
    const out = [];
    for (const r of JSON.parse(process.argv[1])) {
      let sync, viaNet;
      try { sync = resolverRequestSync(r.runDir, r.command, r.timeoutMs); } catch (e) { sync = { error: e.message }; }
      try { viaNet = (await resolverRequest(r.runDir, r.command, r.timeoutMs)) ?? null; } catch (e) { viaNet = { error: e.message }; }
      out.push({ sync: sync === 'unavailable' ? sync : 'reply' in sync ? sync.reply ?? null : sync, viaNet });
    }
    console.log(JSON.stringify(out));`;
  const r = ns.exec(process.execPath, ['--input-type=module', '-e', code, JSON.stringify(requests)], { timeoutMs: 30_000 });
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as unknown[];
}

describe('the resolver asked synchronously', () => {
  it('gets the same answers as node:net, a timeout from a silent server, and unavailable with no server', () => {
    const none = mkdtempSync(path.join(os.tmpdir(), 'tsrun-ctlsync-none-'));
    try {
      const got = ask([
        { runDir: dir, command: 'reload a b', timeoutMs: 5000 },
        { runDir: dir, command: 'split', timeoutMs: 5000 },
        { runDir: dir, command: 'stopping', timeoutMs: 5000 },
        { runDir: dir, command: 'close', timeoutMs: 5000 },
        { runDir: dir, command: 'silent', timeoutMs: 300 },
        { runDir: none, command: 'reload', timeoutMs: 300 },
      ]);
      expect(got).toEqual([
        { sync: 'ok 3', viaNet: 'ok 3' },
        { sync: 'ok split', viaNet: 'ok split' },
        { sync: null, viaNet: null },
        { sync: null, viaNet: null },
        { sync: { error: 'the resolver did not answer silent within 300 ms' }, viaNet: { error: 'the resolver did not answer silent within 300 ms' } },
        { sync: 'unavailable', viaNet: null },
      ]);
    } finally {
      rmSync(none, { recursive: true, force: true });
    }
  });
});
