import { describe, expect, it } from '@jest/globals';
import { naturalCompare, parsePrivatePort, portLines } from '../../../shim/port-format.js';

describe('tsrun port: docker\'s format', () => {
  const web = { ipv4: true, ipv6: false, ports: [
    { hostPort: 8443, containerPort: 443, protocol: 'tcp' as const },
    { hostPort: 8080, containerPort: 80, protocol: 'tcp' as const },
    { hostIp: '127.0.0.1', hostPort: 9090, containerPort: 80, protocol: 'tcp' as const },
    { hostPort: 5353, containerPort: 53, protocol: 'udp' as const },
  ] };

  it('lists every mapping as PORT/PROTO -> HOST:PORT, in natural order', () => {
    expect(portLines([web])).toEqual(['53/udp -> 0.0.0.0:5353', '80/tcp -> 0.0.0.0:8080', '80/tcp -> 127.0.0.1:9090', '443/tcp -> 0.0.0.0:8443']);
  });

  it('one private port: only the host sides; tcp when no protocol is given; undefined when not published', () => {
    expect(portLines([web], parsePrivatePort('80'))).toEqual(['0.0.0.0:8080', '127.0.0.1:9090']);
    expect(portLines([web], parsePrivatePort('53/udp'))).toEqual(['0.0.0.0:5353']);
    expect(portLines([web], parsePrivatePort('53'))).toBeUndefined();
    expect(portLines([], parsePrivatePort('80/tcp'))).toBeUndefined();
    expect(portLines([])).toEqual([]);
  });

  it('IPv6: [::] beside 0.0.0.0 when the container has an IPv6 address; a v6 host address in brackets', () => {
    const dual = { ipv4: true, ipv6: true, ports: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' as const }, { hostIp: '::1', hostPort: 8081, containerPort: 81, protocol: 'tcp' as const }] };
    expect(portLines([dual])).toEqual(['80/tcp -> 0.0.0.0:8080', '80/tcp -> [::]:8080', '81/tcp -> [::1]:8081']);
    expect(portLines([{ ...dual, ipv4: false }], parsePrivatePort('80'))).toEqual(['[::]:8080']);
  });

  it('refuses a malformed private port with one line', () => {
    for (const bad of ['', 'http', '80/sctp', '0', '65536', '80/', '-1', '80/tcp/x']) expect(() => parsePrivatePort(bad)).toThrow(/^invalid port ".*": expected PRIVATE_PORT\[\/tcp\|\/udp\]/);
    expect(parsePrivatePort('443/UDP')).toEqual({ port: 443, protocol: 'udp' });
  });

  it('natural order: numbers by value', () => {
    expect(['443/tcp', '80/tcp', '8080/tcp', '80/udp'].sort(naturalCompare)).toEqual(['80/tcp', '80/udp', '443/tcp', '8080/tcp']);
  });
});
