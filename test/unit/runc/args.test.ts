import { describe, expect, it } from '@jest/globals';
import { flagIsTrue, parseRuncArgs } from '../../../runc/args.js';

describe('parseRuncArgs', () => {
  it('reads global flags in both forms, the command, its flags and the id (containerd\'s create)', () => {
    const a = parseRuncArgs(['--root', '/run/containerd/runc/default', '--log=/b/log.json', '--log-format', 'json', '--systemd-cgroup', 'create', '--bundle', '/b', '--pid-file', '/b/init.pid', '--console-socket=/s', 'ctr1']);
    expect([...a.globals]).toEqual([['root', '/run/containerd/runc/default'], ['log', '/b/log.json'], ['log-format', 'json'], ['systemd-cgroup', 'true']]);
    expect(a.globalWords).toEqual(['--root', '/run/containerd/runc/default', '--log=/b/log.json', '--log-format', 'json', '--systemd-cgroup']);
    expect(a.command).toBe('create');
    expect(a.flags.get('bundle')).toBe('/b');
    expect(a.flags.get('pid-file')).toBe('/b/init.pid');
    expect(a.flags.get('console-socket')).toBe('/s');
    expect(a.positionals).toEqual(['ctr1']);
    expect(a.version).toBe(false);
  });

  it('takes single-dash long flags and short aliases (Go\'s flag package)', () => {
    const a = parseRuncArgs(['-root', '/r', 'create', '-b', '/b', '--no-pivot', '--preserve-fds', '2', 'x']);
    expect(a.globals.get('root')).toBe('/r');
    expect(a.flags.get('bundle')).toBe('/b');
    expect(a.flags.get('no-pivot')).toBe('true');
    expect(a.flags.get('preserve-fds')).toBe('2');
    expect(a.positionals).toEqual(['x']);
  });

  it('delete --force / -f, run -d', () => {
    expect(parseRuncArgs(['delete', '-f', 'x']).flags.get('force')).toBe('true');
    expect(parseRuncArgs(['delete', '--force=false', 'x']).flags.get('force')).toBe('false');
    expect(parseRuncArgs(['run', '-d', '-b', '/b', 'x']).flags.get('detach')).toBe('true');
  });

  it('--version and -v only before a command', () => {
    expect(parseRuncArgs(['--version']).version).toBe(true);
    expect(parseRuncArgs(['-v']).version).toBe(true);
    expect(parseRuncArgs(['exec', '-v', 'x']).version).toBe(false);
  });

  it('other commands: their words are positionals, untouched', () => {
    const a = parseRuncArgs(['--root', '/r', 'exec', '--process', '/p.json', '--detach', 'x']);
    expect(a.command).toBe('exec');
    expect(a.flags.size).toBe(0);
    expect(a.positionals).toEqual(['--process', '/p.json', '--detach', 'x']);
  });

  it('no command at all', () => {
    const a = parseRuncArgs(['--debug']);
    expect(a.command).toBeUndefined();
    expect(a.positionals).toEqual([]);
  });

  it('flagIsTrue follows Go\'s strconv.ParseBool', () => {
    expect(['true', '1', 't', 'TRUE'].every(flagIsTrue)).toBe(true);
    expect(['false', '0', '', undefined].some((v) => flagIsTrue(v))).toBe(false);
  });
});
