// `tsrun port` against real containers (run -d under conmon, and one in the foreground) in a
// sandbox host: docker's lines for what -p published, one private port's host side, and docker's
// failures (a port not published: exit 1; a malformed one: 125; no such container: 1).
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { BridgeWorld } from '../harness/bridge-world.js';
import { uniqueId } from '../harness/sandbox.js';

const hasConmon = spawnSync('conmon', ['--version']).status === 0;
const describeIf = hasConmon ? describe : describe.skip;

let w: BridgeWorld;

beforeAll(async () => {
  if (!hasConmon) return;
  w = await BridgeWorld.create('u9port', { outside: false });
  w.tsrunOk(['network', 'create', 'u9pv6', '--subnet', '10.194.1.0/24', '--ipv6-subnet', 'fd00:194:1::/64']);
});

afterAll(async () => {
  if (!hasConmon) return;
  w.host.removeAllContainers();
  w.host.tsrun(['network', 'rm', 'u9pv6']);
  await w.destroy();
});

afterEach(() => {
  if (!hasConmon) return;
  w.host.removeAllContainers();
  expect(w.leaks()).toEqual([]);
});

describeIf('tsrun port', () => {
  it("prints docker's lines for a detached container, one private port's host sides, and docker's failures", () => {
    const id = uniqueId('p');
    w.ids.push(id);
    w.tsrunOk(['run', '-d', '--name', id, '--net', 'u9pv6', '-p', '8080:80', '-p', '127.0.0.1:9443:443', '-p', '5353:53/udp', w.bundle, '--', 'sleep', '1000']);
    const all = w.host.tsrun(['port', id]);
    expect(all).toMatchObject({ status: 0, stderr: '' });
    expect(all.stdout).toBe('53/udp -> 0.0.0.0:5353\n53/udp -> [::]:5353\n80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080\n443/tcp -> 127.0.0.1:9443\n');
    expect(w.host.tsrun(['port', id, '80'])).toMatchObject({ status: 0, stdout: '0.0.0.0:8080\n[::]:8080\n', stderr: '' });
    expect(w.host.tsrun(['port', id.slice(0, -1), '443/tcp']).stdout).toBe('127.0.0.1:9443\n'); // an id prefix
    const none = w.host.tsrun(['port', id, '53/tcp']);
    expect({ status: none.status, stdout: none.stdout, stderr: none.stderr }).toEqual({ status: 1, stdout: '', stderr: `tsrun: no public port '53/tcp' published for ${id}\n` });
    const bad = w.host.tsrun(['port', id, 'http']);
    expect({ status: bad.status, stdout: bad.stdout }).toEqual({ status: 125, stdout: '' });
    expect(bad.stderr).toMatch(/^tsrun: invalid port "http": [^\n]*\n$/);
    expect(w.host.tsrun(['port', 'u9-nope'])).toMatchObject({ status: 1, stdout: '', stderr: 'tsrun: no such container: u9-nope\n' });
    // Stopped: nothing is published any more (docker prints nothing either).
    w.tsrunOk(['stop', '-t', '0', id]);
    expect(w.host.tsrun(['port', id])).toMatchObject({ status: 0, stdout: '', stderr: '' });
  });

  it('works for a container run in the foreground, and one without published ports prints nothing', async () => {
    const c = await w.start(['-p', '18080:80'], 'sleep 1000', 'pf');
    expect(w.host.tsrun(['port', c.id])).toMatchObject({ status: 0, stdout: '80/tcp -> 0.0.0.0:18080\n', stderr: '' });
    await c.stop();
    const quiet = uniqueId('pq');
    w.ids.push(quiet);
    w.tsrunOk(['run', '-d', '--name', quiet, w.bundle, '--', 'sleep', '1000']);
    expect(w.host.tsrun(['port', quiet])).toMatchObject({ status: 0, stdout: '', stderr: '' });
  });
});
