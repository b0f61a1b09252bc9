// writeStdout (runtime/stdout.ts): a front door's answer (a CNI result or error object, the line
// `run -d` and `rm` print) written to fd 1 synchronously, because the door leaves through
// process.exit or libc's _exit right after, which drop whatever a stream still has queued.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const MODULE = path.join(process.cwd(), 'dist', 'runtime', 'stdout.js');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-stdout-test-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('writeStdout', () => {
  it('writes all of a long answer to a non-blocking pipe whose reader is slow, then exits', () => {
    // Touching process.stdout opens fd 1 through libuv, which makes the pipe non-blocking (as does
    // any process sharing it): writeSync then meets EAGAIN once the pipe is full. What the
    // answer's rest was handed to (process.stdout) was lost at the exit right after.
    const child = path.join(dir, 'child.mjs');
    writeFileSync(child, `import { writeStdout } from ${JSON.stringify(MODULE)};\nvoid process.stdout;\nwriteStdout('y'.repeat(300000) + '\\n');\nprocess.exit(0);\n`);
    const r = spawnSync('/bin/sh', ['-c', `"$0" "$1" | { sleep 0.3; wc -c; }`, process.execPath, child], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('300001');
  });

  it('writeStderr: a failure line reaches a stderr pipe that is full until after the exit', () => {
    // A door's one failure line (the hook's, a CNI call's) when the runtime's stderr is a pipe
    // someone is slow to read (a pager, a log collector behind): process.stderr queued it, and the
    // exit right after dropped it.
    const child = path.join(dir, 'child-err.mjs');
    writeFileSync(child, `import { writeStderr } from ${JSON.stringify(MODULE)};\nvoid process.stderr;\nwriteStderr('tsrun: failed\\n');\nprocess.exit(1);\n`);
    const r = spawnSync('/bin/sh', ['-c', `{ head -c 65536 /dev/zero >&2; "$0" "$1" >/dev/null; } 2>&1 | { sleep 0.3; tail -c +65537; }`, process.execPath, child], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('tsrun: failed\n');
  });

  it('the CLI doors\' reportFailure: the one line reaches a full stderr pipe read after the exit, and an exit status', () => {
    // run, run -d, rm and the other commands report a failure through shim/setup.ts and exit at once.
    const setupModule = path.join(process.cwd(), 'dist', 'shim', 'setup.js');
    const errorsModule = path.join(process.cwd(), 'dist', 'config', 'errors.js');
    const child = path.join(dir, 'child-cli.mjs');
    writeFileSync(child, `import { reportFailure } from ${JSON.stringify(setupModule)};\nimport { UserError } from ${JSON.stringify(errorsModule)};\nvoid process.stderr;\nprocess.exit(reportFailure(new UserError('no such container: x')));\n`);
    const r = spawnSync('/bin/sh', ['-c', `{ head -c 65536 /dev/zero >&2; "$0" "$1" >/dev/null; echo "status $?" >&2; } 2>&1 | { sleep 0.3; tail -c +65537; }`, process.execPath, child], { encoding: 'utf8' });
    expect(r.stdout).toBe('tsrun: no such container: x\nstatus 125\n');
  });
});
