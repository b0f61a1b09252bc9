// Names that become paths or interface names are checked before they are used: runc's container
// id charset (which also keeps ids like "../../etc" out of the state directory), network names,
// and Linux interface names (at most 15 bytes).
import { randomHex } from './random.js';
import { UserError } from './errors.js';

const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_+.-]*$/;
const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const IFNAME = /^[A-Za-z0-9_.-]+$/;
export const IFNAME_MAX = 15;

/** True for a well-formed container id (checkContainerId's rule, without the error). */
export function isContainerId(id: string): boolean {
  return id.length <= 128 && CONTAINER_ID.test(id) && id !== '.' && id !== '..';
}

export function checkContainerId(id: string): string {
  if (id.length > 128 || !CONTAINER_ID.test(id) || id === '.' || id === '..') {
    throw new UserError(`invalid container id ${JSON.stringify(truncate(id))}: use 1-128 characters from [A-Za-z0-9_+.-], starting with a letter or digit`);
  }
  return id;
}

export function checkNetworkName(name: string): string {
  if (name.length > 64 || !NETWORK_NAME.test(name)) {
    throw new UserError(`invalid network name ${JSON.stringify(truncate(name))}: use 1-64 characters from [A-Za-z0-9_.-], starting with a letter or digit`);
  }
  return name;
}

export function checkIfname(name: string, what = 'interface name'): string {
  if (name.length === 0 || Buffer.byteLength(name) > IFNAME_MAX || !IFNAME.test(name) || name === '.' || name === '..') {
    throw new UserError(`invalid ${what} ${JSON.stringify(truncate(name))}: use 1-${IFNAME_MAX} characters from [A-Za-z0-9_.-]`);
  }
  return name;
}

/** A fresh id like docker's: 12 hex characters are plenty for one host. */
export function generateContainerId(): string {
  return randomHex(6);
}

function truncate(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}
