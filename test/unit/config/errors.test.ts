import { describe, expect, it } from '@jest/globals';
import { ConflictError, NotFoundError, SystemError, UserError, blameOf, userFacingMessage } from '../../../config/errors.js';
import { kernelError } from '../../../runtime/netlink/errors.js';

describe('error classes', () => {
  it("tell the user's mistakes from the system's", () => {
    expect(blameOf(new UserError('invalid --memory "lots"'))).toBe('user');
    expect(blameOf(new SystemError('create veth "tsv1234"', new Error('boom')))).toBe('system');
    expect(blameOf(new TypeError('x is undefined'))).toBe('internal');
  });

  it('count a lookup of what the user named as theirs', () => {
    expect(new NotFoundError('network web not found').kind).toBe('user');
    expect(new ConflictError('network web already exists').kind).toBe('user');
  });

  it("count the kernel's ENOENT or EEXIST in the middle of an attach as the system's", () => {
    const gone = kernelError('set link "tsv1234" up', 2);
    expect(gone).toBeInstanceOf(NotFoundError);
    expect(gone.kind).toBe('system');
    expect(gone).not.toBeInstanceOf(UserError);
    expect(kernelError('create veth "tsv1234"', 17).kind).toBe('system');
    expect(new NotFoundError('network namespace "/proc/1/ns/net" not found', { cause: new Error('ENOENT') }).kind).toBe('system');
    expect(new ConflictError('pin exists', { cause: new Error('EEXIST'), kind: 'user' }).kind).toBe('user');
  });

  it('print one line for any of them', () => {
    expect(userFacingMessage(new ConflictError('a\n  b'))).toBe('a; b');
    expect(userFacingMessage('weird')).toBe('internal error: weird');
  });
});
