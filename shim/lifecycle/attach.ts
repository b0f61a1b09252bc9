// `tsrun attach ID`: this terminal joined to a detached container's stdio through conmon's attach
// socket, as docker attach and podman attach do.
//
// conmon's attach socket is SOCK_SEQPACKET (docs/detached.md): every packet it sends is one byte
// naming the stream (2 stdout, 3 stderr) and the data; every packet it receives is written to the
// container's stdin. Node's net module opens only stream sockets (libuv takes a SEQPACKET socket
// for an unknown handle), so the socket is made and connected through libc (koffi, already a
// dependency) and then read and written with node:fs on its descriptor: each read(2) returns one
// packet whole, each write(2) sends one. The reads run on libuv's thread pool; shutdown(2) wakes a
// read that waits when this process lets go (detach). The socket's path goes through
// /proc/self/fd/N of the bundle directory, as conmon binds it and podman connects, so a long state
// root never overflows sockaddr_un's 108 bytes.
//
// Stdin is sent only to a container created with -i (docker's rule), and not with --no-stdin; the
// detach keys (ctrl-p ctrl-q) end the attach and leave the container running. conmon keeps the
// container's stdin open when an attach ends (run -d -i passes --leave-stdin-open), so one can
// attach again. A terminal container (-t) gets this terminal in raw mode and its size (conmon's
// ctl fifo). Without -t, SIGINT and SIGTERM go to the container (docker's --sig-proxy default).
// The container's end ends the attach with its exit code.
import { closeSync, constants, openSync, read, write, writeSync } from 'node:fs';
import path from 'node:path';
import { SystemError, UserError } from '../../config/errors.js';
import type { Settings } from '../../config/settings.js';
import { unixAddress } from '../../runtime/dns/control-sync.js';
import { libcFunction, loadKoffi } from '../../runtime/koffi.js';
import { runcPaths } from '../runc.js';
import { DetachScanner, inputPackets, outputOf, parseDetachKeys } from './attach-keys.js';
import { pathsOf, readExitFile, readLifecycle } from './record.js';
import { currentView, runcKill, waitEnded } from './signals.js';

const AF_UNIX = 1;
const SOCK_SEQPACKET = 5;
const SOCK_CLOEXEC = 0o2000000;
const SHUT_RDWR = 2;
/** A packet conmon sends is at most its stdio buffer (8 KiB and the stream byte). */
const PACKET_MAX = 64 * 1024;

export interface AttachOptions {
  noStdin: boolean;
  detachKeys: string;
}

/** A connected SEQPACKET socket to `dir`/attach (through /proc/self/fd: no path length limit). */
function connectAttachSocket(dir: string): number {
  loadKoffi();
  const socket = libcFunction('int socket(int domain, int type, int protocol)');
  const connect = libcFunction('int connect(int fd, const void *addr, uint32_t len)');
  let dirFd: number;
  try {
    dirFd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (err) {
    throw new SystemError(`open the container's bundle directory ${dir}`, err);
  }
  try {
    const fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new SystemError('create the attach socket', new Error(`errno ${loadKoffi().errno()}`));
    // Always short enough for sun_path: /proc/self/fd/N/attach.
    const addr = unixAddress(`/proc/self/fd/${dirFd}/attach`)!;
    if (connect(fd, addr, addr.length) < 0) {
      const errno = loadKoffi().errno();
      closeSync(fd);
      throw new SystemError(`connect to conmon's attach socket ${path.join(dir, 'attach')}`, new Error(errno === 2 ? 'no such socket (its conmon is gone?)' : errno === 111 ? 'connection refused (its conmon is gone?)' : `errno ${errno}`));
    }
    return fd;
  } finally {
    closeSync(dirFd);
  }
}

function readPacket(fd: number, buf: Buffer): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, 0, buf.length, null, (err, n) => (err ? reject(err) : resolve(n))));
}

function writePacket(fd: number, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => write(fd, data, (err) => (err ? reject(err) : resolve())));
}

/** Attaches; resolves with the container's exit code once it ends, or 0 once detached. */
export async function attachContainer(settings: Settings, id: string, o: AttachOptions): Promise<number> {
  const keys = parseDetachKeys(o.detachKeys);
  const v = await currentView(settings, id);
  if (!v.record.detached) throw new UserError(`container ${id} runs in the foreground (tsrun process ${v.record.ownerPid}): its stdio is that process's own, there is nothing to attach to`);
  if (v.status !== 'running' && v.status !== 'paused') throw new UserError(`container ${id} is not running (${v.status}${v.exitCode !== undefined ? ` ${v.exitCode}` : ''}): you cannot attach to it (tsrun start or restart it first)`);
  const rec = readLifecycle(settings.runDir, id);
  if (!rec) throw new UserError(`container ${id} has no record`);
  const p = pathsOf(settings.runDir, id);
  const fd = connectAttachSocket(p.bundle);

  const tty = rec.tty && process.stdin.isTTY === true;
  const handlers: [NodeJS.Signals, () => void][] = [];
  let detached = false;
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    // Wakes the read waiting on the pool; conmon sees the end of this client.
    libcFunction('int shutdown(int fd, int how)')(fd, SHUT_RDWR);
    process.stdin.off('data', onInput);
    process.stdin.pause();
    if (tty) process.stdin.setRawMode(false);
    for (const [sig, h] of handlers) process.off(sig, h);
  };

  // Input: only for a container created with -i.
  const scanner = new DetachScanner(keys);
  let writes = Promise.resolve();
  const onInput = (chunk: Buffer) => {
    const { forward, detached: done } = scanner.feed(chunk);
    for (const packet of inputPackets(forward)) writes = writes.then(() => writePacket(fd, packet)).catch(() => undefined);
    if (done) {
      detached = true;
      void writes.then(release);
    }
  };
  const sendStdin = rec.stdin && !o.noStdin;
  if (sendStdin || (tty && keys.length > 0)) {
    if (tty) process.stdin.setRawMode(true);
    process.stdin.on('data', sendStdin ? onInput : (c: Buffer) => void (scanner.feed(c).detached && ((detached = true), release())));
    process.stdin.resume();
  }

  // Signals: the window size to a terminal container; SIGINT/SIGTERM to the container otherwise.
  if (rec.tty && process.stdout.isTTY === true) {
    const resize = () => {
      try {
        const ctl = openSync(path.join(p.bundle, 'ctl'), constants.O_WRONLY | constants.O_NONBLOCK);
        try {
          writeSync(ctl, `1 ${process.stdout.rows} ${process.stdout.columns}\n`);
        } finally {
          closeSync(ctl);
        }
      } catch {
        // the container is going: nothing to resize
      }
    };
    resize();
    handlers.push(['SIGWINCH', resize]);
  } else if (!rec.tty) {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) handlers.push([sig, () => void runcKill(runcPaths(settings), id, sig).catch(() => undefined)]);
  }
  for (const [sig, h] of handlers) process.on(sig, h);

  // Output until conmon closes the socket (the container ended) or this process lets go.
  const buf = Buffer.alloc(PACKET_MAX);
  try {
    for (;;) {
      const n = await readPacket(fd, buf);
      if (n === 0) break;
      const out = outputOf(buf.subarray(0, n));
      if (out) writeSync(out.stream === 'stdout' ? 1 : 2, out.data);
    }
  } catch (err) {
    if (!detached) throw new SystemError("read conmon's attach socket", err);
  } finally {
    release();
    closeSync(fd);
  }
  if (detached) return 0;
  // The container's end: its code as conmon records it (docker attach returns it).
  const view = await currentView(settings, id);
  await waitEnded(settings, view, 10_000);
  return readExitFile(p)?.code ?? readLifecycle(settings.runDir, id)?.exitCode ?? 0;
}
