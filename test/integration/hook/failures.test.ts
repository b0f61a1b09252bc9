// Failure paths through runc: the hook prints one line and exits 1, runc refuses to start the
// container and shows that line, and nothing of the container is left wired.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { waitFor } from '../../harness/sandbox.js';
import { HookHost, expectOneLineFailure, hostVethName } from './helpers.js';

let hh: HookHost;

beforeAll(async () => {
  hh = await HookHost.create('hookfail');
  expect(hh.tsrun(['network', 'create', 'web', '--subnet', '10.124.0.0/24']).status).toBe(0);
});

afterAll(() => hh.destroy());

afterEach(() => {
  expect(hh.takeLeaks()).toEqual([]);
});

const container = (network?: string): string => hh.newId('hf', network);

/** `runc run` of a bundle that must not start: the program would print STARTED. */
function mustNotStart(id: string, annotations: Record<string, string>, edit?: (spec: Record<string, any>) => void) {
  const bundle = hh.bundle({ annotations, args: ['echo', 'STARTED'], ...(edit ? { edit } : {}) });
  const r = hh.runc(['run', '-b', bundle, id]);
  expect(r.stdout).not.toContain('STARTED');
  expect(hh.host.runcList()).not.toContain(id);
  return r;
}

async function stopAndDelete(id: string): Promise<void> {
  hh.runc(['kill', id, 'KILL']);
  await waitFor(`${id} to stop`, () => JSON.parse(hh.runc(['state', id]).stdout || '{}').status === 'stopped');
  expect(hh.runc(['delete', id]).status).toBe(0);
}

describe('the container does not start, runc shows tsrun\'s line, nothing is left', () => {
  it('malformed state on the hook\'s stdin (piped by a wrapper)', () => {
    const id = container();
    const r = mustNotStart(id, { 'io.tsrun.network': 'web' }, (spec) => {
      const entry = spec.hooks.createRuntime.at(-1);
      // The wrapper swallows runc's state and hands tsrun a broken one instead.
      spec.hooks.createRuntime = [{
        path: '/bin/sh',
        args: ['sh', '-c', `cat >/dev/null; printf '%s' '{"ociVersion": "1", "id": ' | exec "$0" "$1" hook createRuntime`, entry.path, entry.args[1]],
        env: entry.env,
      }];
    });
    expectOneLineFailure(r, /^tsrun: hook createRuntime: state JSON on stdin is not valid JSON: /);
  });

  it('an unknown network', () => {
    const id = container();
    const r = mustNotStart(id, { 'io.tsrun.network': 'nope' });
    expectOneLineFailure(r, /^tsrun: hook createRuntime: network nope not found \(tsrun network ls lists them\)$/);
  });

  it('a bad annotation, named in the message', () => {
    const id = container();
    const r = mustNotStart(id, { 'io.tsrun.network': 'web', 'io.tsrun.ports': '8080' });
    expectOneLineFailure(r, /^tsrun: hook createRuntime: annotation io\.tsrun\.ports="8080": invalid mapping "8080": expected \[HOSTIP:\]HOSTPORT:CONTAINERPORT/);
  });

  it('an address another container holds; the holder is untouched', async () => {
    const holder = container('web');
    const bundle = hh.bundle({ annotations: { 'io.tsrun.network': 'web', 'io.tsrun.ip': '10.124.0.60' }, args: ['sleep', '300'] });
    expect(hh.runcDetached(holder, bundle).status).toBe(0);
    const before = hh.storeEntriesOf(holder).sort();

    const id = container('web');
    const r = mustNotStart(id, { 'io.tsrun.network': 'web', 'io.tsrun.ip': '10.124.0.60' });
    expectOneLineFailure(r, /^tsrun: hook createRuntime: .*10\.124\.0\.60/);
    expect(hh.leaksOf([{ id, network: 'web' }])).toEqual([]);
    expect(hh.storeEntriesOf(holder).sort()).toEqual(before);
    expect(hh.host.ns.linkNames()).toContain(hostVethName(holder, 'web'));
    await stopAndDelete(holder);
  });

  it('a host port another container publishes', async () => {
    const holder = container('web');
    const bundle = hh.bundle({ annotations: { 'io.tsrun.network': 'web', 'io.tsrun.ports': '8090:80' }, args: ['sleep', '300'] });
    expect(hh.runcDetached(holder, bundle).status).toBe(0);
    const before = { store: hh.storeEntriesOf(holder).sort(), nft: hh.nftElementsOf(holder).sort() };

    const id = container('web');
    const r = mustNotStart(id, { 'io.tsrun.network': 'web', 'io.tsrun.ports': '8090:81' });
    expectOneLineFailure(r, new RegExp(`^tsrun: hook createRuntime: .*8090/tcp.*${holder}`));
    expect(hh.leaksOf([{ id, network: 'web' }])).toEqual([]);
    expect({ store: hh.storeEntriesOf(holder).sort(), nft: hh.nftElementsOf(holder).sort() }).toEqual(before);
    await stopAndDelete(holder);
  });

  it('a network for a container without a network namespace of its own', () => {
    const id = container();
    const r = mustNotStart(id, { 'io.tsrun.network': 'web' }, (spec) => {
      spec.linux.namespaces = spec.linux.namespaces.filter((n: { type: string }) => n.type !== 'network');
    });
    expectOneLineFailure(r, /^tsrun: hook createRuntime: container \S+ has no network namespace of its own \(it shares the runtime's\), so io\.tsrun\.network=web cannot be wired/);
  });
});
