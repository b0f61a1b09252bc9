// Time a cold process spends loading code (modules imported lazily, native libraries opened on
// first use) rather than doing its work. The hook and the CNI plugin log their time split into
// start-up, loading and work, and the bench's floors add two cold Node processes to the work
// alone: so loading must never be booked as work, wherever in the engine it happens. Only the
// outermost of nested loads counts.
let total = 0;
let depth = 0;

/** Runs a synchronous load (a native library) and books its time. */
export function bookLoad<T>(load: () => T): T {
  const t = performance.now();
  depth++;
  try {
    return load();
  } finally {
    if (--depth === 0) total += performance.now() - t;
  }
}

/** Awaits a lazy import and books its time. */
export async function bookImport<T>(importer: () => Promise<T>): Promise<T> {
  const t = performance.now();
  depth++;
  try {
    return await importer();
  } finally {
    if (--depth === 0) total += performance.now() - t;
  }
}

/** Milliseconds booked so far in this process. */
export function loadedMs(): number {
  return total;
}
