// Running nft: one JSON batch, applied by the kernel atomically, and listings of table inet
// tsrun. Only this file executes nft; everything else builds JSON.
//
// Not `nft -j -f -`: nft reads "-" by opening /dev/stdin, and Node gives a child's stdin as a
// socketpair, which cannot be opened that way (ENXIO). A batch therefore goes to nft as its
// command-line argument (`nft -j '<json>'`, the same parser), and one too large for an argument
// (the kernel caps one at 128 KiB) as a private temporary file (`nft -j -f <file>`).
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { SystemError } from '../../config/errors.js';
import { resolveBinary } from '../binaries.js';
import { FAMILY, TABLE, countRulesIn, type NftBatch, type NftListing } from './nft-rules.js';
import { silentLogger, type StepLogger } from '../step-log.js';

export interface NftOptions {
  /** nft by name (looked up in PATH and the system directories) or by path. Default "nft". */
  nftBinary?: string;
  /**
   * Run nft inside this network namespace (e.g. /proc/<pid>/ns/net) through nsenter. For tests
   * and sandboxes; the engine leaves it unset and nft acts on tsrun's own namespace.
   */
  netns?: string;
  log?: StepLogger;
  /** Batches longer than this (bytes of JSON) go through a temporary file. Default 96 KiB. */
  argMax?: number;
  /** Directory for those files. Default os.tmpdir(). */
  tmpDir?: string;
}

/** Why nft refused, from its errno text (nft is run with LC_ALL=C). */
export type NftFailure = 'exists' | 'not-found' | 'busy' | 'other';

/** nft ran and failed; `detail` is the first line of its stderr. */
export class NftError extends SystemError {
  readonly reason: NftFailure;
  readonly stderr: string;
  constructor(step: string, stderr: string, cause: unknown) {
    super(step, cause, firstLine(stderr) || 'nft failed without a message');
    this.stderr = stderr;
    this.reason = /File exists/.test(stderr) ? 'exists' : /No such file or directory/.test(stderr) ? 'not-found' : /resource busy/.test(stderr) ? 'busy' : 'other';
  }
}

export function isNftError(e: unknown, reason?: NftFailure): e is NftError {
  return e instanceof NftError && (reason === undefined || e.reason === reason);
}

/** Applies one batch atomically: all of it or none of it. An empty batch runs nothing. */
export async function applyBatch(batch: NftBatch, opts: NftOptions & { step?: string } = {}): Promise<void> {
  if (batch.nftables.length === 0) return;
  const json = JSON.stringify(batch);
  const step = opts.step ?? 'apply nftables batch';
  if (Buffer.byteLength(json) <= (opts.argMax ?? 96 * 1024)) {
    await runNft(['-j', json], opts, step);
    return;
  }
  const file = path.join(opts.tmpDir ?? tmpdir(), `tsrun-nft-${process.pid}-${randomBytes(6).toString('hex')}.json`);
  try {
    await writeFile(file, json, { mode: 0o600, flag: 'wx' });
    await runNft(['-j', '-f', file], opts, step);
  } finally {
    await rm(file, { force: true });
  }
}

/** table inet tsrun as nft prints it, or undefined when it does not exist. `terse` omits elements. */
export async function listTsrunTable(opts: NftOptions & { terse?: boolean } = {}): Promise<NftListing | undefined> {
  const args = ['-j', ...(opts.terse ? ['-t'] : []), 'list', 'table', FAMILY, TABLE];
  let out: string;
  try {
    out = await runNft(args, opts, `list nftables table ${FAMILY} ${TABLE}`);
  } catch (err) {
    if (isNftError(err, 'not-found')) return undefined;
    throw err;
  }
  try {
    return JSON.parse(out) as NftListing;
  } catch (err) {
    throw new SystemError(`parse nft listing of ${FAMILY} ${TABLE}`, err);
  }
}

/** Rules in table inet tsrun (0 when it does not exist). */
export async function countRules(opts: NftOptions = {}): Promise<number> {
  const listing = await listTsrunTable({ ...opts, terse: true });
  return listing ? countRulesIn(listing) : 0;
}

async function runNft(args: string[], opts: NftOptions, step: string): Promise<string> {
  const log = opts.log ?? silentLogger;
  const nft = resolveBinary(opts.nftBinary ?? 'nft');
  const [file, argv] = opts.netns === undefined ? [nft, args] : [resolveBinary('nsenter'), [`--net=${opts.netns}`, nft, ...args]];
  const started = performance.now();
  const result = await execa(file, argv, {
    stdin: 'ignore',
    reject: false,
    timeout: 60_000,
    env: { LC_ALL: 'C' },
    stripFinalNewline: true,
  });
  const ms = +(performance.now() - started).toFixed(2);
  if (result.exitCode === undefined) throw new SystemError(step, result, result.shortMessage);
  if (result.exitCode !== 0) {
    log.debug({ step, ms, exitCode: result.exitCode, stderr: result.stderr }, 'nft failed');
    throw new NftError(step, String(result.stderr), result);
  }
  log.debug({ step, ms }, 'nft done');
  return String(result.stdout);
}

function firstLine(stderr: string): string {
  const line = stderr.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? '';
  return line.replace(/^internal:\d+:\d+-\d+:\s*/, '');
}
