// Malformed and hostile hook inputs for the fuzz tests (unit: in-process; integration: the real
// binary). Deterministic for a seed, so a failure can be replayed with FUZZ_SEED.
//
// Every pid generated here is invalid, dead (above this machine's pid_max) or the test process's
// own: a fuzz input must never name a live process in another network namespace, which a valid
// setup state would then wire.
import { readFileSync } from 'node:fs';
import { STAGES } from '../../../hook/state.js';

export interface HostileCase {
  label: string;
  stage: string;
  input: string;
}

export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pidMax(): number {
  try {
    return Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim());
  } catch {
    return 4_194_304;
  }
}

export function hostileCases(seed: number, count: number, ownPid: number): HostileCase[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const deadPid = Math.min(pidMax() + 1 + Math.floor(r() * 1000), 4_194_304);
  const dead = deadPid <= 4_194_304 && deadPid > pidMax() ? deadPid : 4_194_304 + 1; // > limit: refused by validation

  const strings = [
    '', ' ', '.', '..', '../../etc', '../../../../tmp/pwned', '/etc/passwd', 'a/b', 'a\u0000b', 'a\nb', '%2e%2e%2f', '~root',
    'ｃ１', '\u202e', 'x'.repeat(129), 'x'.repeat(70_000), '$(touch /tmp/tsrun-fuzz-pwned)', '`id`', '"; rm -rf /', '\\..\\..\\',
    'container:../../etc', 'container:', 'host ', 'bridge\n', 'tsrun', 'none', 'web', '8080:80/tcp', '0:0', '1-65535:1',
    '255.255.255.255', '::', '02:42:ac:11:00:02', 'ff:ff:ff:ff:ff:ff', '{"a":1}', 'null',
  ];
  const values: unknown[] = [null, true, false, 0, -1, 1.5, 1e308, -0, [], [1, 2], {}, { a: 1 }, 'str', ...strings.slice(0, 12)];
  const badStages = ['boot', '', 'poststop\n', '../hook', 'CREATERUNTIME'];
  const pids: unknown[] = [undefined, undefined, dead, dead, ownPid, 0, -5, 2.5, '42', null, [], {}, 2 ** 53, 4_194_305];
  const bundles: unknown[] = ['/tmp', '/', '/etc', '/proc/self/fd/0', '/dev/zero', '/nonexistent', 'relative', '', '/a/../../etc', null, 7];
  const statuses: unknown[] = ['creating', 'created', 'running', 'stopped', 'paused', '', null, 3];

  const annotationSets = (): unknown => {
    switch (Math.floor(r() * 8)) {
      case 0:
        return undefined;
      case 1:
        return { 'io.tsrun.network': pick(strings) };
      case 2:
        return { 'io.tsrun.ports': pick(strings), 'io.tsrun.network': pick(['none', 'host', 'web', 'bridge']) };
      case 3:
        return { 'io.tsrun.ip': pick(strings), 'io.tsrun.ip6': pick(strings), 'io.tsrun.mac': pick(strings) };
      case 4:
        return { [`io.tsrun.${pick(strings)}`]: pick(strings) };
      case 5:
        return Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`k${i}`, 'v'.repeat(50)]));
      case 6:
        return pick(values);
      default:
        return { 'io.tsrun.network': pick(values) };
    }
  };

  // Mostly valid fields, so that many inputs get past validation into the stages.
  const mostly = <T>(good: readonly T[], any: readonly T[]): T => (r() < 0.8 ? pick(good) : pick(any));
  const wellFormed = (): Record<string, unknown> => ({
    ociVersion: '1.0.2-dev',
    id: mostly(['c1', 'abc-def_1.2+3'], strings),
    status: mostly(['creating', 'stopped'], statuses),
    pid: mostly([undefined, dead, ownPid], pids),
    bundle: mostly(['/tmp', '/', '/etc', '/proc/self/fd/0', '/dev/zero', '/nonexistent'], bundles),
    annotations: r() < 0.3 ? { 'io.tsrun.network': pick(['none', 'host']) } : annotationSets(),
  });

  const cases: HostileCase[] = [];
  const add = (label: string, input: string) => cases.push({ label, stage: r() < 0.9 ? pick(STAGES) : pick(badStages), input });
  while (cases.length < count) {
    const kind = Math.floor(r() * 10);
    const s = wellFormed();
    switch (kind) {
      case 0: {
        const bytes = Buffer.from(Array.from({ length: Math.floor(r() * 300) }, () => Math.floor(r() * 256)));
        add('random bytes', bytes.toString('latin1'));
        break;
      }
      case 1: {
        const text = JSON.stringify(s) ?? '';
        add('truncated JSON', text.slice(0, Math.floor(r() * text.length)));
        break;
      }
      case 2: {
        const field = pick(['ociVersion', 'id', 'status', 'pid', 'bundle', 'annotations']);
        add(`${field} of a wrong type`, JSON.stringify({ ...s, [field]: pick(values) }));
        break;
      }
      case 3: {
        const field = pick(['ociVersion', 'id', 'status', 'bundle']);
        const { [field]: _dropped, ...rest } = s;
        add(`no ${field}`, JSON.stringify(rest));
        break;
      }
      case 4:
        add('path-like id', JSON.stringify({ ...s, id: pick(['../../etc', '..', '.', '/etc', 'a/../../b', '../' + 'x'.repeat(200), 'x'.repeat(129)]) }));
        break;
      case 5:
        add('deep nesting', `${'['.repeat(5000)}${']'.repeat(5000)}`);
        break;
      case 6:
        add('top level of another type', JSON.stringify(pick(values)));
        break;
      case 7:
        add('huge field', JSON.stringify({ ...s, [pick(['id', 'bundle', 'ociVersion', 'x'])]: 'A'.repeat(200_000 + Math.floor(r() * 100_000)) }));
        break;
      default:
        add('hostile but well-formed', JSON.stringify(s));
    }
  }
  cases.push({ label: 'over the size limit', stage: 'createRuntime', input: `{"id":"${'a'.repeat(4.5 * 1024 * 1024)}"}` });
  return cases;
}
