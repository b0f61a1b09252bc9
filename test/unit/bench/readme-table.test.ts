import { describe, expect, it } from '@jest/globals';
import { BEGIN, END, renderTable, spliceTable, type Headline } from '../../../bench/readme-table.js';
import type { SavedRun } from '../../../bench/saved-run.js';

const run: SavedRun = {
  date: '2026-11-29T14:00:00.000Z',
  node: 'v20.20.2',
  runs: 10,
  suites: ['bridge', 'overlay'],
  rows: [
    { section: 'attach+detach of one container (median of 10)', name: 'in-process wiring', value: 4.2, unit: 'ms', target: '≤ 5' },
    { section: 'overlay: two hosts', name: 'overlay / underlay', value: 0.57, unit: '×', target: '≥ 0.9' },
    { section: 'overlay: two hosts', name: 'floor / underlay', value: 0.59, unit: '×' },
    { section: 'overlay: two hosts', name: 'tsrun / floor', value: 0.97, unit: '×', target: '≥ 0.9' },
    { section: 'overlay: two hosts', name: 'bad / floor', value: 0.8, unit: '×', target: '≥ 0.9' },
  ],
};

describe('the README benchmark table', () => {
  it('says met, held to its floor, or MISSED from the rows of one run', () => {
    const headlines: Headline[] = [
      { label: 'wiring', target: { section: 'attach+detach', name: 'in-process wiring' } },
      { label: 'overlay', target: { section: 'overlay', name: 'overlay / underlay' }, detail: [{ section: 'overlay', name: 'floor / underlay' }], floor: { section: 'overlay', name: 'tsrun / floor' } },
      { label: 'overlay, badly', target: { section: 'overlay', name: 'overlay / underlay' }, floor: { section: 'overlay', name: 'bad / floor' } },
    ];
    const table = renderTable(run, headlines).split('\n');
    expect(table[0]).toContain('2026-11-29T14:00:00.000Z');
    expect(table[4]).toBe('| wiring |  | 4.20 ms (≤ 5) | met |');
    expect(table[5]).toBe('| overlay | floor / underlay: 0.59× | 0.57× (≥ 0.9) | held to its floor: tsrun / floor 0.97× (≥ 0.9) |');
    expect(table[6]).toContain('| MISSED: bad / floor 0.80× (≥ 0.9) |');
  });

  it('refuses a headline whose row the run lacks instead of leaving a blank', () => {
    expect(() => renderTable(run, [{ label: 'x', target: { section: 'startup', name: 'tsrun / floor A' } }])).toThrow(/no row "tsrun \/ floor A"/);
  });

  it('replaces only what lies between the markers', () => {
    const readme = `# tsrun\n${BEGIN}\nold table\n${END}\nafter\n`;
    expect(spliceTable(readme, 'new')).toBe(`# tsrun\n${BEGIN}\nnew\n${END}\nafter\n`);
    expect(() => spliceTable('# no markers', 'new')).toThrow(/markers/);
  });
});
