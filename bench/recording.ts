// Recording-path benchmarks, every figure next to a baseline measured in the same run:
//
//   node --import tsx bench/recording.ts [--rounds 3] [--cameras 3] [--skip-live] [--quick] [--json]
//
// --quick (smoke test): a 12 s clip, one round, one live camera for a few seconds. --json: the report's
// JSON as the last stdout line (bench/report.ts).
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
import { printReport, row, type BenchRow } from './report.js';

const { values } = parseArgs({ options: {
  rounds: { type: 'string' }, cameras: { type: 'string' }, json: { type: 'boolean', default: false },
  'skip-live': { type: 'boolean', default: false }, quick: { type: 'boolean', default: false },
} });
const QUICK = values.quick;
const ROUNDS = Number(values.rounds ?? (QUICK ? 1 : 3));
const CAMERAS = Number(values.cameras ?? (QUICK ? 1 : 3));
const CLIP_SECONDS = QUICK ? 12 : 60;
const SETTLE_MS = QUICK ? 12_000 : 30_000;
const work = mkdtempSync(path.join(os.tmpdir(), 'lva-bench-rec-'));
const clip = path.join(work, `camera-${CLIP_SECONDS}s-720p25.mp4`);
// Sensor noise makes the encoder really spend 4 Mbit/s (a static synthetic scene would need ~0.3).
await makeSyntheticCamera({
  seconds: CLIP_SECONDS, fps: 25, size: '1280x720', motion: QUICK ? [[3, 6]] : [[12, 18], [40, 45]], bitrate: '4M', noise: 6,
}, clip);
const { statSync } = await import('node:fs');
const clipMbps = (statSync(clip).size * 8) / CLIP_SECONDS / 1e6;



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
const raw: Record<string, number[]> = { motion: [], decode: [], record: [], copy: [] };
for (let i = 0; i < ROUNDS; i++) {
  raw.decode!.push((await measureCpu(decodeBaseline)).total);
  raw.motion!.push((await measureCpu(motionRun)).total);
  raw.copy!.push((await measureCpu(copyBaseline)).total);
  raw.record!.push((await measureCpu(recordRun)).total);
}
const med = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, median(v)])) as Record<string, number>;
const results: Record<string, unknown> = {
  clip: `${CLIP_SECONDS} s 1280x720 25 fps H.264 ${clipMbps.toFixed(1)} Mbit/s, GOP 2 s`,
  motionReplayCpuSeconds: med.motion, bareDecodeCpuSeconds: med.decode, motionRatio: med.motion! / med.decode!,
  recordOnlyCpuPerVideoSecond: med.record! / CLIP_SECONDS, bareCopyCpuPerVideoSecond: med.copy! / CLIP_SECONDS, recordRatio: med.record! / med.copy!,
  rounds: ROUNDS,
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
  await new Promise((r) => setTimeout(r, SETTLE_MS)); // fill the 10 s pre-roll and reach steady state
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
  await new Promise((r) => setTimeout(r, QUICK ? 4000 : 10_000));
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

const rows: BenchRow[] = [
  row({ measure: 'replay evr-motion-files, CPU', ours: med.motion!, unit: 's', baseline: 'bare ffmpeg decode → 320×180 gray', baselineValue: med.decode!, goal: { on: 'ratio', max: 1.2 } }),
  row({ measure: 'record-only (gate + file sink), CPU per video second', ours: med.record! / CLIP_SECONDS, unit: 's/s', baseline: 'bare ffmpeg -c copy remux', baselineValue: med.copy! / CLIP_SECONDS, goal: { on: 'ratio', max: 1.5 } }),
];
if (results.rssPerCameraMiB !== undefined) {
  rows.push(row({
    measure: 'steady RSS per live camera, 10 s pre-roll, 4 Mbit/s', ours: results.rssPerCameraMiB as number, unit: 'MiB',
    baseline: 'bare ffmpeg -c copy RTSP pull', baselineValue: results.bareFfmpegPullRssMiB as number, goal: { on: 'ours', max: 80 },
  }));
}
printReport({
  bench: 'recording',
  title: `Recording path (${results.clip}; median of ${ROUNDS} interleaved round${ROUNDS === 1 ? '' : 's'})`,
  rows,
  notes: [
    ...(results.rssPerCameraMiB !== undefined
      ? [`${CAMERAS} live camera(s) over RTSP; ffmpeg child RSS per camera ${(results.ffmpegRssPerCameraMiB as number).toFixed(1)} MiB, Node process ${(results.nodeRssTotalMiB as number).toFixed(1)} MiB in total.`]
      : ['live cameras skipped (--skip-live)']),
    `raw CPU seconds per round: ${JSON.stringify(rawRounded())}`,
  ],
}, values.json);

function rawRounded(): Record<string, number[]> {
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v.map((x) => Number(x.toFixed(3)))]));
}
