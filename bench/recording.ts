// Recording-path benchmarks, every figure next to a baseline measured in the same run:
//
//   node --import tsx bench/recording.ts [--rounds 3] [--cameras 3] [--json]
//
// 1. Motion-triggered recording: CPU of `lva-edge replay` of a 60 s 720p25 H.264 clip (4 Mbit/s, two
//    motion bursts) through evr-motion-files ÷ CPU of bare ffmpeg decoding the same clip to 320×180
//    gray with the same decoder options. Goal ≤ 1.2.
// 2. Record-only path (signal gate + file sink, no decode; the gate held open by one hub message for
//    the whole clip): CPU per second of video ÷ bare `ffmpeg -c copy` remux of the clip to MP4. Goal ≤ 1.5.
// 3. Steady RSS per live camera: N cameras (looping the same 4 Mbit/s clip over RTSP) each with a 10 s
//    pre-roll gate, measured as (RSS of this process + its ffmpeg children) − RSS before, ÷ N.
//    Goal ≤ 80 MiB. Baseline: RSS of one bare `ffmpeg -c copy` RTSP pull.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { replay } from '../src/replay.js';
import { makeSyntheticCamera } from '../src/util/synthetic-camera.js';
import { findFfmpeg } from '../src/util/executables.js';
import { measureCpu, median, rssOfPid } from './cpu.js';
import { evrMotionFiles, recordOnly } from './topologies.js';

const { values } = parseArgs({ options: {
  rounds: { type: 'string', default: '3' }, cameras: { type: 'string', default: '3' }, json: { type: 'boolean', default: false },
  'skip-live': { type: 'boolean', default: false },
} });
const ROUNDS = Number(values.rounds);
const CAMERAS = Number(values.cameras);
const work = mkdtempSync(path.join(os.tmpdir(), 'lva-bench-rec-'));
const clip = path.join(work, 'camera-60s-720p25.mp4');
// Sensor noise makes the encoder really spend 4 Mbit/s (a static synthetic scene would need ~0.3).
await makeSyntheticCamera({ seconds: 60, fps: 25, size: '1280x720', motion: [[12, 18], [40, 45]], bitrate: '4M', noise: 6 }, clip);
const { statSync } = await import('node:fs');
const clipMbps = (statSync(clip).size * 8) / 60 / 1e6;



function ffmpeg(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(findFfmpeg(), ['-nostdin', '-hide_banner', '-loglevel', 'error', ...args], { stdio: 'ignore' });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}`))));
  });
}

const decodeBaseline = () => ffmpeg(['-threads', '1', '-skip_loop_filter', 'all', '-flags2', 'fast', '-i', clip,
  '-vf', 'scale=320:180:flags=fast_bilinear,format=gray', '-f', 'rawvideo', '-y', '/dev/null']);
const copyBaseline = () => ffmpeg(['-i', clip, '-map', '0:v:0', '-c', 'copy', '-f', 'mp4', '-y', path.join(work, 'copy.mp4')]);
let n = 0;
const motionRun = async () => {
  const out = path.join(work, `m${n++}`);
  const r = await replay({ topology: evrMotionFiles(), params: { rtspUrl: 'rtsp://bench.invalid/x' }, input: clip, output: out });
  if (!r.ok || r.clips.length === 0) throw new Error(`motion replay failed: ${r.errors.join('; ')} (${r.clips.length} clips)`);
  rmSync(out, { recursive: true, force: true });
};
const recordRun = async () => {
  const out = path.join(work, `r${n++}`);
  const r = await replay({
    topology: recordOnly, input: clip, output: out,
    messages: [{ inputName: 'go', eventTime: '2020-01-01T00:00:00.000Z' }],
  });
  if (!r.ok || r.clips.length !== 1) throw new Error(`record-only replay failed: ${r.errors.join('; ')} (${r.clips.length} clips)`);
  rmSync(out, { recursive: true, force: true });
};

// Warm up (JIT, page cache), then interleave rounds so drift on a shared machine hits both sides.
await motionRun();
await recordRun();
const rows: Record<string, number[]> = { motion: [], decode: [], record: [], copy: [] };
for (let i = 0; i < ROUNDS; i++) {
  rows.decode!.push((await measureCpu(decodeBaseline)).total);
  rows.motion!.push((await measureCpu(motionRun)).total);
  rows.copy!.push((await measureCpu(copyBaseline)).total);
  rows.record!.push((await measureCpu(recordRun)).total);
}
const med = Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, median(v)])) as Record<string, number>;
const results: Record<string, unknown> = {
  clip: `60 s 1280x720 25 fps H.264 ${clipMbps.toFixed(1)} Mbit/s, GOP 2 s`,
  motionReplayCpuSeconds: med.motion, bareDecodeCpuSeconds: med.decode, motionRatio: med.motion! / med.decode!,
  recordOnlyCpuPerVideoSecond: med.record! / 60, bareCopyCpuPerVideoSecond: med.copy! / 60, recordRatio: med.record! / med.copy!,
  rounds: ROUNDS, raw: rows,
};

if (!values['skip-live']) {
  const { startRtspServer } = await import('../test/helpers/rtsp-server.js');
  const { startRecordingHarness } = await import('../test/helpers/recording.js');
  const ts = path.join(work, 'loop.ts');
  await ffmpeg(['-i', clip, '-c', 'copy', '-f', 'mpegts', '-y', ts]);
  const rtsp = await startRtspServer({ loopFile: ts });
  const h = await startRecordingHarness();
  const { liveFfmpegProcesses } = await import('../src/media/ffmpeg-process.js');
  const childRss = () => liveFfmpegProcesses().reduce((a, f) => a + (f.pid ? rssOfPid(f.pid) : 0), 0);
  await new Promise((r) => setTimeout(r, 2000));
  const before = process.memoryUsage().rss + childRss();
  const topo = structuredClone(recordOnly) as any;
  topo.name = 'PreRoll10';
  topo.properties.processors[0].activationSignalOffset = '-PT10S';
  topo.properties.processors[0].minimumActivationTime = 'PT5S';
  topo.properties.processors[0].maximumActivationTime = 'PT30S';
  topo.properties.sources[0].endpoint.url = '${rtspUrl}';
  topo.properties.parameters = [{ name: 'rtspUrl', type: 'String' }];
  await h.call('GraphTopologySet', topo);
  for (let i = 0; i < CAMERAS; i++) {
    await h.call('GraphInstanceSet', { name: `cam${i}`, properties: { topologyName: 'PreRoll10', parameters: [{ name: 'rtspUrl', value: rtsp.url('/loop') }] } });
    await h.call('GraphInstanceActivate', { name: `cam${i}` });
  }
  await new Promise((r) => setTimeout(r, 30_000)); // fill the 10 s pre-roll and reach steady state
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    samples.push(process.memoryUsage().rss + childRss());
    await new Promise((r) => setTimeout(r, 1000));
  }
  const after = median(samples);
  const nodeShare = process.memoryUsage().rss;
  const childShare = childRss() / CAMERAS;
  for (let i = 0; i < CAMERAS; i++) await h.call('GraphInstanceDeactivate', { name: `cam${i}` });
  // Baseline: one bare ffmpeg stream-copy pull of the same camera.
  const pull = spawn(findFfmpeg(), ['-nostdin', '-loglevel', 'error', '-rtsp_transport', 'tcp', '-i', rtsp.url('/loop'), '-c', 'copy', '-f', 'mp4', '-movflags', 'frag_keyframe+empty_moov', '-y', '/dev/null'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 10_000));
  const bareRss = rssOfPid(pull.pid!);
  pull.kill('SIGKILL');
  await h.close();
  await rtsp.stop();
  Object.assign(results, {
    liveCameras: CAMERAS, rssPerCameraMiB: (after - before) / CAMERAS / 2 ** 20,
    ffmpegRssPerCameraMiB: childShare / 2 ** 20, nodeRssTotalMiB: nodeShare / 2 ** 20,
    bareFfmpegPullRssMiB: bareRss / 2 ** 20,
  });
}
rmSync(work, { recursive: true, force: true });

if (values.json) {
  process.stdout.write(`${JSON.stringify(results)}\n`);
} else {
  const f = (x: unknown, d = 3) => (typeof x === 'number' ? x.toFixed(d) : String(x));
  process.stdout.write(`recording benchmarks (${results.clip}, median of ${ROUNDS} interleaved rounds)\n`);
  process.stdout.write(`| measure | lva-edge | baseline (same run) | ratio | goal |\n|---|---|---|---|---|\n`);
  process.stdout.write(`| replay evr-motion-files, CPU s | ${f(results.motionReplayCpuSeconds)} | bare ffmpeg decode → 320×180 gray ${f(results.bareDecodeCpuSeconds)} | ${f(results.motionRatio, 2)} | ≤ 1.2 |\n`);
  process.stdout.write(`| record-only (gate + file sink), CPU s per video s | ${f(results.recordOnlyCpuPerVideoSecond, 4)} | bare ffmpeg -c copy remux ${f(results.bareCopyCpuPerVideoSecond, 4)} | ${f(results.recordRatio, 2)} | ≤ 1.5 |\n`);
  if (results.rssPerCameraMiB !== undefined) {
    process.stdout.write(`| steady RSS per live camera, 10 s pre-roll, 4 Mbit/s (MiB) | ${f(results.rssPerCameraMiB, 1)} (ffmpeg child ${f(results.ffmpegRssPerCameraMiB, 1)}) | bare ffmpeg copy pull ${f(results.bareFfmpegPullRssMiB, 1)} | — | ≤ 80 |\n`);
  }
}
