// How many sockets this process holds open: a backend that keeps one socket per process (nfnl,
// libnftables) must not grow this with every batch.
import { readdirSync, readlinkSync } from 'node:fs';

export function openSockets(): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
    } catch {
      return false; // the directory's own fd, closed by the time it is read
    }
  }).length;
}
