// Kernel parameters under /proc/sys, synchronously. /proc/sys/net/* shows the network namespace
// of the thread that opens the file, so to set a container's sysctl call these inside
// withNetnsSync; the synchronous fs calls run on that very thread, where async ones would run on
// libuv's pool, in the host namespace.
import { readFileSync, writeFileSync } from 'node:fs';
import { SystemError, UserError } from '../../config/errors.js';

/**
 * "net.ipv4.ip_forward" or "net/ipv4/ip_forward" → /proc/sys/net/ipv4/ip_forward. Use the slash
 * form when a component contains a dot (an interface name like "eth0.10").
 */
export function sysctlPath(key: string): string {
  const rel = key.includes('/') ? key.replace(/^\/+/, '') : key.replaceAll('.', '/');
  if (rel.split('/').some((part) => part === '' || part === '.' || part === '..')) throw new UserError(`invalid sysctl key "${key}"`);
  return `/proc/sys/${rel}`;
}

export function setSysctlSync(key: string, value: string | number): void {
  try {
    writeFileSync(sysctlPath(key), String(value));
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new SystemError(`set sysctl ${key}=${value}`, err);
  }
}

export function getSysctlSync(key: string): string {
  try {
    return readFileSync(sysctlPath(key), 'utf8').trim();
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new SystemError(`read sysctl ${key}`, err);
  }
}
