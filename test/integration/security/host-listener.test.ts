// A published port must not take a host service's connections: tsrun publishes by DNAT alone (no
// process binds the host port), so `-p 2222:80` (or an io.tsrun.ports annotation, or a CNI
// portMapping) on a port where a host process listens used to be accepted, and from then on the
// LAN's connections to the host on that port reached the container (docker and podman refuse it:
// their bind of the port fails). Real sockets in the sandbox host, real runc and nft, a client
// on the LAN side ("outside").
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { BridgeWorld, HOST_UPLINK_IP } from '../../harness/bridge-world.js';
import { waitFor } from '../../harness/sandbox.js';

let w: BridgeWorld;
const services: ChildProcess[] = [];
beforeAll(async () => {
  w = await BridgeWorld.create('h7lis');
});
afterAll(async () => {
  for (const s of services) s.kill('SIGKILL');
  await w.destroy();
});
afterEach(async () => {
  await w.stopAll();
  expect(w.leaks()).toEqual([]);
});

/** A host service in the sandbox host: answers every TCP connection with `banner`, or binds UDP. */
async function hostService(kind: 'tcp' | 'udp', address: string, port: number, banner = 'HOST-SERVICE'): Promise<void> {
  const code = kind === 'tcp'
    ? `require('net').createServer((c)=>c.end('${banner}\\n')).listen(${port},'${address}',()=>console.log('up'))`
    : `require('dgram').createSocket('${address.includes(':') ? 'udp6' : 'udp4'}').bind(${port},'${address}',()=>console.log('up'))`;
  const p = w.host.ns.spawn(process.execPath, ['-e', code]);
  services.push(p);
  let up = false;
  p.stdout!.on('data', () => (up = true));
  await waitFor(`the host's ${kind} service on ${address}:${port}`, () => up);
}

function fromOutside(port: number): string {
  const r = w.outside.exec(process.execPath, ['-e', `const c=require('net').connect(${port},'${HOST_UPLINK_IP}');let d='';c.on('data',(x)=>d+=x);c.on('close',()=>{process.stdout.write(d)});c.on('error',(e)=>{process.stdout.write('ERR '+e.code)});setTimeout(()=>process.exit(0),3000).unref()`]);
  return r.stdout.trim();
}

describe('a published port where a host process listens', () => {
  it('is refused with one line and nothing left, and the host service keeps its connections', async () => {
    await hostService('tcp', '0.0.0.0', 2222);
    expect(fromOutside(2222)).toBe('HOST-SERVICE');
    for (const spec of ['2222:80', `${HOST_UPLINK_IP}:2222:80`, '2220-2229:80-89']) {
      const r = w.run(['-p', spec], ['true']);
      expect(r.stderr).toMatch(/^tsrun: cannot publish (\S+:)?2222\/tcp: a process of the host listens on 0\.0\.0\.0:2222\/tcp, and publishing would take its connections \(stop it, or publish another host port\)\n$/);
      expect(r.status).toBe(125);
    }
    expect(fromOutside(2222)).toBe('HOST-SERVICE');
    // Another protocol, or another port, is not that service's.
    const udp = w.run(['-p', '2222:80/udp'], ['true']);
    expect([udp.status, udp.stderr]).toEqual([0, '']);
  });

  it('a listener on one address: publishing on every address or on that one is refused, on another address it is not', async () => {
    await hostService('tcp', '127.0.0.1', 2300);
    const all = w.run(['-p', '2300:80'], ['true']);
    expect([all.status, all.stderr]).toEqual([125, 'tsrun: cannot publish 2300/tcp: a process of the host listens on 127.0.0.1:2300/tcp, and publishing would take its connections (stop it, or publish another host port)\n']);
    expect(w.run(['-p', '127.0.0.1:2300:80'], ['true']).status).toBe(125);
    const other = w.run(['-p', `${HOST_UPLINK_IP}:2300:80`], ['true']);
    expect([other.status, other.stderr]).toEqual([0, '']);
  });

  it('UDP: a bound host socket refuses the port; an IPv6 wildcard listener counts for IPv4 too', async () => {
    await hostService('udp', '0.0.0.0', 5400);
    const r = w.run(['-p', '5400:53/udp'], ['true']);
    expect([r.status, r.stderr]).toEqual([125, 'tsrun: cannot publish 5400/udp: a process of the host listens on 0.0.0.0:5400/udp, and publishing would take its connections (stop it, or publish another host port)\n']);
    await hostService('tcp', '::', 2400);
    const v4 = w.run(['-p', `${HOST_UPLINK_IP}:2400:80`], ['true']);
    expect([v4.status, v4.stderr]).toEqual([125, `tsrun: cannot publish ${HOST_UPLINK_IP}:2400/tcp: a process of the host listens on [::]:2400/tcp, and publishing would take its connections (stop it, or publish another host port)\n`]);
  });
});
