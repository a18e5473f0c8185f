// HTTP extension path: CPU per camera at 1, 5 and 15 requests/s, next to bare ffmpeg producing the
// same JPEGs, measured in the same run.
//
//   node --import tsx bench/extension.ts [--rounds 3] [--quick] [--json]
//
// Ours: `lva-edge replay` of a 30 s 1280x720 25 fps H.264 clip (2 Mbit/s) through an HTTP extension
// topology (JPEG q90 Pad 416x416, maximumSamplesPerSecond = R) whose ffmpeg stream-copies the camera
// and encodes the JPEGs in one process; the extension answers at once from a separate process (its
// CPU is not ours and is excluded: it is reaped only after the measurements).
// Baseline: one bare ffmpeg decoding the same clip and encoding the same JPEGs (fps=R, same scale,
// pad and quality) to /dev/null. CPU per camera = CPU seconds ÷ seconds of video, in % of one core.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { replay } from '../src/replay.js';
import { makeSyntheticCamera } from '../src/util/synthetic-camera.js';
import { findFfmpeg } from '../src/util/executables.js';
import { jpegQscale } from '../src/media/ffmpeg-args.js';
import { measureCpu, median } from './cpu.js';
import { printReport, row, type BenchRow } from './report.js';

const { values } = parseArgs({ options: {
  rounds: { type: 'string' }, json: { type: 'boolean', default: false }, quick: { type: 'boolean', default: false },
} });
const QUICK = values.quick;
const ROUNDS = Number(values.rounds ?? (QUICK ? 1 : 3));
const SECONDS = QUICK ? 4 : 30;
const RATES = [1, 5, 15];
const QUALITY = 90;
const work = mkdtempSync(path.join(os.tmpdir(), 'lva-bench-ext-'));
const clip = path.join(work, 'camera.mp4');
await makeSyntheticCamera({ seconds: SECONDS, fps: 25, size: '1280x720', motion: [[2, 4]], bitrate: '2M', noise: 4 }, clip);

// The extension: a separate node process answering 204 at once.
const server = spawn(process.execPath, ['-e', `
  const http = require('node:http');
  const s = http.createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(204).end()); });
  s.listen(0, '127.0.0.1', () => console.log(s.address().port));
`], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise<number>((resolve, reject) => {
  server.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
  server.once('exit', () => reject(new Error('extension server exited')));
});

const topology = (rate: number) => ({
  '@apiVersion': '2.0', name: `Ext${rate}`,
  properties: {
    sources: [{ '@type': '#Microsoft.Media.MediaGraphRtspSource', name: 'rtspSource', endpoint: { '@type': '#Microsoft.Media.MediaGraphUnsecuredEndpoint', url: 'rtsp://bench.invalid/x' } }],
    processors: [{
      '@type': '#Microsoft.Media.MediaGraphHttpExtension', name: 'ext',
      endpoint: { '@type': '#Microsoft.Media.MediaGraphUnsecuredEndpoint', url: `http://127.0.0.1:${port}/score` },
      image: { scale: { mode: 'Pad', width: '416', height: '416' }, format: { '@type': '#Microsoft.Media.MediaGraphImageFormatJpeg', quality: String(QUALITY) } },
      samplingOptions: { maximumSamplesPerSecond: String(rate) },
      inputs: [{ nodeName: 'rtspSource' }],
    }],
    sinks: [{ '@type': '#Microsoft.Media.MediaGraphIoTHubMessageSink', name: 'hub', hubOutputName: 'inferences', inputs: [{ nodeName: 'ext' }] }],
  },
});

function ffmpeg(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(findFfmpeg(), ['-nostdin', '-hide_banner', '-loglevel', 'error', ...args], { stdio: 'ignore' });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}`))));
  });
}
const bare = (rate: number) => () => ffmpeg(['-threads', '1', '-i', clip,
  '-vf', `fps=${rate},scale=416:416:force_original_aspect_ratio=decrease,setsar=1,format=yuvj420p,pad=416:416:(ow-iw)/2:(oh-ih)/2:color=black`,
  '-c:v', 'mjpeg', '-q:v', String(jpegQscale(QUALITY)), '-f', 'image2pipe', '-y', '/dev/null']);
let n = 0;
const ours = (rate: number) => async () => {
  const out = path.join(work, `o${n++}`);
  const r = await replay({ topology: topology(rate), input: clip, output: out });
  if (!r.ok) throw new Error(`replay failed: ${r.errors.join('; ')}`);
  rmSync(out, { recursive: true, force: true });
};

await ours(5)(); // warm-up (JIT, page cache)
const rows: BenchRow[] = [];
const notes: string[] = [];
for (const rate of RATES) {
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    b.push((await measureCpu(bare(rate))).total);
    a.push((await measureCpu(ours(rate))).total);
  }
  const pct = (cpu: number) => (100 * cpu) / SECONDS;
  rows.push(row({
    measure: `CPU per camera at ${rate} request${rate === 1 ? '' : 's'}/s`, ours: pct(median(a)), unit: '% of a core',
    baseline: 'bare ffmpeg decoding + encoding the same JPEGs', baselineValue: pct(median(b)), goal: { on: 'ratio', max: 1.5 },
  }));
}
server.kill('SIGTERM');
await new Promise((r) => server.once('exit', r));
rmSync(work, { recursive: true, force: true });
notes.push(`${SECONDS} s 1280x720 25 fps H.264 2 Mbit/s clip, JPEG q${QUALITY} Pad 416x416, median of ${ROUNDS} round(s); ours includes the stream copy of every sample (the recording path) in the same ffmpeg.`);
notes.push('Replay (not real time): the CPU to process the clip divided by its duration is what one live camera costs.');
printReport({ bench: 'extension', title: 'HTTP extension: CPU per camera vs bare ffmpeg making the same JPEGs', rows, notes }, values.json);
