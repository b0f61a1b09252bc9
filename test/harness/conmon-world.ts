// One BridgeWorld per test file for detached containers (conmon as their monitor): the file's
// tests are skipped, with the reason, where conmon is not installed; after each test every
// container is removed and the file fails on anything left (a veth, lease, firewall element, pin,
// cgroup: BridgeWorld.leaks()) or on a conmon that outlived its container (a race's loser too).
import { afterAll, afterEach, beforeAll, describe, expect } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import type { BridgeWorld } from './bridge-world.js';

const hasConmon = spawnSync('conmon', ['--version']).status === 0;

/**
 * Registers the file's hooks: `create` makes the world before its first test (and whatever the
 * file needs on it: networks), `use` hands it to the file, `beforeDestroy` undoes what `create`
 * added after the last test. Returns the `describe` to run the file's tests with (a skipping one
 * without conmon). `what` names the tests in the skip warning.
 */
export function withConmonWorld(what: string, create: () => Promise<BridgeWorld>, use: (w: BridgeWorld) => void, beforeDestroy?: (w: BridgeWorld) => void): typeof describe | typeof describe.skip {
  if (!hasConmon) {
    console.warn(`${what} tests skipped: conmon is not installed (scripts/setup-host.sh installs it)`);
    return describe.skip;
  }
  let w: BridgeWorld | undefined;
  beforeAll(async () => {
    w = await create();
    use(w);
  });
  afterAll(async () => {
    if (w === undefined) return;
    w.host.removeAllContainers();
    beforeDestroy?.(w);
    await w.destroy();
  });
  afterEach(() => {
    if (w === undefined) return;
    w.host.removeAllContainers();
    expect(w.leaks()).toEqual([]);
    expect(w.host.monitors()).toEqual([]);
  });
  return describe;
}
