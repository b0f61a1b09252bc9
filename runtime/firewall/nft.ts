// Running nft: one JSON batch, applied by the kernel atomically, and listings of table inet
// tsrun. Only this file runs nftables commands; everything else builds JSON.
//
// Two backends take the same commands: libnftables in-process (libnft.ts, no process, chosen
// whenever the library loads) and the `nft` process (the fallback, and what a custom nftBinary
// asks for). Both report failures as an NftError carrying nft's own error text. A batch that only
// adds and deletes elements of tsrun's own sets (every attach and detach) skips both by default:
// it goes to nf_tables over netlink directly (nfnl.ts), without libnftables' cache fill.
//
// The process backend: not `nft -j -f -`: nft reads "-" by opening /dev/stdin, and Node gives a child's stdin as a
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
import { libnftAvailable, runLibnft } from './libnft.js';
import { BatchTooLarge, encodeElementBatch, nfnlAvailable, sendElementBatch, type ElementBatch } from './nfnl.js';
import { FAMILY, TABLE, countRulesIn, type NftBatch, type NftListing } from './nft-rules.js';
import { silentLogger, type StepLogger } from '../step-log.js';

/**
 * How commands reach the kernel. 'auto': element batches over netlink (nfnl.ts), everything else
 * through libnftables when it loads, else the nft process. 'lib' and 'process' force one for
 * every command (TSRUN_NFT_BACKEND; the tests run all three).
 */
export type NftBackendKind = 'auto' | 'lib' | 'process';

export interface NftOptions {
  /** The process backend's nft, by name (looked up in PATH and the system directories) or by
   * path. Default "nft". */
  nftBinary?: string;
  backend?: NftBackendKind;
  /**
   * Act inside this network namespace (e.g. /proc/<pid>/ns/net): a libnftables context made
   * there, or nft run through nsenter. For the hook's host side, tests and sandboxes; unset, nft
   * acts on tsrun's own namespace.
   */
  netns?: string;
  log?: StepLogger;
  /** Batches longer than this (bytes of JSON) go through a temporary file. Default 96 KiB. */
  argMax?: number;
  /** Directory for those files. Default os.tmpdir(). */
  tmpDir?: string;
  /** Held (exclusive, across processes) from the look at the table to its rebuild: two first
   * attaches against an old table both rebuilt it, and the later restore dropped the elements the
   * earlier attach had added meanwhile (its record not yet in the Store). */
  rebuildLock?: () => Promise<() => Promise<void>>;
  /** A file in the run directory keeping the generation at which the tables of tsrun's own
   * namespace were last known intact, for the next process's self-check (intact-record.ts). */
  intactRecord?: string;
}

/** Why nft refused, from its errno text (nft is run with LC_ALL=C). */
export type NftFailure = 'exists' | 'not-found' | 'busy' | 'other';

/** nft ran and failed; `detail` is the first line of its stderr (or libnftables' error buffer). */
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

/**
 * Applies one batch atomically: all of it or none of it. An empty batch runs nothing. A failure
 * does not always mean none of it: a signal that interrupts libnftables while it reads the
 * kernel's answer makes it report "Interrupted system call" for a batch the kernel committed, so
 * a caller that adds owned elements purges its owner's elements when this throws (engine.ts).
 */
export async function applyBatch(batch: NftBatch, opts: NftOptions & { step?: string } = {}): Promise<void> {
  if (batch.nftables.length === 0) return;
  const step = opts.step ?? 'apply nftables batch';
  await applyBatchOnce(batch, opts, step);
  // Tests only: TSRUN_FAULT_NFT_LOST_ANSWER=<step prefix> reports the batch of that step failed
  // after the kernel applied it, as the interrupted read above does.
  const lost = process.env.TSRUN_FAULT_NFT_LOST_ANSWER;
  if (lost && step.startsWith(lost)) throw new NftError(step, 'Error: Could not process rule: Interrupted system call', undefined);
}

async function applyBatchOnce(batch: NftBatch, opts: NftOptions, step: string): Promise<void> {
  if ((opts.backend ?? 'auto') === 'auto') {
    const direct = encodeElementBatch(batch);
    if (direct && nfnlAvailable() && runNetlink(direct, opts, step)) return;
  }
  const json = JSON.stringify(batch);
  if (chooseBackend(opts) === 'lib') {
    runInProcess(json, opts, step);
    return;
  }
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

/**
 * Applies commands in nft's own syntax as one transaction (table bridge tsrun_nd, which JSON cannot
 * declare): through libnftables when it loads, else `nft -f` with a private temporary file.
 */
export async function applyText(text: string, opts: NftOptions & { step?: string } = {}): Promise<void> {
  const step = opts.step ?? 'apply nftables commands';
  if (chooseBackend(opts) === 'lib') {
    runInProcess(text, opts, step);
    return;
  }
  const file = path.join(opts.tmpDir ?? tmpdir(), `tsrun-nft-${process.pid}-${randomBytes(6).toString('hex')}.nft`);
  try {
    await writeFile(file, text, { mode: 0o600, flag: 'wx' });
    await runNft(['-f', file], opts, step);
  } finally {
    await rm(file, { force: true });
  }
}

/** table inet tsrun as nft prints it, or undefined when it does not exist. `terse` omits elements. */
export async function listTsrunTable(opts: NftOptions & { terse?: boolean; family?: string; table?: string } = {}): Promise<NftListing | undefined> {
  // family: 'bridge' lists tsrun's port-guard table (nft-rules.ts) instead; table: 'tsrun_nd'
  // (with family 'bridge') its neighbour-discovery table.
  const family = opts.family ?? FAMILY;
  const table = opts.table ?? TABLE;
  const args = ['-j', ...(opts.terse ? ['-t'] : []), 'list', 'table', family, table];
  const step = `list nftables table ${family} ${table}`;
  let out: string;
  try {
    out = chooseBackend(opts) === 'lib' ? runInProcess(`list table ${family} ${table}`, opts, step, opts.terse) : await runNft(args, opts, step);
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

/** 'lib' or 'process' for these options (see NftBackendKind). */
export function chooseBackend(opts: NftOptions): 'lib' | 'process' {
  const wanted = opts.backend ?? 'auto';
  if (wanted !== 'auto') return wanted;
  return libnftAvailable() ? 'lib' : 'process';
}

/** One command through libnftables; output as nft would print it on stdout. */
function runInProcess(cmd: string, opts: NftOptions, step: string, terse = false): string {
  const log = opts.log ?? silentLogger;
  const started = performance.now();
  let r;
  try {
    r = runLibnft(cmd, { netns: opts.netns, terse });
  } catch (err) {
    throw new SystemError(step, err);
  }
  const ms = +(performance.now() - started).toFixed(2);
  if (!r.ok) {
    log.debug({ step, ms, stderr: r.err }, 'libnftables failed');
    throw new NftError(step, r.err, new Error(r.err));
  }
  log.debug({ step, ms }, 'libnftables done');
  return r.out.replace(/\n$/, '');
}

/**
 * An element batch straight to nf_tables; a refusal becomes the NftError nft would have given.
 * False when it was not sent (too large for the socket): the caller hands it to libnftables.
 */
function runNetlink(batch: ElementBatch, opts: NftOptions, step: string): boolean {
  const log = opts.log ?? silentLogger;
  const started = performance.now();
  let refusal;
  try {
    refusal = sendElementBatch(batch, { netns: opts.netns });
  } catch (err) {
    if (err instanceof BatchTooLarge) {
      log.debug({ step, bytes: err.bytes }, 'nf_tables batch too large for the netlink socket: through libnftables');
      return false;
    }
    throw new SystemError(step, err);
  }
  const ms = +(performance.now() - started).toFixed(3);
  if (refusal) {
    log.debug({ step, ms, stderr: refusal.message }, 'nf_tables refused the batch');
    throw new NftError(step, refusal.message, new Error(refusal.message));
  }
  log.debug({ step, ms }, 'nf_tables batch done');
  return true;
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
