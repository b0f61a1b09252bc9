// Parsers for the number syntaxes users type on the command line, in docker's dialect so muscle
// memory carries over: sizes "512m", "1g", "1024k", "2097152" (bytes); CPUs "1.5".
import { UserError } from './errors.js';

const SIZE = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$/i;
const MULTIPLIER: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

export function parseSize(flag: string, text: string): number {
  const m = SIZE.exec(text.trim());
  if (!m) throw new UserError(`invalid ${flag} ${JSON.stringify(text)}: expected a size such as 512m, 1g or 1048576`);
  const bytes = Math.floor(Number(m[1]) * MULTIPLIER[m[2]!.toLowerCase()]!);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new UserError(`invalid ${flag} ${JSON.stringify(text)}: must be greater than zero`);
  return bytes;
}

/** Like parseSize, but "-1" means unlimited (docker's --memory-swap -1). */
export function parseSizeOrUnlimited(flag: string, text: string): number {
  return text.trim() === '-1' ? -1 : parseSize(flag, text);
}

export function parsePositiveInt(flag: string, text: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(text.trim())) throw new UserError(`invalid ${flag} ${JSON.stringify(text)}: expected a whole number`);
  const n = Number(text);
  if (n < 1 || n > max) throw new UserError(`invalid ${flag} ${JSON.stringify(text)}: must be between 1 and ${max}`);
  return n;
}

export function parseCpus(flag: string, text: string, hostCpus: number): number {
  if (!/^\d+(\.\d+)?$/.test(text.trim())) throw new UserError(`invalid ${flag} ${JSON.stringify(text)}: expected a number of CPUs such as 0.5 or 2`);
  const n = Number(text);
  if (n <= 0) throw new UserError(`invalid ${flag} ${JSON.stringify(text)}: must be greater than zero`);
  if (n > hostCpus) throw new UserError(`invalid ${flag} ${JSON.stringify(text)}: this host has only ${hostCpus} CPUs`);
  return n;
}
