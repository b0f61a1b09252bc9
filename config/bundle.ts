// The one loader of a bundle's config.json, for every front door: `tsrun run` (shim/bundle.ts),
// the hook's annotation fallback (hook/annotations.ts), `tsrun spec add-hooks`
// (hook/register.ts) and the OCI runtime. Read, parse, validate, with the same rules and messages
// everywhere; errors name the bundle as the user gave it.
//
// Only a regular file is read (a FIFO planted there must not hang a hook), opened non-blocking,
// and at most CONFIG_MAX_BYTES of it: a config.json is a few KiB.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.js';
import { SpecSchema, type Spec } from './oci.js';
import { parseOrThrow } from './validate.js';

export const CONFIG_MAX_BYTES = 8 * 1024 * 1024;

export interface BundleConfig {
  /** The bundle directory, absolute. */
  dir: string;
  /** dir/config.json */
  file: string;
  /** The document as parsed, every field kept (what a rewrite writes back). */
  raw: Record<string, unknown>;
  /** The same document, validated against the runtime spec. */
  spec: Spec;
}

/**
 * The whole text (UTF-8) of the file open on `fd`, which this closes: only a regular file of at most
 * `max` bytes, otherwise `refuse`'s error is thrown. The one bounded read of a file another party
 * may have planted (a bundle's config.json, a root filesystem's /etc/passwd, containers/storage's
 * records): opened by the caller with O_NONBLOCK, so that a FIFO there does not block the open.
 */
export function readRegularFd(fd: number, max: number, refuse: (why: 'not a regular file' | 'too large') => Error): string {
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw refuse('not a regular file');
    if (st.size > max) throw refuse('too large');
    const buf = Buffer.allocUnsafe(st.size);
    let got = 0;
    while (got < st.size) {
      const n = readSync(fd, buf, got, st.size - got, got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads and parses `<bundle>/config.json` without validating it. With `missingOk`, a bundle or
 * config.json that does not exist gives undefined (at poststop the bundle may be gone).
 */
export function readBundleJson(bundle: string, opts: { missingOk?: boolean } = {}): { dir: string; file: string; json: unknown } | undefined {
  const dir = path.resolve(bundle);
  const file = path.join(dir, 'config.json');
  const fail = (why: string) => new UserError(`bundle ${bundle}: config.json ${why}`);
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      if (opts.missingOk) return undefined;
      throw fail('not found');
    }
    throw fail(`cannot be read (${code ?? (err as Error).message})`);
  }
  const text = readRegularFd(fd, CONFIG_MAX_BYTES, (why) => fail(why === 'too large' ? `is larger than ${CONFIG_MAX_BYTES} bytes` : 'is not a regular file'));
  try {
    return { dir, file, json: JSON.parse(text) };
  } catch (err) {
    throw fail(`is not valid JSON: ${(err as Error).message}`);
  }
}

/** Reads, parses and validates `<bundle>/config.json`; errors name the field. */
export function loadBundleConfig(bundle: string): BundleConfig {
  const { dir, file, json } = readBundleJson(bundle)!;
  const spec = parseOrThrow(SpecSchema, json, `bundle ${bundle}: config.json`);
  return { dir, file, raw: json as Record<string, unknown>, spec };
}
