// The frame most sandbox test files share: one sandbox host and one busybox bundle for all of the
// file's tests, removed after them, and after each test a leak check of the containers it named
// (it pushes their ids onto `ids`). Kept apart from sandbox.ts, which the bench imports outside jest.
import { afterAll, afterEach, beforeAll, expect } from '@jest/globals';
import { SandboxHost, makeBundle, removeBundle } from './sandbox.js';

/** Registers the hooks. `ready` gets the host and bundle once both exist (the file keeps them in
 * its own variables, and may set the host up further). */
export function sandboxPerFile(name: string, ids: string[], ready: (host: SandboxHost, bundle: string) => void): void {
  let host: SandboxHost | undefined;
  let bundle: string | undefined;
  beforeAll(async () => {
    host = await SandboxHost.create(name);
    bundle = makeBundle();
    ready(host, bundle);
  });
  afterAll(() => {
    if (bundle) removeBundle(bundle);
    host?.destroy();
  });
  afterEach(() => {
    expect(host!.leaks(ids.splice(0))).toEqual([]);
  });
}
