// config/validate.ts's schema functions, which replaced valibot: the first problem, its path and
// its message are valibot's as tsrun used them (the expected lines below are what valibot 1.5 gave
// through the old parseOrThrow), and the output keeps every key of a loose object.
import { describe, expect, it } from '@jest/globals';
import { UserError } from '../../../config/errors.js';
import { SpecSchema, StateSchema } from '../../../config/oci.js';
import { parseOrThrow } from '../../../config/validate.js';

const spec = () => ({ ociVersion: '1.0.2', process: { args: ['sh'], cwd: '/', env: ['A=1'] }, root: { path: 'rootfs' } }) as Record<string, any>;
const problem = (schema: typeof SpecSchema | typeof StateSchema, input: unknown): string => {
  try {
    parseOrThrow(schema as (i: unknown) => unknown, input, 'cfg');
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as UserError).shortMessage;
  }
  throw new Error('no problem found');
};

describe('config.json and state schemas', () => {
  it('keeps unknown keys after the known ones, and copies objects and arrays', () => {
    const input: Record<string, any> = { x: 1, ...spec(), hooks: { prestart: [{ path: '/h', y: 2 }] }, annotations: { a: 'b' } };
    const out = parseOrThrow(SpecSchema, input, 'cfg');
    expect(Object.keys(out)).toEqual(['ociVersion', 'process', 'root', 'annotations', 'hooks', 'x']);
    expect(out).toEqual(input);
    expect(out.process).not.toBe(input.process);
    expect(out.process.args).not.toBe(input.process.args);
  });

  it('drops __proto__, prototype and constructor keys as valibot does', () => {
    const input = JSON.parse('{"ociVersion":"1","process":{"args":["a"],"cwd":"/"},"root":{"path":"r"},"__proto__":{"x":1},"constructor":1,"annotations":{"prototype":"p","k":"v"}}');
    const out = parseOrThrow(SpecSchema, input, 'cfg');
    expect(Object.keys(out)).toEqual(['ociVersion', 'process', 'root', 'annotations']);
    expect(out.annotations).toEqual({ k: 'v' });
  });

  it.each<[string, (s: Record<string, any>) => unknown, string]>([
    ['not an object', () => null, 'cfg: must be Object (got null)'],
    ['a number', () => 5, 'cfg: must be Object (got 5)'],
    ['a missing key, in schema order', (s) => ({ root: s.root }), 'cfg: ociVersion: is required'],
    ['an empty string', (s) => ({ ...s, ociVersion: '' }), 'cfg: ociVersion: must not be empty'],
    ['a wrong type', (s) => ({ ...s, ociVersion: 1 }), 'cfg: ociVersion: must be string (got 1)'],
    ['a string shown quoted', (s) => ({ ...s, process: 'p' }), 'cfg: process: must be Object (got "p")'],
    ['an array item', (s) => ({ ...s, process: { ...s.process, args: ['a', 3] } }), 'cfg: process.args[1]: must be string (got 3)'],
    ['an empty array', (s) => ({ ...s, process: { ...s.process, args: [] } }), 'cfg: process.args: must name the program to run'],
    ['an object for an array', (s) => ({ ...s, process: { ...s.process, args: {} } }), 'cfg: process.args: must be Array (got Object)'],
    ['an env without =', (s) => ({ ...s, process: { ...s.process, env: ['A=1', 'B'] } }), 'cfg: process.env[1]: must have the form KEY=VALUE'],
    ['a relative cwd', (s) => ({ ...s, process: { ...s.process, cwd: 'x' } }), 'cfg: process.cwd: must be an absolute path'],
    ['the first of two problems', (s) => ({ ...s, process: { ...s.process, cwd: 'x' }, root: {} }), 'cfg: process.cwd: must be an absolute path'],
    ['a null optional', (s) => ({ ...s, hostname: null }), 'cfg: hostname: must be string (got null)'],
    ['a record value', (s) => ({ ...s, annotations: { a: 'b', c: false } }), 'cfg: annotations.c: must be string (got false)'],
    ['a hook', (s) => ({ ...s, hooks: { poststop: [{ path: '/h', timeout: 1.5 }] } }), 'cfg: hooks.poststop[0].timeout: must be an integer'],
    ['a hook timeout of 0', (s) => ({ ...s, hooks: { poststop: [{ path: '/h', timeout: 0 }] } }), 'cfg: hooks.poststop[0].timeout: must be at least 1'],
    ['a namespace type', (s) => ({ ...s, linux: { namespaces: [{ type: 'pid' }, { type: 'nope' }] } }), 'cfg: linux.namespaces[1].type: must be one of pid, network, mount, ipc, uts, user, cgroup, time'],
    ['a missing namespace type', (s) => ({ ...s, linux: { namespaces: [{}] } }), 'cfg: linux.namespaces[0].type: is required'],
    ['a resource', (s) => ({ ...s, linux: { resources: { memory: { limit: '1' } } } }), 'cfg: linux.resources.memory.limit: must be number (got "1")'],
    ['pids without its limit', (s) => ({ ...s, linux: { resources: { pids: {} } } }), 'cfg: linux.resources.pids.limit: is required'],
  ])('names %s', (_, make, expected) => {
    expect(problem(SpecSchema, make(spec()))).toBe(expected);
  });

  it('takes an array where an object is expected, as valibot did (hook/state.ts refuses it itself)', () => {
    expect(problem(SpecSchema, [])).toBe('cfg: ociVersion: is required');
    expect(parseOrThrow(SpecSchema, { ...spec(), annotations: ['x'] }, 'cfg').annotations).toEqual({ 0: 'x' });
  });

  it('checks a hook state', () => {
    const state = { ociVersion: '1.0.2', id: 'c', status: 'running', pid: 7, bundle: '/b' };
    expect(parseOrThrow(StateSchema, state, 'cfg')).toEqual(state);
    expect(problem(StateSchema, { ...state, status: 'gone' })).toBe('cfg: status: must be creating, created, running or stopped');
    expect(problem(StateSchema, { ...state, pid: 0 })).toBe('cfg: pid: must be a positive process id');
    expect(problem(StateSchema, { ...state, pid: NaN })).toBe('cfg: pid: must be number (got NaN)');
  });
});
