import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatRuncLogLine, reportRuncError } from '../../../runc/runc-log.js';

const at = new Date('2026-11-29T07:00:57.123Z');

describe('runc-style error reporting', () => {
  it('json and text lines in runc\'s (logrus\') shapes', () => {
    expect(formatRuncLogLine('error', 'network "x" not found', 'json', at)).toBe('{"level":"error","msg":"network \\"x\\" not found","time":"2026-11-29T07:00:57Z"}\n');
    expect(formatRuncLogLine('error', 'container does not exist', undefined, at)).toBe('time="2026-11-29T07:00:57Z" level=error msg="container does not exist"\n');
  });

  it('with --log: the line goes to the file, the bare message to stderr; without: the line to stderr', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-runclog-'));
    try {
      const file = path.join(dir, 'log.json');
      const err: string[] = [];
      reportRuncError({ file, format: 'json' }, 'boom', (s) => err.push(s));
      expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ level: 'error', msg: 'boom' });
      expect(err).toEqual(['boom\n']);
      const err2: string[] = [];
      reportRuncError({}, 'boom', (s) => err2.push(s));
      expect(err2[0]).toMatch(/^time=".*" level=error msg="boom"\n$/);
      // an unwritable log still leaves the stderr line
      const err3: string[] = [];
      reportRuncError({ file: path.join(dir, 'no', 'such', 'dir', 'log') }, 'boom', (s) => err3.push(s));
      expect(err3).toEqual(['boom\n']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
