// The CLI entry's own logic (shim/entry.ts): its `#!` line and shell line, and when it starts a
// door from its start-up snapshot. The entry in real processes: test/integration/snapshot.test.ts.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from '@jest/globals';
import { shebangLine, shebangProblem, shellLine, snapshotArgv, snapshotBlob, snapshotDoor } from '../../../shim/entry.js';

describe('the entry\'s first line', () => {
  it('names the node binary absolutely', () => {
    expect(shebangLine('/usr/bin/node')).toBe('#!/usr/bin/node --');
    expect(shebangLine('/root/.nvm/versions/node/v20.20.2/bin/node')).toBe('#!/root/.nvm/versions/node/v20.20.2/bin/node --');
  });

  it('falls back to /usr/bin/env node for a path a #! line cannot carry', () => {
    expect(shebangProblem('/opt/my node/bin/node')).toBe('has a blank');
    expect(shebangProblem('node')).toBe('is not absolute');
    const long = `/${'x'.repeat(130)}/node`;
    expect(shebangProblem(long)).toBe('is longer than a #! line may be');
    for (const p of ['/opt/my node/bin/node', 'node', long]) expect(shebangLine(p)).toBe('#!/usr/bin/env node');
    // 127 bytes, #! included, is the most an old kernel reads
    const edge = `/${'y'.repeat(116)}/node`;
    expect(`#!${edge} --`.length).toBe(127);
    expect(shebangProblem(edge)).toBeUndefined();
    expect(shebangProblem(`${edge}x`)).toBeDefined();
  });
});

describe('the entry\'s shell line', () => {
  it('is a string and a comment to JavaScript', () => {
    expect(() => new Function(`${shellLine("/opt/it's/node")}\nreturn 1;`)).not.toThrow();
  });

  it('execs that node on the entry with its arguments, quoted, in a real shell', () => {
    const r = spawnSync('/bin/sh', ['-c', `${shellLine("/bin/echo")}`, '/the/entry', 'a b', "c'd"], { encoding: 'utf8' });
    expect(r.stdout).toBe("-- /the/entry a b c'd\n");
    const q = spawnSync('/bin/sh', ['-c', shellLine("/no/such/it's/node"), 'e'], { encoding: 'utf8' });
    expect(q.stderr).toContain("/no/such/it's/node");
  });
});

describe('the snapshot a command line starts from', () => {
  it('picks the door as shim/main.ts routes', () => {
    expect(snapshotDoor(['hook', 'createRuntime'], {})).toBe('hook');
    expect(snapshotDoor(['hook', 'poststop'], { CNI_COMMAND: 'ADD' })).toBe('hook');
    for (const args of [['hook'], ['hook', 'install', '--hooks-dir', 'x'], ['hook', 'uninstall'], ['hook', '--help'], ['hook', ''], ['run', '--net', 'none', 'b'], ['network', 'ls'], []]) {
      expect(snapshotDoor(args, {})).toBe('cli');
    }
    expect(snapshotDoor([], { CNI_COMMAND: 'ADD' })).toBe('cni');
    expect(snapshotDoor([], { CNI_COMMAND: '' })).toBe('cli');
    expect(snapshotDoor(['version'], { CNI_COMMAND: 'ADD' })).toBe('cli');
  });

  const files = (m: Record<string, number>) => (f: string) => m[f];
  const fresh = files({ '/b/hook.snapshot.blob': 2000, '/b/cli.snapshot.blob': 2000, '/usr/bin/node': 1000 });

  it('only with TSRUN_SNAPSHOT=1, and never with TSRUN_NO_SNAPSHOT set', () => {
    const hook = ['hook', 'poststop'];
    expect(snapshotBlob('/b', hook, { TSRUN_SNAPSHOT: '1' }, '/usr/bin/node', fresh)).toBe('/b/hook.snapshot.blob');
    expect(snapshotBlob('/b', ['ps'], { TSRUN_SNAPSHOT: '1' }, '/usr/bin/node', fresh)).toBe('/b/cli.snapshot.blob');
    for (const env of [{}, { TSRUN_SNAPSHOT: '' }, { TSRUN_SNAPSHOT: 'yes' }, { TSRUN_SNAPSHOT: '1', TSRUN_NO_SNAPSHOT: '1' }, { TSRUN_SNAPSHOT: '1', TSRUN_NO_SNAPSHOT: '0' }]) {
      expect(snapshotBlob('/b', hook, env, '/usr/bin/node', fresh)).toBeUndefined();
    }
    // an empty TSRUN_NO_SNAPSHOT is unset, as the launcher's `[ -z "${TSRUN_NO_SNAPSHOT-}" ]` read it
    expect(snapshotBlob('/b', hook, { TSRUN_SNAPSHOT: '1', TSRUN_NO_SNAPSHOT: '' }, '/usr/bin/node', fresh)).toBe('/b/hook.snapshot.blob');
  });

  it('only a blob newer than the node binary, and one that exists', () => {
    const env = { TSRUN_SNAPSHOT: '1' };
    expect(snapshotBlob('/b', ['ps'], env, '/usr/bin/node', files({ '/b/cli.snapshot.blob': 1000, '/usr/bin/node': 1000 }))).toBeUndefined();
    expect(snapshotBlob('/b', ['ps'], env, '/usr/bin/node', files({ '/b/cli.snapshot.blob': 999, '/usr/bin/node': 1000 }))).toBeUndefined();
    expect(snapshotBlob('/b', ['ps'], env, '/usr/bin/node', files({ '/usr/bin/node': 1000 }))).toBeUndefined();
    expect(snapshotBlob('/b', ['ps'], env, '/usr/bin/node', files({ '/b/cli.snapshot.blob': 1000 }))).toBeUndefined();
  });

  it('starts node from the blob with tsrun.cjs as the script, the arguments unchanged', () => {
    expect(snapshotArgv('/usr/bin/node', '/b/cli.snapshot.blob', '/b', ['run', '--', 'x'])).toEqual(['/usr/bin/node', '--snapshot-blob', '/b/cli.snapshot.blob', '--', '/b/tsrun.cjs', 'run', '--', 'x']);
  });
});
