// `tsrun attach`: what needs no socket, kept apart for unit tests. docker's detach keys (a
// sequence typed on stdin that detaches instead of reaching the container: ctrl-p ctrl-q unless
// --detach-keys says otherwise; its format: comma-separated `a`…`z`-style single characters or
// `ctrl-<a-z @ [ \ ] ^ _>`), the scanner that finds them in stdin's chunks, and conmon's attach
// packets (one byte naming the stream, then the data: 2 stdout, 3 stderr).
import { UserError } from '../../config/errors.js';

export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

/** conmon's stream byte at the start of each output packet. */
export const ATTACH_STDOUT = 2;
export const ATTACH_STDERR = 3;

/** The bytes of a --detach-keys value (docker's term.ToBytes); '' disables detaching. */
export function parseDetachKeys(spec: string): Buffer {
  if (spec === '') return Buffer.alloc(0);
  const out: number[] = [];
  for (const key of spec.split(',')) {
    const k = key.trim().toLowerCase();
    const ctrl = /^ctrl-(.)$/.exec(k);
    if (ctrl) {
      const c = ctrl[1]!;
      if (c >= 'a' && c <= 'z') out.push(c.charCodeAt(0) - 'a'.charCodeAt(0) + 1);
      else if ('@[\\]^_'.includes(c)) out.push('@[\\]^_'.indexOf(c) === 0 ? 0 : 26 + '@[\\]^_'.indexOf(c));
      else throw badKeys(spec);
    } else if (key.length === 1) {
      out.push(key.charCodeAt(0));
    } else {
      throw badKeys(spec);
    }
  }
  return Buffer.from(out);
}

function badKeys(spec: string): UserError {
  return new UserError(`invalid --detach-keys ${JSON.stringify(spec)}: use comma-separated keys, each a single character or ctrl-<a-z, @, [, \\, ], ^, _> (default ${DEFAULT_DETACH_KEYS})`);
}

/**
 * Finds the detach sequence in stdin's chunks, across chunk boundaries, as docker's escape proxy:
 * bytes that may start the sequence are held back until it is complete (detach: they are never
 * sent) or broken (they are sent, in order, with what broke it).
 */
export class DetachScanner {
  private held = 0;

  constructor(private readonly keys: Buffer) {}

  feed(chunk: Buffer): { forward: Buffer; detached: boolean } {
    if (this.keys.length === 0) return { forward: chunk, detached: false };
    const out: number[] = [];
    for (const b of chunk) {
      if (b === this.keys[this.held]) {
        this.held++;
        if (this.held === this.keys.length) return { forward: Buffer.from(out), detached: true };
        continue;
      }
      // Broken: what was held goes out, then this byte may start the sequence again.
      for (let i = 0; i < this.held; i++) out.push(this.keys[i]!);
      this.held = 0;
      if (b === this.keys[0]) this.held = 1;
      else out.push(b);
      if (this.held === this.keys.length) return { forward: Buffer.from(out), detached: true };
    }
    return { forward: Buffer.from(out), detached: false };
  }
}

/** One packet conmon sent: its stream and data (a packet of another stream, or empty: undefined). */
export function outputOf(packet: Buffer): { stream: 'stdout' | 'stderr'; data: Buffer } | undefined {
  if (packet.length < 2) return undefined;
  if (packet[0] === ATTACH_STDOUT) return { stream: 'stdout', data: packet.subarray(1) };
  if (packet[0] === ATTACH_STDERR) return { stream: 'stderr', data: packet.subarray(1) };
  return undefined;
}

/** Input for conmon in packets no larger than it reads at once (it reads each packet whole). */
export function inputPackets(data: Buffer, max = 4096): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += max) out.push(data.subarray(i, i + max));
  return out;
}
