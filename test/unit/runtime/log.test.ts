// The logger writes pino's line format (readers of tsrun.log depend on it) without pino.
import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger, loggerTo, type LogSink } from '../../../runtime/log.js';

function collect(level = 10): { sink: LogSink; lines: () => Record<string, unknown>[]; raw: string[] } {
  const raw: string[] = [];
  return { sink: { level, write: (l) => void raw.push(l) }, raw, lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('logger', () => {
  it('writes pino-shaped lines: level, time, pid, bindings, fields, msg last', () => {
    const c = collect();
    const log = loggerTo('debug', [c.sink], { containerId: 'c1' });
    log.info({ step: 'x', ms: 1.5 }, 'step done');
    log.warn('plain message');
    expect(c.raw[0]).toMatch(/^\{"level":30,"time":\d+,"pid":\d+,"containerId":"c1","step":"x","ms":1.5,"msg":"step done"\}\n$/);
    expect(c.lines()[1]).toMatchObject({ level: 40, msg: 'plain message', containerId: 'c1' });
  });

  it('drops lines below the level, per logger and per sink', () => {
    const all = collect(10);
    const warnOnly = collect(40);
    const log = loggerTo('info', [all.sink, warnOnly.sink]);
    log.debug({}, 'dropped');
    log.info({}, 'to one');
    log.error({}, 'to both');
    expect(all.lines().map((l) => l.msg)).toEqual(['to one', 'to both']);
    expect(warnOnly.lines().map((l) => l.msg)).toEqual(['to both']);
    expect(log.isLevelEnabled('debug')).toBe(false);
    expect(log.isLevelEnabled('warn')).toBe(true);
  });

  it('serializes errors under err with type, message and stack, also as the first argument', () => {
    const c = collect();
    const log = loggerTo('info', [c.sink]);
    const err = Object.assign(new RangeError('bad thing'), { code: 'EBAD' });
    log.error({ err, exitCode: 1 }, 'failed');
    log.error(new Error('alone'));
    const [a, b] = c.lines();
    expect(a).toMatchObject({ msg: 'failed', exitCode: 1, err: { type: 'RangeError', message: 'bad thing', code: 'EBAD' } });
    expect((a!.err as { stack: string }).stack).toContain('log.test');
    expect(b).toMatchObject({ msg: 'alone', err: { message: 'alone' } });
  });

  it('survives circular and bigint fields', () => {
    const c = collect();
    const o: Record<string, unknown> = { n: 10n };
    o.self = o;
    loggerTo('info', [c.sink]).info({ o }, 'odd');
    expect(c.lines()[0]).toMatchObject({ o: { n: '10', self: '[Circular]' } });
  });

  it('children add bindings and inherit formatters, which chain', () => {
    const c = collect();
    const log = loggerTo('info', [c.sink], { stage: 's' });
    const timed = log.child({}, { formatters: { log: (obj) => ({ ...obj, elapsedMs: 1 }) } });
    const inner = timed.child({ containerId: 'x' });
    inner.info({ a: 1 }, 'hi');
    const tagged = inner.child({}, { formatters: { log: (obj) => ({ ...obj, tag: true }) } });
    tagged.info({}, 'again');
    expect(c.lines()).toEqual([
      expect.objectContaining({ stage: 's', containerId: 'x', a: 1, elapsedMs: 1, msg: 'hi' }),
      expect.objectContaining({ elapsedMs: 1, tag: true, msg: 'again' }),
    ]);
  });

  it('appends to the file synchronously, and a silent logger writes nothing', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-log-test-'));
    try {
      const file = path.join(dir, 'sub', 'tsrun.log');
      createLogger({ file, level: 'info', debug: false, bindings: { containerId: 'c' } }).info({ k: 1 }, 'one');
      createLogger({ file, level: 'info', debug: false }).debug({}, 'below the level');
      createLogger({ file, level: 'silent', debug: false }).error({}, 'silent');
      const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).toEqual([expect.objectContaining({ level: 30, containerId: 'c', k: 1, msg: 'one', pid: process.pid })]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
