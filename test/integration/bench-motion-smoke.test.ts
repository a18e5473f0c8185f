// Smoke test of the motion accuracy bench so its code cannot rot: generates the quick labelled clips
// (bench/motion-clips.ts, real ffmpeg) into a fresh directory and runs bench/motion-accuracy.ts --quick
// for lva-edge only (the Motion daemon is the bench's baseline, not needed here), through the real
// replay path. Checks the report contract and the two things the clips are labelled with: the noise-only
// clip yields no event, the moving object is found.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/daemon.js';
import { assertNoLeftoverFfmpeg } from '../helpers/processes.js';
import { parseReportLine } from '../../bench/report.js';

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('motion-accuracy --quick: clips generated with truth, report follows the contract, noise-only clip has no event', { timeout: 90_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lva-motion-smoke-'));
  try {
    const r = await run(['bench/motion-accuracy.ts', '--quick', '--json', '--skip-motion', '--dir', dir], 80_000);
    assert.equal(r.code, 0, `bench failed:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);

    // The generator left one MP4 and one ground-truth JSON per clip.
    const files = readdirSync(dir);
    const truths = files.filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')));
    assert.equal(truths.length, 3, `truth files: ${files.join(', ')}`);
    for (const t of truths) {
      assert.ok(Array.isArray(t.motion) && typeof t.fps === 'number' && typeof t.seconds === 'number', `truth shape: ${JSON.stringify(t)}`);
      assert.ok(existsSync(path.join(dir, files.find((f) => f.startsWith(`${t.name}-`) && f.endsWith('.mp4'))!)), `no clip for ${t.name}`);
    }

    const report = parseReportLine(r.stdout, 'motion-accuracy');
    assert.notEqual(typeof report, 'string', `report: ${String(report)}`);
    if (typeof report === 'string') return;
    const byMeasure = (prefix: string) => report.rows.find((x) => x.measure.startsWith(prefix));
    const still = byMeasure('Medium: noise-only / lighting-change clips with any motion report');
    assert.ok(still, `rows: ${report.rows.map((x) => x.measure).join(' | ')}`);
    assert.equal(still.ours, 0, 'a noise-only or lighting clip produced motion events at Medium');
    assert.equal(still.pass, true);
    const caught = byMeasure('Medium: moving-object clips caught');
    assert.ok(caught && caught.ours === 1 && caught.pass === true, `moving object: ${JSON.stringify(caught)}`);
    assert.ok(report.rows.every((x) => x.baselineValue === null), 'a Motion daemon figure appeared although it was skipped');

    // Per-clip detail: the noise-only clip has zero reports at every sensitivity.
    const full = JSON.parse(r.stdout.trim().split('\n').pop()!) as { clips: Array<{ clip: string; lva: Record<string, { reports: number; onsets: Array<number | null> }> }> };
    const noise = full.clips.find((c) => c.clip === 'q-noise-moderate');
    assert.ok(noise, 'noise-only clip missing from the report');
    for (const s of ['Low', 'Medium', 'High']) assert.equal(noise.lva[s]!.reports, 0, `${s} reported motion on the noise-only clip`);
    const obj = full.clips.find((c) => c.clip === 'q-obj64-hi-50')!;
    assert.ok(obj.lva.Medium!.onsets[0] !== null && obj.lva.Medium!.onsets[0]! <= 1, `Medium onset ${obj.lva.Medium!.onsets[0]}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await assertNoLeftoverFfmpeg();
});
