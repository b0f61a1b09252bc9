// A signal reaches its JS handler only when the event loop polls (libuv's C handler writes it into
// a pipe the poll reads). pollSignals (shim/supervise.ts) must let one poll happen whatever phase
// it is called from; one setImmediate does not when called from a poll-phase callback, where most
// awaits resume (run -d printed its id with a Ctrl-C unseen). Each case runs in a fresh Node: the
// signal is sent to that process itself, inside an fs callback, after its handler is installed.
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const MODULE = path.join(process.cwd(), 'dist', 'shim', 'supervise.js');

/** Whether the handler had run after `wait` (an expression giving a promise, pollSignals in scope). */
function seenAfter(wait: string): string {
  const code = `import(${JSON.stringify(MODULE)}).then(({ pollSignals }) => {
    let seen = false;
    process.on('SIGUSR2', () => (seen = true));
    require('node:fs').readFile('/proc/self/stat', async () => {
      process.kill(process.pid, 'SIGUSR2');
      await ${wait};
      console.log(String(seen));
    });
  }).catch((e) => { console.error(e); process.exit(99); });`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { PATH: process.env.PATH } });
  expect(r.stderr).toBe('');
  return r.stdout.trim();
}

describe('pollSignals', () => {
  it('a signal that came during a poll-phase callback has reached its handler once it resolves', () => {
    expect(seenAfter('pollSignals()')).toBe('true');
  });

  it('one setImmediate there is not enough (why pollSignals takes two)', () => {
    expect(seenAfter('new Promise((r) => setImmediate(r))')).toBe('false');
  });
});
