// What a networked foreground run leaves on the caller's descriptors. Such a run (and run -d, rm)
// leaves through libc's _exit (runtime/koffi.ts exitFast), which skips Node's own exit, and with it
// Node's restoring of the stdio descriptors' flags: process.stderr on a pipe or FIFO sets
// O_NONBLOCK on that open file description, which the caller shares (a script's `2>&3`, a CI
// runner's pipe), and a later writer to it then fails with EAGAIN. The --debug log is the one
// thing such a run writes to stderr: it must not leave the description non-blocking.
import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import { BridgeWorld } from '../harness/bridge-world.js';
import { TSRUN_BIN, uniqueId } from '../harness/sandbox.js';

let w: BridgeWorld;
beforeAll(async () => {
  w = await BridgeWorld.create('rxio');
});
afterAll(async () => {
  await w?.destroy();
});
afterEach(() => {
  expect(w.leaks()).toEqual([]);
});

it('tsrun --debug run on a network keeps the caller\'s shared stderr description blocking, and passes its status', () => {
  const id = uniqueId('rxio');
  w.ids.push(id);
  // fd 3: a FIFO opened read-write, one description shared by this shell and tsrun's stderr.
  const script = 'f=$(mktemp -u); mkfifo "$f"; exec 3<>"$f"; rm -f "$f"; "$@" 2>&3 >/dev/null; echo "status=$?"; sed -n "s/^flags:[[:space:]]*//p" /proc/$$/fdinfo/3';
  const r = w.host.ns.exec('sh', ['-c', script, 'sh', TSRUN_BIN, '--debug', 'run', '--name', id, '-p', '8610:80', w.bundle, '--', 'sh', '-c', 'exit 3'], { env: w.host.env });
  const [status, flags] = r.stdout.trim().split('\n');
  expect(status).toBe('status=3');
  expect(parseInt(flags!, 8) & 0o4000).toBe(0);
});

it('tsrun --debug run -d and rm -f on a network keep it blocking too', () => {
  const id = uniqueId('rxid');
  w.ids.push(id, `${id}n`);
  const script = 'f=$(mktemp -u); mkfifo "$f"; exec 3<>"$f"; rm -f "$f"; "$@" 2>&3 >/dev/null; echo "status=$?"; sed -n "s/^flags:[[:space:]]*//p" /proc/$$/fdinfo/3';
  for (const args of [['run', '-d', '--name', `${id}n`, '-p', '8612:80', w.bundle, '--', 'sleep', '600'], ['rm', '-f', `${id}n`], ['--debug', 'run', '-d', '--name', id, '-p', '8611:80', w.bundle, '--', 'sleep', '600'], ['--debug', 'rm', '-f', id]]) {
    const r = w.host.ns.exec('sh', ['-c', script, 'sh', TSRUN_BIN, ...args], { env: w.host.env });
    const [status, flags] = r.stdout.trim().split('\n');
    expect({ args: args.slice(0, 3), status }).toEqual({ args: args.slice(0, 3), status: 'status=0' });
    expect({ args: args.slice(0, 3), nonblocking: (parseInt(flags!, 8) & 0o4000) !== 0 }).toEqual({ args: args.slice(0, 3), nonblocking: false });
  }
});
