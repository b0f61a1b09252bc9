// The pure parts of the detached-container verbs: log parsing, exec's argument split, signals,
// ps formatting, conmon's command line, id resolution and status derivation over state files.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LogParser } from '../../../../shim/lifecycle/logs.js';
import { separateExecCommand } from '../../../../shim/lifecycle/commands.js';
import { parseSignal } from '../../../../shim/lifecycle/signals.js';
import { duration, formatPort, formatTable, type PsEntry } from '../../../../shim/lifecycle/ps.js';
import { conmonArgs } from '../../../../shim/lifecycle/conmon.js';
import { DEFAULT_LOG_MAX_BYTES, detachOptionsOf } from '../../../../shim/lifecycle/detach-options.js';
import { pathsOf } from '../../../../shim/lifecycle/record.js';
import { detachedIds, NoSuchContainer, noSuchContainers, resolveId, resolveIds } from '../../../../shim/lifecycle/resolve.js';
import { reportFailure } from '../../../../shim/setup.js';
import { viewOf } from '../../../../shim/lifecycle/status.js';
import { monitorEnv } from '../../../../shim/lifecycle/create.js';
import { resolveSettings } from '../../../../config/settings.js';
import { UserError } from '../../../../config/errors.js';

describe('k8s-file log parsing', () => {
  it('splits streams, joins partial records, keeps times, waits for the end of a line', () => {
    const p = new LogParser();
    expect(p.push('2026-01-01T00:00:00.1+00:00 stdout F hello\n2026-01-01T00:00:00.2+00:00 stderr F oops\n2026-01-01T00:00:00.3+00:00 stdout P par')).toEqual([
      { time: '2026-01-01T00:00:00.1+00:00', stream: 'stdout', text: 'hello' },
      { time: '2026-01-01T00:00:00.2+00:00', stream: 'stderr', text: 'oops' },
    ]);
    expect(p.push('t\n2026-01-01T00:00:00.4+00:00 stdout F ial\n')).toEqual([{ time: '2026-01-01T00:00:00.3+00:00', stream: 'stdout', text: 'partial' }]);
  });

  it('gives the last line without its end once nothing more will come', () => {
    const p = new LogParser();
    expect(p.push('T stdout F one\nT stdout P tw')).toEqual([{ time: 'T', stream: 'stdout', text: 'one' }]);
    expect(p.push('o\n')).toEqual([]);
    expect(p.flush()).toEqual([{ time: 'T', stream: 'stdout', text: 'two', partial: true }]);
    expect(p.flush()).toEqual([]);
  });

  it('keeps spaces in the text and accepts an empty line', () => {
    const p = new LogParser();
    expect(p.push('T stdout F  two  spaces \nT stdout F \nT stdout F\n').map((r) => r.text)).toEqual([' two  spaces ', '', '']);
  });
});

describe('exec arguments', () => {
  const argv = (...a: string[]) => ['node', 'tsrun', ...a];
  it.each([
    [argv('exec', 'web', 'ip', '-o', 'addr'), argv('exec', 'web', '--', 'ip', '-o', 'addr')],
    [argv('exec', '-e', 'A=b', '-w', '/tmp', '-t', 'web', 'sh', '-c', 'x'), argv('exec', '-e', 'A=b', '-w', '/tmp', '-t', 'web', '--', 'sh', '-c', 'x')],
    [argv('--root', '/r', 'exec', 'web', 'ls', '-l'), argv('--root', '/r', 'exec', 'web', '--', 'ls', '-l')],
    [argv('exec', 'web', '--', 'ls', '-l'), argv('exec', 'web', '--', 'ls', '-l')],
    [argv('exec', '-u', 'nobody', 'web', 'id', '-u'), argv('exec', '-u', 'nobody', 'web', '--', 'id', '-u')],
    [argv('exec', '--user', '0:0', '-i', 'web', 'sh'), argv('exec', '--user', '0:0', '-i', 'web', '--', 'sh')],
    [argv('exec', '--env-file', 'a.env', 'web', 'env'), argv('exec', '--env-file', 'a.env', 'web', '--', 'env')],
    [argv('run', '--name', 'exec', 'b'), argv('run', '--name', 'exec', 'b')],
    [argv('run', 'exec'), argv('run', 'exec')],
    [argv('exec'), argv('exec')],
  ])('%j', (input, expected) => {
    expect(separateExecCommand(input)).toEqual(expected);
  });
});

describe('signals', () => {
  it.each([
    ['TERM', 'SIGTERM'],
    ['sigkill', 'SIGKILL'],
    ['SIGUSR1', 'SIGUSR1'],
    ['9', 'SIGKILL'],
    ['15', 'SIGTERM'],
  ])('%s → %s', (s, name) => expect(parseSignal(s)).toBe(name));

  it.each(['NOPE', '0', '-1', '', 'SIG'])('%j is refused in one line', (s) => {
    expect(() => parseSignal(s)).toThrow(UserError);
  });
});

describe('ps formatting', () => {
  it('formats ports, durations and a table with status, address and command', () => {
    expect(formatPort({ hostPort: 8080, containerPort: 80, protocol: 'tcp' })).toBe('0.0.0.0:8080->80/tcp');
    expect(formatPort({ hostIp: '::1', hostPort: 53, containerPort: 53, protocol: 'udp' })).toBe('[::1]:53->53/udp');
    expect([duration(5_000), duration(125_000), duration(3 * 3600_000 + 60_000), duration(2 * 86400_000)]).toEqual(['5s', '2m05s', '3h01m', '2d0h']);
    const now = Date.parse('2026-01-01T00:01:00Z');
    const entries: PsEntry[] = [
      { id: 'web', status: 'running', pid: 42, detached: true, networks: [{ network: 'tsrun', ipv4: '10.88.0.2', mac: 'x' }], ports: ['0.0.0.0:8080->80/tcp'], created: '', startedAt: '2026-01-01T00:00:00Z', command: ['httpd', '-f'] },
      { id: 'job', status: 'exited', exitCode: 3, detached: true, networks: [], ports: [], created: '', command: ['sh', '-c', 'exit 3'] },
    ];
    const lines = formatTable(entries, now).split('\n');
    expect(lines[0]).toMatch(/^CONTAINER ID\s+STATUS\s+PID\s+NETWORKS\s+PORTS\s+UPTIME\s+COMMAND$/);
    expect(lines[1]).toMatch(/^web\s+running\s+42\s+tsrun:10\.88\.0\.2\s+0\.0\.0\.0:8080->80\/tcp\s+1m00s\s+httpd -f$/);
    expect(lines[2]).toMatch(/^job\s+exited \(3\)\s+-\s+-\s+-\s+-\s+sh -c exit 3$/);
  });
});

describe('conmon command line', () => {
  it('names the runtime, its private root, the log, exit dir, exit command and the tty mode', () => {
    const p = pathsOf('/run/x', 'web');
    const args = conmonArgs({ id: 'web', paths: p, runc: { binary: '/usr/sbin/runc', root: '/run/x/runc' }, tty: false, stdin: true, exitCommand: ['/usr/bin/node', '/opt/tsrun.cjs', 'cleanup', '--instance', 'abc', 'web'], env: {} });
    const value = (flag: string) => args[args.indexOf(flag) + 1];
    expect(value('--api-version')).toBe('1');
    expect(value('-c')).toBe('web');
    expect(value('-r')).toBe('/usr/sbin/runc');
    expect(value('-b')).toBe('/run/x/containers/web/bundle');
    expect(value('-l')).toBe('k8s-file:/run/x/containers/web/ctr.log');
    expect(value('--exit-dir')).toBe('/run/x/containers/web/exits');
    expect(value('--exit-command')).toBe('/usr/bin/node');
    expect(args.filter((_, i) => args[i - 1] === '--exit-command-arg')).toEqual(['/opt/tsrun.cjs', 'cleanup', '--instance', 'abc', 'web']);
    expect(args.filter((_, i) => args[i - 1] === '--runtime-arg')).toEqual(['--root=/run/x/runc', '--log-format=json', '--log=/run/x/containers/web/runc.log']);
    expect(args).toContain('-i');
    expect(args).not.toContain('-t');
    expect(conmonArgs({ id: 'web', paths: p, runc: { binary: 'runc', root: '/r' }, tty: true, stdin: true, exitCommand: ['x'], env: {} })).toContain('-t');
    expect(args).not.toContain('--log-size-max');
  });

  it('passes the log limit, and none for -1', () => {
    const base = { id: 'web', paths: pathsOf('/run/x', 'web'), runc: { binary: 'runc', root: '/r' }, tty: false, stdin: false, exitCommand: ['x'], env: {} };
    const args = conmonArgs({ ...base, logSizeMax: 4096 });
    expect(args[args.indexOf('--log-size-max') + 1]).toBe('4096');
    expect(conmonArgs({ ...base, logSizeMax: -1 })).not.toContain('--log-size-max');
  });
});

describe('options of detached containers', () => {
  it('defaults: a 10 MiB log, SIGTERM; sizes and signals are normalized', () => {
    expect(detachOptionsOf({})).toEqual({ tty: false, stdin: false, logMaxBytes: DEFAULT_LOG_MAX_BYTES, stopSignal: 'SIGTERM' });
    expect(DEFAULT_LOG_MAX_BYTES).toBe(10 * 1024 * 1024);
    expect(detachOptionsOf({ logMaxSize: '4k', stopSignal: '10', tty: true })).toEqual({ tty: true, stdin: false, logMaxBytes: 4096, stopSignal: 'SIGUSR1' });
    // --rm: removed once it has ended (kept in the record as autoRemove)
    expect(detachOptionsOf({ rm: true })).toEqual({ tty: false, stdin: false, logMaxBytes: DEFAULT_LOG_MAX_BYTES, stopSignal: 'SIGTERM', autoRemove: true });
    expect(detachOptionsOf({ logMaxSize: '-1', stopSignal: 'int' }).logMaxBytes).toBe(-1);
    expect(() => detachOptionsOf({ logMaxSize: '0' })).toThrow(UserError);
    expect(() => detachOptionsOf({ stopSignal: 'NOPE' })).toThrow('invalid signal "NOPE"');
  });

  it('gives the exit command the settings of this process', () => {
    const withRoot = monitorEnv(resolveSettings({}, { root: '/tmp/r', store: 'local' }));
    expect(withRoot.TSRUN_ROOT).toBe('/tmp/r');
    expect(withRoot.TSRUN_STORE).toBe('local');
    expect(withRoot.TSRUN_LOG).toBe('/tmp/r/log/tsrun.log');
    const fhs = monitorEnv(resolveSettings({}, {}));
    expect(fhs.TSRUN_ROOT === undefined || process.env.TSRUN_ROOT !== undefined).toBe(true);
  });
});

describe('ids and status from the state directory', () => {
  let runDir: string;
  beforeEach(() => {
    runDir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-lifecycle-'));
  });
  afterEach(() => rmSync(runDir, { recursive: true, force: true }));

  function container(id: string, rec: Record<string, unknown>, lifecycle?: Record<string, unknown>, exitCode?: number) {
    const p = pathsOf(runDir, id);
    mkdirSync(p.exitDir, { recursive: true });
    writeFileSync(path.join(p.dir, 'container.json'), JSON.stringify({ id, ownerPid: 1, ownerStart: '', created: '2026-01-01T00:00:00Z', bundle: '/b', ...rec }));
    if (lifecycle) writeFileSync(p.record, JSON.stringify({ id, instance: 'i', created: '2026-01-01T00:00:00Z', options: {}, command: ['x'], tty: false, stdin: false, ...lifecycle }));
    if (exitCode !== undefined) writeFileSync(p.exitFile, String(exitCode));
  }

  it('resolves exact ids, unique prefixes, and refuses unknown and ambiguous names in one line', () => {
    container('web-1', {});
    container('web-2', {});
    container('db', {});
    expect(resolveId(runDir, 'web-1')).toBe('web-1');
    expect(resolveId(runDir, 'd')).toBe('db');
    expect(resolveIds(runDir, ['db', 'db', 'web-2'])).toEqual(['db', 'web-2']);
    expect(() => resolveId(runDir, 'nope')).toThrow('no such container: nope');
    expect(() => resolveId(runDir, 'web')).toThrow('container id prefix web matches 2 containers (web-1, web-2): give more of the id');
    expect(() => resolveId(runDir, '')).toThrow('no such container: ');
  });

  it("detachedIds with a missing list (rm -f): names that match nothing are set aside, any other refusal still fails", () => {
    container('web-1', { detached: 'monitored' });
    container('web-2', { detached: 'monitored' });
    container('fg', {});
    const missing: string[] = [];
    expect(detachedIds(runDir, ['nope', 'web-1', '../x', 'web-1', ''], missing)).toEqual(['web-1']);
    expect(missing).toEqual(['nope', '../x', '']);
    expect(() => detachedIds(runDir, ['nope', 'web'], [])).toThrow('container id prefix web matches 2 containers');
    expect(() => detachedIds(runDir, ['nope', 'fg'], [])).toThrow('container fg runs in the foreground');
    expect(() => detachedIds(runDir, ['web-1', 'nope'])).toThrow('no such container: nope');
  });

  it("a name that matches no container is NoSuchContainer, exit 1 (docker's); other refusals stay 125; the foreground hint names the verb", () => {
    container('web-1', { detached: 'monitored' });
    container('fg', {});
    expect(() => resolveId(runDir, 'nope')).toThrow(NoSuchContainer);
    expect(new NoSuchContainer('no such container: x').exitCode).toBe(1);
    expect(noSuchContainers(['a', 'b']).shortMessage).toBe('no such container: a; no such container: b');
    const missing: string[] = [];
    expect(resolveIds(runDir, ['nope', 'web-1', 'gone'], missing)).toEqual(['web-1']);
    expect(missing).toEqual(['nope', 'gone']);
    expect(() => detachedIds(runDir, ['fg'], undefined, undefined, 'logs')).toThrow("its output goes to that process's stdout and stderr, and no log is kept");
    expect(() => detachedIds(runDir, ['fg'], undefined, undefined, 'wait')).toThrow('tsrun wait works on detached containers (run -d, create)');
    expect(() => detachedIds(runDir, ['fg'])).toThrow('stop it, or end that process');
    const stderr = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      expect(reportFailure(noSuchContainers(['x']))).toBe(1);
      expect(reportFailure(new UserError('container x is running'))).toBe(125);
    } finally {
      process.stderr.write = stderr;
    }
  });

  it('detachedIds: an unreadable record is set aside for rm -f (unreadable list), refused in one line otherwise', () => {
    container('web-1', { detached: 'monitored' });
    container('torn', { detached: 'monitored' });
    const file = path.join(runDir, 'containers', 'torn', 'container.json');
    writeFileSync(file, readFileSync(file, 'utf8').slice(0, 10));
    const missing: string[] = [];
    const unreadable: string[] = [];
    expect(detachedIds(runDir, ['torn', 'web-1', 'nope'], missing, unreadable)).toEqual(['web-1']);
    expect({ missing, unreadable }).toEqual({ missing: ['nope'], unreadable: ['torn'] });
    expect(() => detachedIds(runDir, ['torn'])).toThrow(`container torn: its record ${file} is unreadable (truncated or corrupt): tsrun rm -f torn removes it`);
    expect(() => detachedIds(runDir, ['torn'], [])).toThrow('is unreadable');
  });

  it('derives the status: exit file first, then what cleanup recorded, then runc', () => {
    container('ended', { detached: 'monitored' }, {}, 137);
    expect(viewOf(runDir, 'ended', { id: 'ended', pid: 0, status: 'stopped', created: '' })).toEqual(expect.objectContaining({ status: 'exited', exitCode: 137 }));
    container('cleaned', { detached: 'monitored' }, { cleanedUp: true, exitCode: 2, finishedAt: 'T' });
    expect(viewOf(runDir, 'cleaned', undefined)).toEqual(expect.objectContaining({ status: 'exited', exitCode: 2, finishedAt: 'T' }));
    container('up', { detached: 'monitored' }, {});
    expect(viewOf(runDir, 'up', { id: 'up', pid: 7, status: 'running', created: '' })).toEqual(expect.objectContaining({ status: 'running', pid: 7 }));
    expect(viewOf(runDir, 'up', { id: 'up', pid: 7, status: 'created', created: '' })?.status).toBe('created');
    expect(viewOf(runDir, 'up', undefined)?.status).toBe('exited'); // monitor died before any record
    container('new', { detached: 'setup' }, {});
    expect(viewOf(runDir, 'new', undefined)?.status).toBe('creating');
    container('fg', {});
    expect(viewOf(runDir, 'fg', { id: 'fg', pid: 9, status: 'running', created: '' })).toEqual(expect.objectContaining({ status: 'running', pid: 9, lifecycle: undefined }));
    expect(viewOf(runDir, 'missing', undefined)).toBeUndefined();
  });
});
