#!/usr/bin/env node
// Runs the test suite with Node's own test runner (TypeScript through tsx). Arguments are folders or
// files; default: every *.test.ts under test/. Node 20's --test takes no globs, so we list files here.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function collect(p, out) {
  const st = statSync(p);
  if (st.isDirectory()) {
    for (const e of readdirSync(p).sort()) collect(join(p, e), out);
  } else if (p.endsWith('.test.ts')) out.push(p);
}
const roots = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('-'));
const files = [];
// test/chaos is its own suite (npm run test:chaos): long fault trials with a summary table.
for (const r of roots.length ? roots : ['test/unit', 'test/integration', 'test/e2e']) collect(r, files);
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const args = ['--import', 'tsx', '--test', '--test-concurrency=1', ...flags, ...files];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
