import { describe, expect, it } from '@jest/globals';
import { DetachedRuncFailure, runcFailureStatus } from '../../../shim/runc.js';

// runc's own lines (runc 1.1), as its JSON log records them.
const notFound = 'unable to start container process: exec: "/nonexistent": stat /nonexistent: no such file or directory';
const notInPath = 'unable to start container process: exec: "nosuch": executable file not found in $PATH';
const noExecBit = 'unable to start container process: exec: "/etc/passwd": permission denied';
const badFormat = 'unable to start container process: exec: "/bin/x": exec format error';
const missingSource = 'unable to start container process: error during container init: error mounting "/tmp/no-such-dir" to rootfs at "/data": stat /tmp/no-such-dir: no such file or directory';
const cgroup = 'unable to apply cgroup configuration: mkdir /sys/fs/cgroup/x: permission denied';

describe('runcFailureStatus: docker\'s 125/126/127', () => {
  it('127 when the program is not found, whether runc looked before creating or at exec', () => {
    expect(runcFailureStatus(notFound, false)).toBe(127);
    expect(runcFailureStatus(notInPath, false)).toBe(127);
    expect(runcFailureStatus(notFound, true)).toBe(127);
  });

  it('126 when the program exists but cannot run, also when runc refused it before creating', () => {
    expect(runcFailureStatus(noExecBit, false)).toBe(126);
    expect(runcFailureStatus(badFormat, false)).toBe(126);
    expect(runcFailureStatus('anything else', true)).toBe(126);
  });

  it('125 when the container never started for another reason (a permission elsewhere too)', () => {
    expect(runcFailureStatus(cgroup, false)).toBe(125);
  });

  it('runc 1.0\'s lines (its Go file and line before the clause): 127 and 126 as with runc 1.1, a missing mount source 125', () => {
    // runc 1.0.x / 1.0.0-rc9x, as its JSON log records them (before, any "no such file" gave 127).
    expect(runcFailureStatus('container_linux.go:380: starting container process caused: exec: "nosuch": executable file not found in $PATH', false)).toBe(127);
    expect(runcFailureStatus('container_linux.go:367: starting container process caused: exec: "/nonexistent": stat /nonexistent: no such file or directory', false)).toBe(127);
    expect(runcFailureStatus('container_linux.go:380: starting container process caused: exec: "/etc/passwd": permission denied', false)).toBe(126);
    expect(runcFailureStatus('container_linux.go:380: starting container process caused: process_linux.go:545: container init caused: rootfs_linux.go:76: mounting "/tmp/x" to rootfs at "/data" caused: stat /tmp/x: no such file or directory', false)).toBe(125);
  });

  it('125, not 127, for a bind-mount source that does not exist (runc 1.1\'s line, measured), whatever its path says', () => {
    expect(runcFailureStatus(missingSource, false)).toBe(125);
    const tricky = 'unable to start container process: error during container init: error mounting "/tmp/exec: \\"x\\": no such file or directory" to rootfs at "/data": stat /tmp/x: no such file or directory';
    expect(runcFailureStatus(tricky, false)).toBe(125);
    expect(runcFailureStatus(tricky.replace('/tmp/exec', '/tmp/container process: exec'), false)).toBe(125);
    // A program whose quoted name has escapes is still the program.
    expect(runcFailureStatus('unable to start container process: exec: "/a \\"b\\"": stat /a "b": no such file or directory', false)).toBe(127);
  });

  it('the detached failure prints runc\'s line and carries the status', () => {
    const e = new DetachedRuncFailure(notFound, false);
    expect(e.shortMessage).toBe(`runc: ${notFound}`);
    expect(e.exitCode).toBe(127);
    expect((e as { alreadyReported?: boolean }).alreadyReported).toBeUndefined();
  });
});
