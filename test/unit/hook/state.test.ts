import { afterAll, describe, expect, it } from '@jest/globals';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../../../config/errors.js';
import { STAGES, checkStage, parseState } from '../../../hook/state.js';
import { readAllSync } from '../../../hook/stdin.js';
import { recordings } from './fixtures.js';

describe('recorded states from runc and podman', () => {
  const all = recordings();

  it('covers every stage of both runtimes', () => {
    expect(all.length).toBeGreaterThanOrEqual(40);
    expect(new Set(all.map((r) => r.stage))).toEqual(new Set(STAGES));
  });

  it.each(all.map((r) => [r.file, r] as const))('%s parses', (_f, r) => {
    const stage = checkStage(r.stage);
    const state = parseState(r.text);
    expect(state.id).toBe(r.state.id);
    expect(state.bundle).toBe(r.state.bundle);
    if (stage === 'poststop') {
      expect(state.status).toBe('stopped');
      expect(state.pid).toBeUndefined();
    } else {
      expect(state.pid).toEqual(expect.any(Number));
    }
  });

  it('podman hands prestart and createRuntime the same state', () => {
    const by = (f: string) => all.find((r) => r.file === f)!.state;
    expect(by('podman-bridge-annotated-prestart.json')).toEqual(by('podman-bridge-annotated-createRuntime.json'));
  });
});

describe('parseState: every failure names what is wrong', () => {
  const base = { ociVersion: '1.0.2', id: 'c1', status: 'creating', pid: 42, bundle: '/b' };
  const cases: [string, string, RegExp][] = [
    ['empty input', '', /^no state JSON on stdin/],
    ['whitespace', ' \n\t', /^no state JSON on stdin/],
    ['not JSON', '{"id": ', /^state JSON on stdin is not valid JSON: /],
    ['an array', '[]', /^state JSON on stdin: must be an object \(got an array\)$/],
    ['null', 'null', /^state JSON on stdin: must be Object/],
    ['a number', '42', /^state JSON on stdin: must be Object/],
    ['no id', JSON.stringify({ ...base, id: undefined }), /^state JSON on stdin: id: is required$/],
    ['an empty id', JSON.stringify({ ...base, id: '' }), /^state JSON on stdin: id: must not be empty$/],
    ['a path-like id', JSON.stringify({ ...base, id: '../../etc' }), /^state JSON on stdin: id: invalid container id "..\/..\/etc"/],
    ['an absolute id', JSON.stringify({ ...base, id: '/etc/passwd' }), /id: invalid container id/],
    ['an id with a newline', JSON.stringify({ ...base, id: 'a\nb' }), /id: invalid container id/],
    ['a huge id', JSON.stringify({ ...base, id: 'a'.repeat(100_000) }), /id: invalid container id "a{37}\.\.\."/],
    ['a numeric id', JSON.stringify({ ...base, id: 7 }), /^state JSON on stdin: id: must be string \(got 7\)$/],
    ['a string pid', JSON.stringify({ ...base, pid: '42' }), /^state JSON on stdin: pid: must be number/],
    ['a negative pid', JSON.stringify({ ...base, pid: -1 }), /pid: must be a positive process id/],
    ['a fractional pid', JSON.stringify({ ...base, pid: 1.5 }), /pid: must be an integer/],
    ['an impossible pid', JSON.stringify({ ...base, pid: 2 ** 40 }), /pid: 1099511627776 is not a process id/],
    ['a bad status', JSON.stringify({ ...base, status: 'paused' }), /^state JSON on stdin: status: must be creating, created, running or stopped$/],
    ['a relative bundle', JSON.stringify({ ...base, bundle: 'bundle' }), /^state JSON on stdin: bundle: must be an absolute path$/],
    ['no ociVersion', JSON.stringify({ ...base, ociVersion: undefined }), /ociVersion: is required/],
    ['a non-string annotation', JSON.stringify({ ...base, annotations: { 'io.tsrun.network': 5 } }), /^state JSON on stdin: annotations\.io\.tsrun\.network: must be string/],
    ['annotations as a list', JSON.stringify({ ...base, annotations: ['a'] }), /^state JSON on stdin: annotations: must be an object of strings \(got an array\)$/],
  ];

  it.each(cases)('%s', (_what, text, message) => {
    let caught: unknown;
    try {
      parseState(text);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UserError);
    const line = (caught as UserError).shortMessage;
    expect(line).toMatch(message);
    expect(line).not.toContain('\n');
    expect(line.length).toBeLessThanOrEqual(500);
  });

  it('accepts extra fields and a state without annotations', () => {
    expect(parseState(JSON.stringify({ ...base, future: { x: 1 } })).id).toBe('c1');
    expect(parseState(JSON.stringify(base)).annotations).toBeUndefined();
  });

  it('ignores __proto__ keys', () => {
    const s = parseState(`{"ociVersion":"1","id":"c1","status":"creating","bundle":"/b","__proto__":{"pid":5},"annotations":{"__proto__":"x"}}`);
    expect(s.pid).toBeUndefined();
    expect(Object.keys(s.annotations!)).toEqual([]);
  });
});

describe('checkStage', () => {
  it('accepts the six stages', () => {
    for (const s of STAGES) expect(checkStage(s)).toBe(s);
  });
  it.each(['poststart ', 'PostStop', 'create', '', 'x'.repeat(100)])('refuses %p', (s) => {
    expect(() => checkStage(s)).toThrow(/^unknown hook stage .*: use one of prestart, createRuntime, createContainer, startContainer, poststart, poststop$/);
  });
});

describe('readAllSync', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-stdin-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const fdOf = (content: string | Buffer) => {
    const f = path.join(dir, `in-${Math.random()}`);
    writeFileSync(f, content);
    return openSync(f, 'r');
  };

  it('reads everything, across several chunks', () => {
    const text = 'x'.repeat(200_000);
    const fd = fdOf(text);
    expect(readAllSync(fd)).toBe(text);
    closeSync(fd);
  });

  it('refuses more than the limit', () => {
    const fd = fdOf(Buffer.alloc(5000, 0x61));
    expect(() => readAllSync(fd, 4096)).toThrow(/^the state JSON on stdin is larger than 4096 bytes$/);
    closeSync(fd);
  });

  it('reports an unreadable descriptor in one line', () => {
    expect(() => readAllSync(987654)).toThrow(/^cannot read the state JSON on stdin: EBADF$/);
  });
});
