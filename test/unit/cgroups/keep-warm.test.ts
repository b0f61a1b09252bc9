// keepWarmFor: run -d's moves every few ms from conmon's start byte until runc create answers,
// bounded in time (a bundle's slow createRuntime hook must not have tsrun move itself for seconds).
import { expect, it } from '@jest/globals';
import { keepWarmFor, keepWarmUntil } from '../../../runtime/cgroups/migration-warmup.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('moves at once and then every few ms, and stops after its bound with no stop()', async () => {
  // Every few ms: with a bound far away, the 4 ms ticks come before the 40 ms sleep ends, however
  // late the process runs (timers fire in order of their due time).
  let moves = 0;
  const stop = keepWarmFor(() => moves++, 4, 10_000);
  expect(moves).toBe(1);
  await sleep(40);
  expect(moves).toBeGreaterThan(1);
  stop();
  // Its own bound: a process descheduled past it (a loaded machine) may make no move after the
  // first, so only the upper count and the stop are checked.
  let bounded = 0;
  keepWarmFor(() => bounded++, 4, 60);
  expect(bounded).toBe(1);
  await sleep(140);
  const after = bounded;
  expect(after).toBeLessThanOrEqual(1 + Math.ceil(60 / 4) + 1);
  await sleep(60);
  expect(bounded).toBe(after);
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

// keepWarmUntil: a foreground run's moves from runc's spawn until runc's own move is done (its pid
// file exists), with the same bound.
it('keepWarmUntil moves at once, stops by itself once done() says so, and never moves after', async () => {
  let moves = 0;
  let done = false;
  let asked = 0;
  keepWarmUntil(() => (asked++, done), () => moves++, 4, 10_000);
  expect(moves).toBe(1); // the first move does not ask: runc has not started yet
  expect(asked).toBe(0);
  await sleep(30);
  expect(moves).toBeGreaterThan(1);
  done = true;
  await sleep(20);
  const at = moves;
  const askedAt = asked;
  await sleep(40);
  expect(moves).toBe(at);
  expect(asked).toBe(askedAt); // stopped, not only skipping
});

it('keepWarmUntil stops at its bound when done() never says so, and at stop()', async () => {
  let moves = 0;
  keepWarmUntil(() => false, () => moves++, 4, 40);
  await sleep(100);
  const after = moves;
  expect(after).toBeLessThanOrEqual(1 + Math.ceil(40 / 4) + 1);
  await sleep(40);
  expect(moves).toBe(after);
  let other = 0;
  const stop = keepWarmUntil(() => false, () => other++, 4, 10_000);
  await sleep(20);
  stop();
  const at = other;
  await sleep(40);
  expect(other).toBe(at);
});
