import { describe, expect, it } from '@jest/globals';
import { clashingListener, listenerText, parseProcNet, parseSockDiag, procNetFiles, sockDiagRequest } from '../../../runtime/host-listeners.js';

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:08AE 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4002 1 0000000000000000 100 0 0 10 0
   2: 0A0A0A0A:08AE 0B0B0B0B:C350 01 00000000:00000000 00:00000000 00000000     0        0 4003 1 0000000000000000 100 0 0 10 0
   3: 0158000A:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4004 1 0000000000000000 100 0 0 10 0
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5001 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5002 1 0000000000000000 100 0 0 10 0
   2: 000080FE000000000000000001000000:0017 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5003 1 0000000000000000 100 0 0 10 0
`;
const UDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  1: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 6001 2 0000000000000000 0
  2: 0100007F:A000 0100007F:0035 01 00000000:00000000 00:00000000 00000000     0        0 6002 2 0000000000000000 0
`;

const tcp = (hostPort: number, hostIp?: string) => ({ hostPort, containerPort: 80, protocol: 'tcp' as const, hostIp });

describe('host listeners (/proc/net)', () => {
  it('reads TCP listeners only (not established connections), with their addresses and ports', () => {
    expect(parseProcNet(TCP, 'tcp', 4, new Set([2222, 8080, 53]))).toEqual([
      { protocol: 'tcp', address: '0.0.0.0', port: 2222, inode: '4001' },
      { protocol: 'tcp', address: '127.0.0.1', port: 8080, inode: '4002' },
      { protocol: 'tcp', address: '10.0.88.1', port: 53, inode: '4004' },
    ]);
    expect(parseProcNet(TCP, 'tcp', 4, new Set([9999]))).toEqual([]);
  });

  it('IPv6: the wildcard, a v4-mapped address as IPv4, and the shortest text form', () => {
    expect(parseProcNet(TCP6, 'tcp', 6, new Set([22, 80, 23])).map((l) => l.address)).toEqual(['::', '127.0.0.1', 'fe80::1']);
  });

  it('UDP: bound, unconnected sockets only', () => {
    expect(parseProcNet(UDP, 'udp', 4, new Set([5353, 40960]))).toEqual([{ protocol: 'udp', address: '0.0.0.0', port: 5353, inode: '6001' }]);
  });

  it('a mapping clashes with a listener of its protocol and port on an overlapping address; :: counts for IPv4 too', () => {
    const v4 = parseProcNet(TCP, 'tcp', 4, new Set([2222, 8080]));
    expect(clashingListener(tcp(2222), v4)?.inode).toBe('4001');
    expect(clashingListener(tcp(2222, '10.1.2.3'), v4)?.inode).toBe('4001');
    expect(clashingListener(tcp(2222, '::1'), v4)).toBeUndefined();
    expect(clashingListener(tcp(8080), v4)?.inode).toBe('4002'); // all addresses include loopback
    expect(clashingListener(tcp(8080, '10.1.2.3'), v4)).toBeUndefined();
    expect(clashingListener({ ...tcp(2222), protocol: 'udp' }, v4)).toBeUndefined();
    const v6 = parseProcNet(TCP6, 'tcp', 6, new Set([22]));
    expect(clashingListener(tcp(22, '10.1.2.3'), v6)?.inode).toBe('5001');
    expect(listenerText(v6[0]!)).toBe('[::]:22/tcp');
  });

  it('reads only the files of the protocols asked for', () => {
    expect(procNetFiles([tcp(1)]).map((f) => f.file)).toEqual(['/proc/net/tcp', '/proc/net/tcp6']);
    expect(procNetFiles([])).toEqual([]);
  });
});

describe('host listeners (sock_diag)', () => {
  it('asks for one family and protocol, LISTEN for TCP and unconnected (CLOSE) for UDP', () => {
    const tcp6 = sockDiagRequest(6, 'tcp');
    expect([tcp6.length, tcp6[0], tcp6[1], tcp6.readUInt32LE(4)]).toEqual([56, 10, 6, 1 << 10]);
    const udp4 = sockDiagRequest(4, 'udp');
    expect([udp4[0], udp4[1], udp4.readUInt32LE(4)]).toEqual([2, 17, 1 << 7]);
  });

  function msg(family: number, state: number, port: number, src: number[], inode: number): Buffer {
    const b = Buffer.alloc(72);
    b[0] = family;
    b[1] = state;
    b.writeUInt16BE(port, 4);
    Buffer.from(src).copy(b, 8);
    b.writeUInt32LE(inode, 68);
    return b;
  }

  it('reads the source address and port (network order) and the inode of each answer', () => {
    const ports = new Set([22, 53]);
    expect(parseSockDiag(msg(2, 10, 22, [0, 0, 0, 0], 7), 'tcp', ports)).toEqual({ protocol: 'tcp', address: '0.0.0.0', port: 22, inode: '7' });
    expect(parseSockDiag(msg(10, 10, 22, [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 8), 'tcp', ports)?.address).toBe('fe80::1');
    expect(parseSockDiag(msg(10, 10, 22, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1], 9), 'tcp', ports)?.address).toBe('127.0.0.1');
    expect(parseSockDiag(msg(2, 7, 53, [10, 88, 0, 1], 10), 'udp', ports)).toEqual({ protocol: 'udp', address: '10.88.0.1', port: 53, inode: '10' });
    expect(parseSockDiag(msg(2, 10, 23, [0, 0, 0, 0], 7), 'tcp', ports)).toBeUndefined(); // another port
    expect(parseSockDiag(msg(2, 1, 22, [0, 0, 0, 0], 7), 'tcp', ports)).toBeUndefined(); // not listening
    expect(parseSockDiag(Buffer.alloc(10), 'tcp', ports)).toBeUndefined();
  });
});
