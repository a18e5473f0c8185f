#!/usr/bin/env node
// The chaos suite (npm run test:chaos): repeated fault trials under test/chaos, run with Node's test
// runner (TypeScript through tsx), then one summary table (fault | trials | recovered | data lost |
// worst recovery) printed as markdown and written to a file. Each scenario appends one JSON line per
// fault to the file named by LVA_CHAOS_RESULTS (see test/chaos/lib.ts); a scenario that crashed
// before recording shows up as a failed test. Exit status: non-zero when any test failed, when no
// scenario recorded a result, or when a row (not marked knownGap) recovered fewer trials than it ran.
//
// Usage: node scripts/run-chaos.mjs [test files or folders] [--out <file.md>] [node --test flags]
// Default output: <os tmpdir>/lva-edge-chaos/chaos-results.md.
// Trial counts: LVA_CHAOS_CAMERA_TRIALS (default 20), LVA_CHAOS_FFMPEG_TRIALS, LVA_CHAOS_DAEMON_TRIALS
// (default 3), LVA_CHAOS_DISK_TRIALS (default 2); LVA_CHAOS_TRIALS sets them all; LVA_CHAOS_OUTAGE_MS
// (default 10000); LVA_CHAOS_CONCURRENCY (test files at a time, default 2).
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';

function collect(p, out) {
  const st = statSync(p);
  if (st.isDirectory()) {
    for (const e of readdirSync(p).sort()) collect(join(p, e), out);
  } else if (p.endsWith('.test.ts')) out.push(p);
}

const argv = process.argv.slice(2);
let outFile = join(tmpdir(), 'lva-edge-chaos', 'chaos-results.md');
const roots = [];
const flags = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--out') outFile = resolve(argv[++i]);
  else if (a.startsWith('-')) flags.push(a);
  else roots.push(a);
}
const files = [];
for (const r of roots.length ? roots : ['test/chaos']) collect(r, files);
if (files.length === 0) {
  console.error('no chaos test files found');
  process.exit(1);
}

mkdirSync(join(outFile, '..'), { recursive: true });
const resultsPath = join(tmpdir(), `lva-chaos-results-${process.pid}.jsonl`);
rmSync(resultsPath, { force: true });
writeFileSync(resultsPath, '');

const started = Date.now();
// Two files at a time: the camera-outage scenario mostly waits out its outages, so the others run
// beside it and the suite stays within ~7 minutes on a 2-core machine (LVA_CHAOS_CONCURRENCY=1 to serialise).
const concurrency = Number(process.env.LVA_CHAOS_CONCURRENCY ?? 2);
const args = ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...flags, ...files];
const run = spawnSync(process.execPath, args, {
  stdio: 'inherit',
  env: { ...process.env, LVA_CHAOS_RESULTS: resultsPath },
});
const elapsedS = (Date.now() - started) / 1000;

/** @type {Array<{fault:string,trials:number,recovered:number,dataLost:string,worstRecoveryMs:number|null,detail?:string,skipped?:string,knownGap?:boolean}>} */
const rows = [];
for (const line of readFileSync(resultsPath, 'utf8').split('\n')) {
  if (!line.trim()) continue;
  try {
    rows.push(JSON.parse(line));
  } catch {
    console.error(`chaos: unreadable result line: ${line}`);
  }
}
rmSync(resultsPath, { force: true });

const cell = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');
const fmtMs = (ms) => (ms == null ? '–' : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`);
const lines = [
  '# lva-edge chaos suite',
  '',
  `Run ${new Date(started).toISOString()}, ${elapsedS.toFixed(0)} s, test runner exit ${run.status ?? run.signal}.`,
  '',
  '| fault | trials | recovered | data lost | worst recovery | detail |',
  '|---|---:|---:|---|---:|---|',
];
for (const r of rows) {
  if (r.skipped) {
    lines.push(`| ${cell(r.fault)} | 0 | – | – | – | skipped: ${cell(r.skipped)} |`);
  } else {
    lines.push(
      `| ${cell(r.fault)}${r.knownGap ? ' (known gap)' : ''} | ${r.trials} | ${r.recovered}/${r.trials} | ${cell(r.dataLost)} | ${fmtMs(r.worstRecoveryMs)} | ${cell(r.detail ?? '')} |`,
    );
  }
}
if (rows.length === 0) lines.push('| (no scenario recorded a result) | | | | | |');
const table = lines.join('\n') + '\n';
writeFileSync(outFile, table);
process.stdout.write('\n' + table);
console.log(`\nchaos summary written to ${outFile}`);

// A row marked knownGap documents a fault the product does not handle yet (its test is a todo): it is
// shown, but does not fail the suite.
const incomplete = rows.some((r) => !r.skipped && !r.knownGap && r.recovered < r.trials);
if (run.status !== 0) process.exit(run.status ?? 1);
if (rows.length === 0 || incomplete) process.exit(1);
