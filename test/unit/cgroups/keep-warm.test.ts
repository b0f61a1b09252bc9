// keepWarmFor: run -d's moves every few ms from conmon's start byte until runc create answers,
// bounded in time (a bundle's slow createRuntime hook must not have tsrun move itself for seconds).
import { expect, it } from '@jest/globals';
import { keepWarmFor } from '../../../runtime/cgroups/migration-warmup.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('moves at once and then every few ms, and stops after its bound with no stop()', async () => {
  let moves = 0;
  keepWarmFor(() => moves++, 4, 60);
  expect(moves).toBe(1);
  await sleep(40);
  expect(moves).toBeGreaterThan(1);
  await sleep(100);
  const after = moves;
  expect(after).toBeLessThanOrEqual(1 + Math.ceil(60 / 4) + 1);
  await sleep(60);
  expect(moves).toBe(after);
});

it('stops at stop()', async () => {
  let moves = 0;
  const stop = keepWarmFor(() => moves++, 4, 10_000);
  await sleep(20);
  stop();
  const at = moves;
  await sleep(40);
  expect(moves).toBe(at);
});
