// What the README says of its first command, checked against scripts/setup-host.sh and
// scripts/quickstart.sh: the packages it installs, and that the demo stays out of this machine's
// own network namespace unless asked.
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const read = (f: string) => readFileSync(path.join(ROOT, f), 'utf8');

describe("the README's quickstart", () => {
  it('names every system package the quickstart set of setup-host.sh installs', () => {
    const setup = read('scripts/setup-host.sh');
    const list = /^QUICKSTART=\(\n([\s\S]*?)^\)/m.exec(setup)![1]!;
    const packages = [...list.matchAll(/^\s*\S+=(\S+)/gm)].map((m) => m[1]!);
    packages.push(...[...setup.matchAll(/missing\+=\((libnftables\w*)\)/g)].map((m) => m[1]!));
    expect(packages.length).toBeGreaterThan(5);
    const said = /that are missing: ([^)]*)\)/.exec(read('README.md').replace(/\n/g, ' '))![1]!.split(/,\s*/);
    expect(packages.filter((p) => !said.includes(p))).toEqual([]);
  });

  it('runs tsrun only through nsenter into its throwaway namespace, but for the explicit on-host branch', () => {
    const lines = read('scripts/quickstart.sh').split('\n');
    const onHost = lines.findIndex((l) => l.includes('TSRUN_QUICKSTART_ON_HOST'));
    const branchEnd = lines.findIndex((l, i) => i > onHost && /^fi\b/.test(l));
    const calls = lines.map((l, i) => [l, i] as const).filter(([l, i]) => l.includes('"${tsrun[@]}"') && (i < onHost || i > branchEnd));
    expect(calls.length).toBeGreaterThan(0);
    for (const [l] of calls) expect(l).toMatch(/nsenter --net=\/proc\/\$pin\/ns\/net "\$\{tsrun\[@\]\}"/);
  });
});
