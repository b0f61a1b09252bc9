// Reads the jest JSON report the VM lane's guest wrote and judges it on the host: prints one line
// per test file and test, the failures' messages, and a closing "vm: N passed, N failed" line;
// exits 1 when anything failed. A test that reports itself skipped inside the VM counts as
// failed: the VM exists to provide the kernel features those tests skip without, so a skip there
// means the lane is broken (a module did not load), not that the test may be excused.
//
// Usage: node scripts/vm/summarize.mjs JEST_JSON [SUMMARY_FILE]
//   SUMMARY_FILE, when given, receives "PASSED FAILED" for .ci/run to add to its totals.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const [reportPath, summaryPath] = process.argv.slice(2);
if (!reportPath) {
  console.error('usage: summarize.mjs JEST_JSON [SUMMARY_FILE]');
  process.exit(2);
}

let report;
try {
  report = JSON.parse(readFileSync(reportPath, 'utf8'));
} catch (err) {
  finish(0, 1, [`no readable jest report (${err.code ?? err.message}): jest did not finish inside the VM`]);
}

let passed = 0;
let failed = 0;
const problems = [];
for (const file of report.testResults ?? []) {
  const name = path.relative(process.cwd(), file.name);
  const counts = { passed: 0, failed: 0, skipped: 0 };
  for (const t of file.assertionResults ?? []) {
    const title = [...(t.ancestorTitles ?? []), t.title].join(' › ');
    if (t.status === 'passed') {
      counts.passed++;
      console.log(`  ✓ ${title} (${t.duration ?? 0} ms)`);
    } else if (t.status === 'failed') {
      counts.failed++;
      console.log(`  ✗ ${title}`);
      problems.push(`${name} › ${title}\n${(t.failureMessages ?? []).join('\n').split('\n').slice(0, 20).join('\n')}`);
    } else {
      // pending, skipped, todo, disabled: all mean "did not run".
      counts.skipped++;
      console.log(`  ○ ${title} (${t.status})`);
      problems.push(`${name} › ${title}: ${t.status} inside the VM, where the kernel has what it needs`);
    }
  }
  // A file that could not even load (syntax error, failing import, throw in describe) has no
  // assertion results, only a message.
  if (file.status === 'failed' && counts.failed === 0) {
    counts.failed++;
    problems.push(`${name}: test file failed to run\n${String(file.message ?? '').split('\n').slice(0, 20).join('\n')}`);
  }
  console.log(`${counts.failed || counts.skipped ? 'FAIL' : 'PASS'} ${name}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
  passed += counts.passed;
  failed += counts.failed + counts.skipped;
}
if (passed + failed === 0) {
  failed = 1;
  problems.push('jest ran no test inside the VM');
}
finish(passed, failed, problems);

function finish(p, f, msgs) {
  for (const m of msgs) console.log(`vm: ${m}`);
  if (summaryPath) writeFileSync(summaryPath, `${p} ${f}\n`);
  console.log(`vm: ${p} passed, ${f} failed`);
  process.exit(f === 0 ? 0 : 1);
}
