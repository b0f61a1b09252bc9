// Runs after every test file (jest setupFilesAfterEnv): the machine's own network namespace must
// look the same as before the file ran. Tests run tsrun only inside namespaces they made; a tsrun
// table or a tsrun-named link appearing here means some test (this file, or one running beside it
// in another worker) ran tsrun in the machine's namespace. Failing here names the file at once,
// instead of host-net-guard reporting a leak at the end of CI with no culprit.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll } from '@jest/globals';

function tsrunTables(): string[] {
  const r = spawnSync('nft', ['list', 'tables'], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  return r.stdout.split('\n').map((l) => l.trim()).filter((l) => /^table \w+ tsrun\b/.test(l));
}

/** Links tsrun creates are named ts… (tsb bridges, tsv/tsm/tsi container sides, tsx VXLAN). */
function tsrunLinks(): string[] {
  try {
    return readdirSync('/sys/class/net').filter((n) => n.startsWith('ts'));
  } catch {
    return [];
  }
}

const snapshot = (): string[] => [...tsrunTables().map((t) => `nftables: ${t}`), ...tsrunLinks().map((l) => `link: ${l}`)];

let before = new Set<string>();
beforeAll(() => {
  before = new Set(snapshot());
});
afterAll(() => {
  const appeared = snapshot().filter((x) => !before.has(x));
  if (appeared.length > 0) {
    throw new Error(`the machine's own network namespace gained ${appeared.join(', ')} while this test file ran: a test ran tsrun outside its sandbox namespace`);
  }
});
