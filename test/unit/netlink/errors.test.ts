import { describe, expect, it } from '@jest/globals';
import { ConflictError, NotFoundError, SystemError } from '../../../config/errors.js';
import { errnoCode, kernelError } from '../../../runtime/netlink/errors.js';
import { ErrnoError, errnoName, errnoNames, hasCode, strerror } from '../../../runtime/netns/errno.js';
import os from 'node:os';
import { sysctlPath } from '../../../runtime/netlink/sysctl.js';

describe('errno', () => {
  it('names errnos and words them like the C library', () => {
    expect(errnoName(17)).toBe('EEXIST');
    expect(errnoName(-19)).toBe('ENODEV');
    expect(strerror(17)).toBe('File exists');
    expect(strerror(11)).toBe('Resource temporarily unavailable'); // EAGAIN, named EWOULDBLOCK
    expect(strerror(99)).toBe('Cannot assign requested address');
    expect(errnoName(4000)).toBe('E4000');
    const e = new ErrnoError(22, 'setns', '(fd 3)');
    expect(e).toMatchObject({ code: 'EINVAL', errno: 22, syscall: 'setns', message: 'setns (fd 3): Invalid argument' });
    expect(hasCode(e, 'EPERM', 'EINVAL')).toBe(true);
    expect(hasCode(new Error('x'), 'EINVAL')).toBe(false);
  });

  it('the built-in table for Linux x64 and arm64 is os.constants.errno, number for number (the last name of an alias)', () => {
    const fromOs = new Map(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));
    if (process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64')) expect(errnoNames()).toEqual(fromOs);
    // Elsewhere: os.constants itself.
    expect(errnoNames('linux', 'mips')).toEqual(fromOs);
    expect(errnoNames('linux', 'x64').get(11)).toBe('EWOULDBLOCK');
  });
});

describe('kernelError', () => {
  it('maps "exists" to ConflictError with the object named', () => {
    const e = kernelError('create veth "tsv1234"', 17);
    expect(e).toBeInstanceOf(ConflictError);
    expect(e.shortMessage).toBe('create veth "tsv1234": File exists');
    expect(errnoCode(e)).toBe('EEXIST');
  });

  it('maps "no such device/entry/process" (and extra codes on request) to NotFoundError', () => {
    for (const errno of [19, 2, 3]) expect(kernelError('delete link "x"', errno)).toBeInstanceOf(NotFoundError);
    expect(kernelError('delete address', 99)).toBeInstanceOf(SystemError);
    expect(kernelError('delete address', 99, ['EADDRNOTAVAIL'])).toBeInstanceOf(NotFoundError);
  });

  it('turns anything else into a SystemError carrying the step', () => {
    const e = kernelError('add route default via 10.0.0.1', 101);
    expect(e).toBeInstanceOf(SystemError);
    expect((e as SystemError).step).toBe('add route default via 10.0.0.1');
    expect(e.shortMessage).toBe('add route default via 10.0.0.1: Network is unreachable');
    expect(errnoCode(e)).toBe('ENETUNREACH');
  });
});

describe('sysctlPath', () => {
  it('accepts dotted and slashed keys and refuses escapes', () => {
    expect(sysctlPath('net.ipv4.ip_forward')).toBe('/proc/sys/net/ipv4/ip_forward');
    expect(sysctlPath('net/ipv4/conf/eth0.10/forwarding')).toBe('/proc/sys/net/ipv4/conf/eth0.10/forwarding');
    expect(() => sysctlPath('net/../../etc/passwd')).toThrow(/invalid sysctl key/);
    expect(() => sysctlPath('net..ipv4')).toThrow(/invalid sysctl key/);
  });
});
