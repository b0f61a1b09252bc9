// The CLI builds only the command a process runs (plus run and the lifecycle commands), and every
// command when it cannot tell (help, a typo): output of help and errors stays complete.
import { describe, expect, it } from '@jest/globals';
import { buildProgram, commandWord } from '../../../shim/cli.js';

const names = (argv?: string[]) => buildProgram(() => {}, argv).commands.map((c) => c.name());
const argv = (...a: string[]) => ['node', 'tsrun.cjs', ...a];

describe('the CLI program per command', () => {
  it('finds the command word after global options', () => {
    expect(commandWord(argv('run', '--net', 'none', 'b'))).toBe('run');
    expect(commandWord(argv('--root', '/x', '--log-level', 'debug', '--debug', 'network', 'ls'))).toBe('network');
    expect(commandWord(argv('--log-level=debug', 'gc'))).toBe('gc');
    expect(commandWord(argv('--help'))).toBeUndefined();
  });

  it('builds everything without argv, for help, and for an unknown command', () => {
    const all = names();
    expect(all).toEqual(expect.arrayContaining(['run', 'ps', 'network', 'agent', 'topology', 'oci-runtime', 'hook', 'spec', 'cni', 'resolver', 'gc']));
    expect(names(argv('help'))).toEqual(all);
    expect(names(argv('netwrok', 'ls'))).toEqual(all);
    expect(names(argv('--version'))).toEqual(all);
  });

  it('leaves out the other on-demand commands', () => {
    const run = names(argv('run', 'b'));
    expect(run).toEqual(expect.arrayContaining(['run', 'create', 'ps', 'rm']));
    expect(run).not.toContain('network');
    expect(run).not.toContain('gc');
    expect(names(argv('network', 'ls'))).toContain('network');
    expect(names(argv('network', 'ls'))).not.toContain('cni');
    expect(names(argv('spec', 'add-hooks'))).toEqual(expect.arrayContaining(['hook', 'spec']));
    expect(names(argv('gc'))).toContain('gc');
  });
});
