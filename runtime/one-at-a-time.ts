// Runs the functions given the same key one after another, in this process: a per-key queue. For
// work that is correct under concurrency but wasteful when many calls of one process race each
// other (IPAM's walk: see ipam.ts allocateNext). Other processes are not ordered by it.
const queues = new Map<string, Promise<void>>();

export function oneAtATime<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const before = queues.get(key) ?? Promise.resolve();
  const run = before.then(fn);
  const settled = run.then(
    () => {},
    () => {},
  );
  queues.set(key, settled);
  // The last caller of a key removes its entry: the map holds only keys with work in flight.
  void settled.then(() => {
    if (queues.get(key) === settled) queues.delete(key);
  });
  return run;
}

/** Keys with work queued or running (tests). */
export function busyKeys(): string[] {
  return [...queues.keys()];
}
