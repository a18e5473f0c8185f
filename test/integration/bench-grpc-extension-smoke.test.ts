// Smoke test of bench/grpc-extension.ts so its code cannot rot: the quick run (30 samples per
// transport, real gRPC and HTTP servers on loopback); checks the report contract only (no timing).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { REPO_ROOT } from '../helpers/daemon.js';
import { parseReportLine } from '../../bench/report.js';

test('grpc-extension bench --quick: Embedded and SharedMemory next to the HTTP baseline, report contract', { timeout: 120_000 }, async () => {
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/grpc-extension.ts', '--quick', '--json'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 110_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  assert.equal(r.code, 0, `bench failed:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  const report = parseReportLine(r.stdout, 'grpc-extension');
  assert.ok(typeof report !== 'string', String(report));
  assert.equal(report.rows.length, 2);
  assert.match(report.rows[0]!.measure, /Embedded/);
  assert.match(report.rows[1]!.measure, /SharedMemory/);
  for (const row of report.rows) {
    assert.ok(row.ours > 0 && row.baselineValue !== null && row.baselineValue > 0, JSON.stringify(row));
    assert.equal(row.ratio, row.ours / row.baselineValue!);
  }
  assert.deepEqual(readdirSync('/dev/shm').filter((f) => f.startsWith('lva-edge-bench-')), [], 'the bench removes its shared memory');
});
