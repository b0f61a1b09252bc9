// Finding a network namespace again by its identity. Detach may run in another process and
// another namespace than attach (runc runs poststop where `runc delete` is called), so the record
// keeps the host namespace's identity and this finds a live path to it through any process that
// is still in it. No process left means the namespace is gone, and with it everything in it.
import { readdirSync } from 'node:fs';
import { netnsId, THREAD_NETNS } from './netns.js';

/** A path to the network namespace with identity `id`, or undefined when none exists any more. */
export function findNetnsPath(id: string): string | undefined {
  if (safeId(THREAD_NETNS) === id) return THREAD_NETNS;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const p = `/proc/${entry}/ns/net`;
    if (safeId(p) === id) return p;
  }
  return undefined;
}

/** netnsId, or undefined when the path is gone or unreadable (a process that just exited). */
export function safeId(p: string): string | undefined {
  try {
    return netnsId(p);
  } catch {
    return undefined;
  }
}
