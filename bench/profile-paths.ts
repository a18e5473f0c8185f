// Profiling helper for the recording and motion paths: runs `replay` of the bench clip repeatedly and
// prints self (Node) and child (ffmpeg) CPU per run, so a change in this process's cost is visible
// apart from ffmpeg's.
//
//   node --import tsx bench/profile-paths.ts [--runs 5] [--which record|motion|both] [--clip /tmp/clip.mp4]
//   node --cpu-prof --import tsx bench/profile-paths.ts --which record
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { replay } from '../src/replay.js';
import { makeSyntheticCamera } from '../src/util/synthetic-camera.js';
import { measureCpu, median } from './cpu.js';
import { evrMotionFiles, recordOnly } from './topologies.js';

const { values } = parseArgs({ options: {
  runs: { type: 'string', default: '5' }, which: { type: 'string', default: 'both' },
  clip: { type: 'string', default: path.join(os.tmpdir(), 'lva-bench-camera-60s-720p25.mp4') },
} });
const clip = values.clip!;
if (!existsSync(clip)) {
  await makeSyntheticCamera({ seconds: 60, fps: 25, size: '1280x720', motion: [[12, 18], [40, 45]], bitrate: '4M' }, clip);
}
const work = mkdtempSync(path.join(os.tmpdir(), 'lva-prof-'));
const motionTopo = evrMotionFiles();
let n = 0;
const runs: Record<string, () => Promise<void>> = {
  record: async () => {
    const out = path.join(work, `r${n++}`);
    const r = await replay({ topology: recordOnly, input: clip, output: out, messages: [{ inputName: 'go', eventTime: '2020-01-01T00:00:00.000Z' }] });
    if (!r.ok || r.clips.length !== 1) throw new Error(`record-only failed: ${r.errors.join('; ')}`);
    rmSync(out, { recursive: true, force: true });
  },
  motion: async () => {
    const out = path.join(work, `m${n++}`);
    const r = await replay({ topology: motionTopo, params: { rtspUrl: 'rtsp://bench.invalid/x' }, input: clip, output: out });
    if (!r.ok || r.clips.length === 0) throw new Error(`motion failed: ${r.errors.join('; ')}`);
    rmSync(out, { recursive: true, force: true });
  },
};
const which = values.which === 'both' ? ['record', 'motion'] : [values.which!];
for (const w of which) await runs[w]!(); // warm-up
const rows: Record<string, { self: number[]; children: number[]; wall: number[] }> = {};
for (let i = 0; i < Number(values.runs); i++) {
  for (const w of which) {
    const s = await measureCpu(runs[w]!);
    const r = (rows[w] ??= { self: [], children: [], wall: [] });
    r.self.push(s.self); r.children.push(s.children); r.wall.push(s.wall);
  }
}
for (const [w, r] of Object.entries(rows)) {
  console.log(`${w}: self ${median(r.self).toFixed(3)} s [${r.self.map((x) => x.toFixed(2)).join(' ')}]  ffmpeg ${median(r.children).toFixed(3)} s  wall ${median(r.wall).toFixed(2)} s`);
}
rmSync(work, { recursive: true, force: true });
