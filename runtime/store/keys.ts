// Store keys are checked once, here, by every Store implementation: the local store turns a key
// into a file path, so a key that is not a plain relative path of safe segments could escape the
// state root; the other stores apply the same rule so that code tested against one store cannot
// write a key another store would refuse.
import { UserError } from '../../config/errors.js';

/** One path segment. ':' is allowed because IPv6 addresses are lease names. */
const SEGMENT = /^[A-Za-z0-9_.:-]+$/;

export const MAX_SEGMENT = 200;

/** True for a valid segment; '.' and '..' match the charset but are path tricks, not names. */
export function isKeySegment(s: string): boolean {
  return SEGMENT.test(s) && s !== '.' && s !== '..' && s.length <= MAX_SEGMENT;
}

/** Validates a key and returns its segments ("ipam/web/10.88.0.5" → ["ipam", "web", "10.88.0.5"]). */
export function keySegments(key: string): string[] {
  if (typeof key !== 'string' || key.length === 0) throw invalidKey(key, 'it is empty');
  if (key.length > 1024) throw invalidKey(key, 'it is longer than 1024 characters');
  if (key.startsWith('/')) throw invalidKey(key, 'it is absolute; keys are relative paths like "ipam/web/10.88.0.5"');
  const segments = key.split('/');
  for (const s of segments) {
    if (s === '') throw invalidKey(key, 'it has an empty segment');
    if (s === '.' || s === '..') throw invalidKey(key, `it has a "${s}" segment`);
    if (!SEGMENT.test(s)) throw invalidKey(key, `segment ${JSON.stringify(s)} has characters outside [A-Za-z0-9_.:-]`);
    // File names are limited to 255 bytes and the local store adds a ~40-byte temp suffix.
    if (s.length > MAX_SEGMENT) throw invalidKey(key, `a segment is longer than ${MAX_SEGMENT} characters`);
  }
  return segments;
}

export function checkKey(key: string): string {
  keySegments(key);
  return key;
}

/**
 * Validates a list/watch prefix: '' (everything) or a key followed by '/'. Requiring the slash
 * makes prefix boundaries explicit: "a/b/" never matches "a/bc/x".
 */
export function prefixSegments(prefix: string): string[] {
  if (prefix === '') return [];
  if (typeof prefix !== 'string' || !prefix.endsWith('/')) {
    throw new UserError(`invalid store prefix ${JSON.stringify(prefix)}: a prefix is '' or a key path ending in '/'`);
  }
  try {
    return keySegments(prefix.slice(0, -1));
  } catch (e) {
    throw new UserError(`invalid store prefix ${JSON.stringify(prefix)}: ${(e as UserError).shortMessage.replace(/^.*?: /, '')}`);
  }
}

export function checkPrefix(prefix: string): string {
  prefixSegments(prefix);
  return prefix;
}

/** Plain code-unit order, which for this ASCII charset is etcd's byte order. */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function invalidKey(key: unknown, why: string): UserError {
  const shown = typeof key === 'string' ? JSON.stringify(key.length > 80 ? `${key.slice(0, 77)}...` : key) : String(key);
  return new UserError(`invalid store key ${shown}: ${why}`);
}

/**
 * The local store keeps a key as a file and a prefix as a directory, so one path cannot be both.
 * Every store refuses it, so layouts that only the local store would reject are caught in unit tests.
 */
export function leafConflict(key: string, other: string): UserError {
  return new UserError(`store key ${JSON.stringify(key)} conflicts with key ${JSON.stringify(other)}: a key cannot also be a prefix of other keys`);
}

/**
 * Parses directory patterns for LocalStore's `keep` option: key prefixes ending in '/' in which a
 * segment written as a star stands for any one segment (so hostports, a star and a slash names
 * every directory one level below hostports/).
 */
export function parseDirPatterns(patterns: readonly string[]): string[][] {
  return patterns.map((p) => {
    if (!p.endsWith('/')) throw new UserError(`invalid directory pattern ${JSON.stringify(p)}: it must end in '/'`);
    const segments = p.slice(0, -1).split('/');
    for (const s of segments) if (s !== '*' && !isKeySegment(s)) throw new UserError(`invalid directory pattern ${JSON.stringify(p)}`);
    return segments;
  });
}

/** True when the directory `segments` (relative to the store's root) matches one of `patterns`. */
export function matchesDirPattern(segments: readonly string[], patterns: readonly (readonly string[])[]): boolean {
  return patterns.some((p) => p.length === segments.length && p.every((s, i) => s === '*' || s === segments[i]));
}
