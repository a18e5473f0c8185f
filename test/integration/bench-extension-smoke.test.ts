// Smoke test of bench/extension.ts so its code cannot rot: the quick run (4 s clip, one round) through
// the real replay path and a real bare ffmpeg baseline; checks the report contract only (no timing).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { REPO_ROOT } from '../helpers/daemon.js';
import { assertNoLeftoverFfmpeg } from '../helpers/processes.js';
import { parseReportLine } from '../../bench/report.js';

test('extension bench --quick: three rates, each next to its bare-ffmpeg baseline, report contract', { timeout: 180_000 }, async () => {
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/extension.ts', '--quick', '--json'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 170_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  assert.equal(r.code, 0, `bench failed:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  const report = parseReportLine(r.stdout, 'extension');
  assert.ok(typeof report !== 'string', String(report));
  assert.deepEqual(report.rows.map((x) => x.measure), ['CPU per camera at 1 request/s', 'CPU per camera at 5 requests/s', 'CPU per camera at 15 requests/s']);
  for (const row of report.rows) {
    assert.ok(row.ours > 0 && row.baselineValue !== null && row.baselineValue > 0, JSON.stringify(row));
    assert.equal(row.ratio, row.ours / row.baselineValue!);
    assert.equal(row.goal, 'ratio ≤ 1.5');
  }
  await assertNoLeftoverFfmpeg();
});
