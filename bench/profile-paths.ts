// Profiling helper for the recording and motion paths: runs `replay` of the bench clip repeatedly and
// prints self (Node) and child (ffmpeg) CPU per run, so a change in this process's cost is visible
// apart from ffmpeg's.
//
//   node --import tsx bench/profile-paths.ts [--runs 5] [--which record|motion|both] [--clip /tmp/clip.mp4]
//   node --cpu-prof --import tsx bench/profile-paths.ts --which record
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { replay } from '../src/replay.js';
import { makeSyntheticCamera } from '../src/util/synthetic-camera.js';
import { measureCpu, median } from './cpu.js';

const { values } = parseArgs({ options: {
  runs: { type: 'string', default: '5' }, which: { type: 'string', default: 'both' },
  clip: { type: 'string', default: path.join(os.tmpdir(), 'lva-bench-camera-60s-720p25.mp4') },
} });
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const clip = values.clip!;
if (!existsSync(clip)) {
  await makeSyntheticCamera({ seconds: 60, fps: 25, size: '1280x720', motion: [[12, 18], [40, 45]], bitrate: '4M' }, clip);
}
const work = mkdtempSync(path.join(os.tmpdir(), 'lva-prof-'));
const shared = path.resolve(root, '../shared/lva-samples/topologies/2.0/evr-motion-files.topology.json');
const motionTopo = JSON.parse(readFileSync(existsSync(shared) ? shared : path.join(root, 'examples/evr-motion-files.topology.json'), 'utf8'));
const recordOnly = {
  '@apiVersion': '2.0', name: 'RecordOnly',
  properties: {
    sources: [
      { '@type': '#Microsoft.Media.MediaGraphRtspSource', name: 'cam', endpoint: { '@type': '#Microsoft.Media.MediaGraphUnsecuredEndpoint', url: 'rtsp://bench.invalid/x' } },
      { '@type': '#Microsoft.Media.MediaGraphIoTHubMessageSource', name: 'trigger', hubInputName: 'go' },
    ],
    processors: [{
      '@type': '#Microsoft.Media.MediaGraphSignalGateProcessor', name: 'gate',
      activationEvaluationWindow: 'PT0S', activationSignalOffset: 'PT0S', minimumActivationTime: 'PT1H', maximumActivationTime: 'PT1H',
      inputs: [{ nodeName: 'trigger' }, { nodeName: 'cam', outputSelectors: [{ property: 'mediaType', operator: 'is', value: 'video' }] }],
    }],
    sinks: [{
      '@type': '#Microsoft.Media.MediaGraphFileSink', name: 'files', baseDirectoryPath: '/clips', fileNamePattern: 'rec-${System.DateTime}', maximumSizeMiB: '10240',
      inputs: [{ nodeName: 'gate' }],
    }],
  },
};
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
