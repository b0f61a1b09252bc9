// The docs and the CLI never disagree: every flag the commander definitions declare is in the
// CLI reference (docs/cli.md, one section per command), and no page names a flag that does not
// exist, in the reference or in any `tsrun …` command line of README.md and docs/*.md. It reads
// the definitions themselves (shim/cli.ts buildProgram), so a new command or flag is covered the
// moment it is declared.
import { describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { buildProgram } from '../../../shim/cli.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const DOCS = path.join(ROOT, 'docs');
const REFERENCE = path.join(DOCS, 'cli.md');

interface CommandInfo {
  /** "tsrun network create" */
  path: string;
  command: Command;
  /** Long flags ("--subnet"). */
  long: Set<string>;
}

function commands(): CommandInfo[] {
  const out: CommandInfo[] = [];
  const walk = (c: Command, prefix: string[]) => {
    const p = [...prefix, c.name()];
    out.push({ path: p.join(' '), command: c, long: new Set(c.options.map((o) => o.long).filter((l): l is string => !!l)) });
    for (const sub of c.commands) walk(sub, p);
  };
  walk(buildProgram(() => {}), []);
  return out;
}

const all = commands();
const program = all[0]!;
const byPath = new Map(all.map((c) => [c.path, c]));

/** docs/cli.md's sections: "## tsrun network create" → its text. */
function referenceSections(): Map<string, string> {
  const sections = new Map<string, string>();
  let current: string | undefined;
  for (const line of readFileSync(REFERENCE, 'utf8').split('\n')) {
    const h = /^##\s+(tsrun(?:\s+[a-z][a-z0-9-]*)*)\s*$/.exec(line);
    if (h) {
      current = h[1]!.replace(/\s+/g, ' ');
      sections.set(current, '');
    } else if (line.startsWith('#')) {
      current = undefined;
    } else if (current !== undefined) {
      sections.set(current, `${sections.get(current)}${line}\n`);
    }
  }
  return sections;
}

const flagsIn = (text: string): string[] => [...text.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)].map((m) => m[0]);

/** Every `tsrun …` command line of the docs: fenced lines (continuations joined) and code spans. */
function commandLines(): { file: string; line: string }[] {
  const files = [path.join(ROOT, 'README.md'), ...readdirSync(DOCS).filter((f) => f.endsWith('.md')).map((f) => path.join(DOCS, f))];
  const out: { file: string; line: string }[] = [];
  for (const file of files) {
    const rel = path.relative(ROOT, file);
    let fenced = false;
    let pending = '';
    for (const raw of readFileSync(file, 'utf8').split('\n')) {
      if (raw.trimStart().startsWith('```')) {
        fenced = !fenced;
        pending = '';
        continue;
      }
      if (fenced) {
        const joined = pending + raw;
        if (/\\\s*$/.test(raw)) {
          pending = joined.replace(/\\\s*$/, ' ');
          continue;
        }
        pending = '';
        // tsrun as the command: at the start of the line or after a shell operator, not as an
        // argument of another program (docker run --runtime tsrun …).
        const m = /(?:^|[;&|(]\s*)(?:sudo\s+)?(?:[A-Z_]+=\S*\s+)*(tsrun\s.*)$/.exec(joined.replace(/^\s*\$\s*/, '').trimStart());
        if (m) out.push({ file: rel, line: m[1]! });
      } else {
        for (const span of raw.matchAll(/`(tsrun\s[^`]*)`/g)) out.push({ file: rel, line: span[1]! });
      }
    }
  }
  return out;
}

/** The command a line runs and the long flags it gives that command (until `--` or a shell operator). */
function parseLine(line: string): { command: CommandInfo; flags: string[] } {
  let cmd = program;
  const flags: string[] = [];
  const tokens = line.replace(/#.*$/, '').split(/\s+/).slice(1);
  for (const raw of tokens) {
    if (raw === '--' || /^(\||&&|;|>|<|\))/.test(raw)) break;
    const t = raw.replace(/^[[(]+|[\])]+$/g, '');
    if (t.startsWith('--')) {
      const flag = /^--[a-z][a-z0-9-]*/.exec(t)?.[0];
      if (flag) flags.push(flag);
      continue;
    }
    const sub = byPath.get(`${cmd.path} ${t}`);
    if (sub) cmd = sub;
  }
  return { command: cmd, flags };
}

describe('docs/cli.md, the CLI reference', () => {
  const sections = referenceSections();

  it('has a section for every command (all but the groups without options of their own)', () => {
    const missing = all.filter((c) => (c.long.size > 0 || c.command.commands.length === 0) && !sections.has(c.path)).map((c) => c.path);
    expect(missing).toEqual([]);
  });

  it('names every flag of every command in its section', () => {
    const missing: string[] = [];
    for (const c of all) {
      const text = sections.get(c.path);
      if (text === undefined) continue;
      const documented = new Set(flagsIn(text));
      for (const flag of c.long) if (!documented.has(flag)) missing.push(`${c.path} ${flag}`);
    }
    expect(missing).toEqual([]);
  });

  it('names no flag that does not exist, and no command that does not exist', () => {
    const unknown: string[] = [];
    for (const [p, text] of sections) {
      const c = byPath.get(p);
      if (!c) {
        unknown.push(`section "${p}": no such command`);
        continue;
      }
      for (const flag of flagsIn(text)) if (!c.long.has(flag) && !program.long.has(flag)) unknown.push(`${p} ${flag}`);
    }
    expect(unknown).toEqual([]);
  });
});

describe('every tsrun command line in README.md and docs/', () => {
  it('uses only flags that exist for its command', () => {
    const lines = commandLines();
    expect(lines.length).toBeGreaterThan(10);
    const wrong: string[] = [];
    for (const { file, line } of lines) {
      const { command, flags } = parseLine(line);
      for (const flag of flags) if (!command.long.has(flag) && !program.long.has(flag)) wrong.push(`${file}: ${flag} is no flag of ${command.path}: ${line}`);
    }
    expect(wrong).toEqual([]);
  });

  it('reads a command line the way commander would', () => {
    expect(parseLine('tsrun --store etcd://10.0.0.1:2379 network create web --driver overlay --subnet 10.200.0.0/24')).toMatchObject({ command: { path: 'tsrun network create' }, flags: ['--store', '--driver', '--subnet'] });
    expect(parseLine('tsrun run --net web ./bundle -- httpd --port 80 | tee log').flags).toEqual(['--net']);
    expect(parseLine('tsrun hook install --hooks-dir DIR [--annotation K=RE]...').flags).toEqual(['--hooks-dir', '--annotation']);
  });
});

describe('README.md and docs/ point at things that exist', () => {
  const pages = [path.join(ROOT, 'README.md'), ...readdirSync(DOCS).filter((f) => f.endsWith('.md')).map((f) => path.join(DOCS, f))];

  it('every relative link and image resolves to a file', () => {
    const broken: string[] = [];
    for (const page of pages) {
      for (const m of readFileSync(page, 'utf8').matchAll(/\]\(([^)\s#]+)(#[^)]*)?\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
        if (!existsSync(path.resolve(path.dirname(page), target))) broken.push(`${path.relative(ROOT, page)}: ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('the README links every page of docs/', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const unlinked = readdirSync(DOCS).filter((f) => f.endsWith('.md') && !readme.includes(`](docs/${f})`));
    expect(unlinked).toEqual([]);
  });

  it("the README's module map names every source folder, and every path it names exists", () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const map = readme.slice(readme.indexOf('## Architecture'));
    const folders = ['config', 'shim', 'hook', 'runtime', 'bench', 'scripts', 'test', ...['runc', 'cni'].filter((d) => existsSync(path.join(ROOT, d)))];
    for (const sub of readdirSync(path.join(ROOT, 'runtime'), { withFileTypes: true })) if (sub.isDirectory()) folders.push(`runtime/${sub.name}`);
    for (const sub of readdirSync(path.join(ROOT, 'shim'), { withFileTypes: true })) if (sub.isDirectory()) folders.push(`shim/${sub.name}`);
    const unnamed = folders.filter((f) => !map.includes(`${f}/`) && !map.includes(`\`${path.basename(f)}/\``));
    expect(unnamed).toEqual([]);
    // Rows name files relative to their folder: `folder/` | `a.ts` · `b.ts` …
    const missing: string[] = [];
    for (const row of map.split('\n').filter((l) => l.startsWith('| `'))) {
      const cells = row.split('|').map((c) => c.trim());
      const dirs = [...cells[1]!.matchAll(/`([\w-]+(?:\/[\w-]+)*)\/`/g)].map((m) => m[1]!);
      for (const file of [...cells[2]!.matchAll(/`([\w./-]+\.(?:ts|sh|mjs|cjs))`/g)].map((m) => m[1]!)) {
        if (!dirs.some((d) => existsSync(path.join(ROOT, d, file)))) missing.push(`${dirs.join(', ')}: ${file}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it("the README's module map names every source file, in its folder's row", () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const rows = readme.slice(readme.indexOf('## Architecture')).split('\n').filter((l) => l.startsWith('| `'));
    const named = new Map<string, Set<string>>();
    for (const row of rows) {
      const cells = row.split('|').map((c) => c.trim());
      const files = [...cells[2]!.matchAll(/`([\w.-]+\.(?:ts|sh))`/g)].map((m) => m[1]!);
      for (const d of [...cells[1]!.matchAll(/`([\w-]+(?:\/[\w-]+)*)\/`/g)].map((m) => m[1]!)) named.set(d, new Set([...(named.get(d) ?? []), ...files]));
    }
    const sources = ['config', 'shim', 'hook', 'runc', 'cni', 'runtime'].filter((d) => existsSync(path.join(ROOT, d)));
    const unnamed: string[] = [];
    const visit = (dir: string) => {
      for (const e of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
        if (e.isDirectory()) visit(`${dir}/${e.name}`);
        else if (/\.(ts|sh)$/.test(e.name) && !e.name.endsWith('.d.ts') && !named.get(dir)?.has(e.name)) unnamed.push(`${dir}/${e.name}`);
      }
    };
    for (const d of sources) visit(d);
    expect(unnamed).toEqual([]);
  });
});

describe('the README', () => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

  it('opens with the two commands and stays short (details go to docs/)', () => {
    expect(readme.split('\n').slice(0, 6).join('\n')).toBe('# tsrun\n\n```sh\nnpm ci && npm run quickstart\nnpm ci && npm test\n```');
    expect(readme.trimEnd().split('\n').length).toBeLessThanOrEqual(250);
  });
});
