// Reads the result folders the conformance runner wrote (`-o DIR`, one `server-SCENARIO-TIME/`
// folder with a checks.json per scenario) for each setup, checks that every expected scenario
// ran and produced at least one pass/fail check, and prints a Markdown summary: one row per
// setup, then one row per scenario.
//
// A scenario counts as failed when any of its checks is FAILURE or WARNING: the same rule the
// runner applies to --expected-failures baselines.
//
// Usage: node summarize.mjs SCENARIOS_FILE NAME=RESULT_DIR=BASELINE_YAML...
// Exits 1 when a setup is missing scenarios or a scenario reported no checks.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const [scenarioFile, ...setups] = process.argv.slice(2);
if (!scenarioFile || setups.length === 0) {
  console.error('usage: node summarize.mjs SCENARIOS_FILE NAME=RESULT_DIR=BASELINE_YAML...');
  process.exit(2);
}
const expected = readFileSync(scenarioFile, 'utf8').split('\n').map((s) => s.trim()).filter(Boolean);

// The baselines are flat YAML lists under `server:`; reading `- name` lines is enough and keeps
// this script free of dependencies.
function baseline(path) {
  return new Set(
    readFileSync(path, 'utf8')
      .split('\n')
      .map((l) => l.replace(/#.*/, '').trim())
      .filter((l) => l.startsWith('- '))
      .map((l) => l.slice(2).trim()),
  );
}

let broken = false;
const results = [];
for (const arg of setups) {
  const [name, dir, baselinePath] = arg.split('=');
  const expectedFailures = baseline(baselinePath);
  const scenarios = new Map();
  for (const entry of readdirSync(dir)) {
    const m = /^server-(.+)-(\d{4}-\d{2}-\d{2}T[0-9-]+Z)$/.exec(entry);
    if (!m) continue;
    const checks = JSON.parse(readFileSync(join(dir, entry, 'checks.json'), 'utf8'));
    const count = (s) => checks.filter((c) => c.status === s).length;
    scenarios.set(m[1], { success: count('SUCCESS'), failure: count('FAILURE'), warning: count('WARNING') });
  }
  const missing = expected.filter((s) => !scenarios.has(s));
  const empty = [...scenarios].filter(([, r]) => r.success + r.failure === 0).map(([s]) => s);
  if (missing.length > 0) {
    console.error(`${name}: ${missing.length} scenario(s) did not run: ${missing.join(', ')}`);
    broken = true;
  }
  if (empty.length > 0) {
    console.error(`${name}: scenario(s) with no pass/fail check: ${empty.join(', ')}`);
    broken = true;
  }
  results.push({ name, scenarios, expectedFailures });
}

const failed = (r) => r.failure > 0 || r.warning > 0;
console.log('| setup | scenarios run | passed | failed | of which expected | checks passed | checks failed | warnings |');
console.log('|---|---|---|---|---|---|---|---|');
for (const { name, scenarios, expectedFailures } of results) {
  const rows = [...scenarios.entries()];
  const bad = rows.filter(([, r]) => failed(r));
  const sum = (k) => rows.reduce((n, [, r]) => n + r[k], 0);
  console.log(
    `| ${name} | ${rows.length} | ${rows.length - bad.length} | ${bad.length} | ` +
      `${bad.filter(([s]) => expectedFailures.has(s)).length} | ${sum('success')} | ${sum('failure')} | ${sum('warning')} |`,
  );
}
console.log('');
console.log(`| scenario | ${results.map((r) => r.name).join(' | ')} |`);
console.log(`|---|${results.map(() => '---').join('|')}|`);
for (const s of expected) {
  const cells = results.map(({ scenarios, expectedFailures }) => {
    const r = scenarios.get(s);
    if (!r) return 'not run';
    const checks = `${r.success}/${r.success + r.failure}`;
    if (!failed(r)) return `pass (${checks})`;
    const why = r.failure > 0 ? 'FAIL' : 'WARN';
    return `${why} (${checks})${expectedFailures.has(s) ? ', expected' : ''}`;
  });
  console.log(`| ${s} | ${cells.join(' | ')} |`);
}
process.exit(broken ? 1 : 0);
