// Smoke test of `npm run bench` so the bench code cannot rot: bench/run-all.ts --quick --only
// control-plane runs the real bench (a real daemon process) and writes a results file with its table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/daemon.js';

test('run-all --quick --only control-plane writes a results table', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lva-bench-smoke-'));
  try {
    const out = path.join(dir, 'results.md');
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/run-all.ts', '--quick', '--only', 'control-plane', '--out', out], {
      cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000,
    });
    assert.equal(r.status, 0, `run-all failed:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
    const md = readFileSync(out, 'utf8');
    assert.match(md, /^# lva-edge benchmark results/m);
    assert.match(md, /Quick mode/);
    assert.match(md, /^\| cores \| \d+ \|$/m);
    assert.match(md, /^\| \[control-plane\]\(#control-plane\) \| ok \| \d+ \/ 10 \|/m);
    assert.match(md, /^\| GraphTopologyGet median \| [\d.]+ ms \| GET \/healthz median: [\d.]+ ms \| [\d.]+× \| < 5 ms \| (✔ pass|✘ fail) \|$/m);
    assert.doesNotMatch(md, /## Failed or skipped/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
