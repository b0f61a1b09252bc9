// The VM lane's console filter with progress: reads the guest's serial console on stdin, writes
// it out prefixed "vm| " (terminal escapes and CRs removed), and adds a line whenever the lane
// gets somewhere (guest up, jest started, each test file done) with the time spent and an
// estimate of what is left, from how long the same steps took last time (a small JSON file).
//
//   node scripts/vm/progress.mjs HISTORY.json TEST.js...
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

const [historyFile, ...tests] = process.argv.slice(2);
const names = tests.map((t) => path.basename(t));
let history = { boot: undefined, files: {} };
try {
  history = { files: {}, ...JSON.parse(readFileSync(historyFile, 'utf8')) };
} catch {
  // first run: no estimate
}

const started = Date.now();
let mark = started;
let booted = false;
const done = new Set();
const took = { files: {} };
const secs = (ms) => ms / 1000;
const fmt = (s) => (s < 60 ? `${Math.round(s)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);

function left() {
  const since = secs(Date.now() - mark);
  let rest = 0;
  if (!booted) {
    if (history.boot === undefined) return undefined;
    rest += Math.max(0, history.boot - since);
  }
  for (const n of names.filter((x) => !done.has(x))) {
    const known = history.files[n];
    if (known === undefined) return undefined;
    rest += known;
  }
  if (booted) rest = Math.max(0, rest - since);
  return rest;
}

function progress(what) {
  const l = left();
  console.log(`vm: ${what}  (elapsed ${fmt(secs(Date.now() - started))}, ${l === undefined ? 'time left unknown' : `about ${fmt(l)} left`})`);
}

progress(`[3/4] booting the guest, then ${names.length} test file(s): ${names.join(', ')}`);
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (raw) => {
  // eslint-disable-next-line no-control-regex
  const line = raw.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\x1bc/g, '').replace(/\r$/, '');
  console.log(`vm| ${line}`);
  if (!booted && /tsrun-vm: jest: /.test(line)) {
    booted = true;
    took.boot = secs(Date.now() - mark);
    mark = Date.now();
    progress('guest up, modules loaded: jest starts');
    return;
  }
  const m = /^(PASS|FAIL)\s+(\S+)/.exec(line.trim());
  if (m && booted) {
    const n = path.basename(m[2]);
    if (!names.includes(n) || done.has(n)) return;
    done.add(n);
    took.files[n] = secs(Date.now() - mark);
    mark = Date.now();
    progress(`[tests ${done.size}/${names.length}] ${m[1]} ${n} in ${fmt(took.files[n])}`);
  }
});
rl.on('close', () => {
  if (done.size === 0 && took.boot === undefined) return; // the guest never got anywhere: keep the old figures
  const next = { boot: took.boot ?? history.boot, files: { ...history.files, ...took.files } };
  try {
    mkdirSync(path.dirname(historyFile), { recursive: true });
    writeFileSync(`${historyFile}.tmp`, JSON.stringify(next, null, 1));
    renameSync(`${historyFile}.tmp`, historyFile);
  } catch {
    // the estimate is a convenience
  }
});
