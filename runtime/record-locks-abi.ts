// Where tsrun takes POSIX record locks through its own struct flock (runtime/host-lock.ts): a
// question without I/O, asked also by paths that load nothing else of the lock (the resolver's
// control address, runtime/dns/paths.ts, in every door that may revive the resolver).

/** os.endianness() without loading node:os (~0.25 ms of a cold process that needs nothing else from it). */
function hostEndianness(): 'LE' | 'BE' {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 'LE' : 'BE';
}

/** Where record locks can be taken as host-lock.ts takes them: 64-bit little-endian Linux (the
 * struct's layout and fcntl's command numbers are those of the generic ABI there). */
export function recordLocksWork(platform: string = process.platform, arch: string = process.arch, endianness: string = hostEndianness()): boolean {
  return platform === 'linux' && endianness === 'LE' && ['x64', 'arm64', 'riscv64', 'loong64'].includes(arch);
}
