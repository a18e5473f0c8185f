/**
 * Motion detection accuracy on the labelled clip set (bench/motion-clips.ts): lva-edge at Low, Medium
 * and High next to the Motion daemon (Debian `motion`) on the same clips, in the same run.
 *
 *   node --import tsx bench/motion-accuracy.ts [--quick] [--json] [--skip-motion] [--clips a,b] [--dir DIR]
 *
 * lva-edge runs through the real product path: `replay()` of a topology with one RTSP source feeding
 * three MotionDetectionProcessors (Low/Medium/High, eventAggregationWindow PT0S = one event per motion
 * frame) into IoT Hub message sinks — so ffmpeg decodes 320×180 gray at the RTSP source's analysis rate,
 * exactly like a live camera, and the events are the Analytics.Inference messages a user receives.
 *
 * The Motion daemon (4.5, `motion -n`) watches each clip as a live MJPEG camera (`netcam_url http://…`,
 * served from here frame by frame at the clip's rate, so the media time of every wall-clock instant is
 * known exactly — with `file://` Motion's start-up delay is unknown and varies); an `on_motion_detected`
 * hook appends the wall time of every motion frame. Settings: Motion's defaults (threshold 1500 changed pixels, noise_tune on,
 * lightswitch_percent 0, minimum_motion_frames 1, despeckle off), only the frame size and rate set to the
 * clip's, and picture/movie output off. See MOTION_CONF below.
 *
 * Metrics per clip and detector (tolerance ±0.5 s, on media time):
 * - onset: first motion report at or after (start − 0.5 s) minus the interval start; "miss" if none
 *   before the interval ends.
 * - max gap: longest stretch inside a truth interval without a report (from its start to its end).
 * - recall: share of truth-motion instants (every 0.1 s) with a report within ±0.5 s.
 * - precision: share of reports within 0.5 s of a truth interval.
 * - false events/h: reports grouped into events (a gap > 2 s ends one); an event that does not come
 *   within 0.5 s of any truth interval is false. Per hour of clip.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { replay } from '../src/replay.js';
import { findFfmpeg } from '../src/util/executables.js';
import { MOTION_FRAME } from '../src/nodes/processors/motion-detector.js';
import { printReport, row, type BenchRow } from './report.js';
import { defaultClipDir, ensureClips, fullClipSet, quickClipSet, type Clip } from './motion-clips.js';

export const SENSITIVITIES = ['Low', 'Medium', 'High'] as const;
export type Sensitivity = (typeof SENSITIVITIES)[number];
const TOLERANCE_S = 0.5;
const EVENT_GAP_S = 2;
const START_MS = Date.parse('2020-01-01T00:00:00Z');
/** Static lead-in shown to the Motion daemon before each clip (see runMotionDaemon). */
const MOTION_LEAD_IN_S = 6;

export interface Metrics {
  reports: number;
  onsets: Array<number | null>;
  maxGaps: Array<number | null>;
  recall: number | null;
  precision: number | null;
  falseEvents: number;
  falseEventsPerHour: number;
}

/** Pure scoring of motion report times (seconds) against truth intervals. */
export function score(reports: number[], truth: Array<[number, number]>, seconds: number): Metrics {
  const r = [...reports].sort((a, b) => a - b);
  const near = (t: number) => truth.some(([a, b]) => t >= a - TOLERANCE_S && t <= b + TOLERANCE_S);
  const onsets: Array<number | null> = [];
  const maxGaps: Array<number | null> = [];
  let hit = 0, total = 0;
  for (const [a, b] of truth) {
    const first = r.find((t) => t >= a - TOLERANCE_S && t <= b);
    onsets.push(first === undefined ? null : Math.max(0, first - a));
    if (first === undefined) maxGaps.push(null);
    else {
      let prev = a, gap = 0;
      for (const t of r) {
        if (t < a || t > b) continue;
        gap = Math.max(gap, t - prev);
        prev = t;
      }
      maxGaps.push(Math.max(gap, b - prev));
    }
    for (let t = a; t <= b + 1e-9; t += 0.1) {
      total++;
      if (r.some((x) => Math.abs(x - t) <= TOLERANCE_S)) hit++;
    }
  }
  // Events: runs of reports with gaps ≤ EVENT_GAP_S; false when no report of the run is near truth.
  let falseEvents = 0;
  for (let i = 0; i < r.length;) {
    let j = i, touches = near(r[i]!);
    while (j + 1 < r.length && r[j + 1]! - r[j]! <= EVENT_GAP_S) { j++; if (near(r[j]!)) touches = true; }
    if (!touches) falseEvents++;
    i = j + 1;
  }
  const good = r.filter(near).length;
  return {
    reports: r.length, onsets, maxGaps,
    recall: total > 0 ? hit / total : null,
    precision: r.length > 0 ? good / r.length : null,
    falseEvents, falseEventsPerHour: (falseEvents * 3600) / seconds,
  };
}

// ---- lva-edge -----------------------------------------------------------------------------------

function benchTopology(): unknown {
  return {
    '@apiVersion': '2.0', name: 'MotionAccuracy',
    properties: {
      parameters: [{ name: 'rtspUrl', type: 'String' }],
      sources: [{ '@type': '#Microsoft.Media.MediaGraphRtspSource', name: 'cam', endpoint: { '@type': '#Microsoft.Media.MediaGraphUnsecuredEndpoint', url: '${rtspUrl}' } }],
      processors: SENSITIVITIES.map((s) => ({
        '@type': '#Microsoft.Media.MediaGraphMotionDetectionProcessor', name: `md${s}`, sensitivity: s, outputMotionRegion: true,
        eventAggregationWindow: 'PT0S',
        inputs: [{ nodeName: 'cam', outputSelectors: [{ property: 'mediaType', operator: 'is', value: 'video' }] }],
      })),
      sinks: SENSITIVITIES.map((s) => ({
        '@type': '#Microsoft.Media.MediaGraphIoTHubMessageSink', name: `hub${s}`, hubOutputName: `motion${s}`, inputs: [{ nodeName: `md${s}` }],
      })),
    },
  };
}

/** Motion report times (s of media time) per sensitivity, through `replay`. */
export async function runLvaEdge(clip: Clip, work: string): Promise<Record<Sensitivity, number[]>> {
  const out: Record<Sensitivity, number[]> = { Low: [], Medium: [], High: [] };
  const dir = mkdtempSync(path.join(work, 'lva-'));
  const r = await replay({
    topology: benchTopology(), input: clip.file, output: dir, startTime: new Date(START_MS).toISOString(),
    onEvent: (e) => {
      if (!e.applicationProperties.eventType.endsWith('Analytics.Inference')) return;
      const s = /processors\/md(\w+)$/.exec(e.applicationProperties.subject)?.[1] as Sensitivity | undefined;
      if (!s || !(s in out)) return;
      out[s].push((Number(e.body.timestamp) - START_MS * 90) / 90_000);
    },
  });
  rmSync(dir, { recursive: true, force: true });
  if (!r.ok) throw new Error(`replay of ${clip.spec.name} failed: ${r.errors.join('; ')}`);
  return out;
}

// ---- Motion daemon ------------------------------------------------------------------------------

export function motionInstalled(): boolean {
  return existsSync('/usr/bin/motion');
}

/** The Motion settings used (defaults unless listed). */
export const MOTION_CONF = (clip: Clip, dir: string, hook: string, url: string) => `
daemon off
setup_mode off
log_level 4
log_file ${dir}/motion.log
target_dir ${dir}
netcam_url ${url}
width ${clip.spec.width}
height ${clip.spec.height}
framerate ${clip.spec.fps}
picture_output off
movie_output off
webcontrol_port 0
stream_port 0
on_motion_detected ${hook} motion
`;

/** The clip as multipart JPEG parts (ffmpeg's mpjpeg muxer), one per frame. */
async function mjpegParts(clip: Clip, work: string): Promise<Buffer[]> {
  const file = path.join(work, 'clip.mjpeg');
  await new Promise<void>((resolve, reject) => {
    const p = spawn(findFfmpeg(), ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', '-i', clip.file, '-an', '-c:v', 'mjpeg', '-q:v', '3', '-f', 'mpjpeg', file], { stdio: 'ignore' });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`mjpeg transcode of ${clip.spec.name} failed (${code})`))));
  });
  const data = readFileSync(file);
  rmSync(file, { force: true });
  const parts: Buffer[] = [];
  const boundary = Buffer.from('--ffmpeg\r\n');
  for (let at = data.indexOf(boundary); at >= 0;) {
    const next = data.indexOf(boundary, at + boundary.length);
    parts.push(data.subarray(at, next < 0 ? data.length : next));
    at = next;
  }
  return parts;
}

/**
 * Motion report times (s of media time) from the Motion daemon watching the clip as a live MJPEG
 * camera: a local HTTP server sends frame k at t0 + k/fps (t0 = when Motion connected), and every
 * `on_motion_detected` hook line (wall time) becomes media time by subtracting t0. So Motion's own
 * processing delay counts in its onset, as it would on a live camera.
 */
export async function runMotionDaemon(clip: Clip, work: string): Promise<number[]> {
  const dir = mkdtempSync(path.join(work, 'motion-'));
  const parts = await mjpegParts(clip, dir);
  const log = path.join(dir, 'hook.log');
  const hook = path.join(dir, 'hook.sh');
  writeFileSync(hook, `#!/bin/sh\necho "$1 $(date +%s.%N)" >> ${log}\n`, { mode: 0o700 });
  let t0: number | undefined;
  let finished: () => void = () => {};
  const played = new Promise<void>((resolve) => (finished = resolve));
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'multipart/x-mixed-replace;boundary=ffmpeg', 'Cache-Control': 'no-cache', Connection: 'close' });
    // Motion is blind for its first seconds (stream probe, start-up frames): the camera "was running"
    // for LEAD_IN_S before the clip, showing its first frame, and media time 0 is the clip's start.
    const lead = Math.round(MOTION_LEAD_IN_S * clip.spec.fps);
    const start = performance.now();
    t0 = Date.now() / 1000 + MOTION_LEAD_IN_S; // a reconnect restarts the clip and the clock
    let k = 0;
    let timer: NodeJS.Timeout | undefined;
    const total = lead + parts.length;
    const send = () => {
      // Catch up on time, never ahead of it: frame k is due at start + k / fps.
      while (k < total && performance.now() - start >= (k * 1000) / clip.spec.fps) res.write(parts[Math.max(0, k++ - lead)]!);
      if (k >= total) { res.end(); finished(); return; }
      timer = setTimeout(send, Math.max(1, start + (k * 1000) / clip.spec.fps - performance.now()));
    };
    req.on('close', () => clearTimeout(timer));
    send();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  writeFileSync(path.join(dir, 'motion.conf'), MOTION_CONF(clip, dir, hook, `http://127.0.0.1:${port}/stream.mjpg`));
  const child = spawn('/usr/bin/motion', ['-n', '-c', path.join(dir, 'motion.conf')], { stdio: 'ignore', detached: true });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const timeout = new Promise<void>((resolve) => setTimeout(resolve, (clip.spec.seconds + MOTION_LEAD_IN_S) * 1000 + 20_000).unref());
  try {
    await Promise.race([played, timeout, exited]);
    await new Promise((r) => setTimeout(r, 300)); // hooks of the last frames
  } finally {
    try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* gone */ }
    const t = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, 5000);
    await exited;
    clearTimeout(t);
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  const lines = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [];
  rmSync(dir, { recursive: true, force: true });
  if (t0 === undefined) throw new Error(`motion never connected to the MJPEG camera of ${clip.spec.name}`);
  return lines
    .filter((l) => l.startsWith('motion '))
    .map((l) => Number(l.split(' ')[1]) - t0!)
    .filter((t) => t >= 0 && t < clip.spec.seconds);
}

// ---- report -----------------------------------------------------------------------------------

interface ClipResult {
  clip: Clip;
  lva: Record<Sensitivity, Metrics>;
  motion?: Metrics;
}

const f1 = (x: number | null | undefined, d = 2) => (x === null || x === undefined ? '—' : x.toFixed(d));
const onsetText = (m: Metrics) => (m.onsets.length === 0 ? '' : m.onsets.map((o) => (o === null ? 'miss' : `${o.toFixed(2)} s`)).join(','));
const gapText = (m: Metrics) => (m.maxGaps.length === 0 ? '' : m.maxGaps.map((g) => (g === null ? '—' : `${g.toFixed(1)} s`)).join(','));

function caught(m: Metrics): boolean {
  return m.onsets.length > 0 && m.onsets.every((o, i) => o !== null && o <= 1.0 && (m.maxGaps[i] ?? Infinity) <= 2.0);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    quick: { type: 'boolean', default: false }, json: { type: 'boolean', default: false },
    'skip-motion': { type: 'boolean', default: false }, clips: { type: 'string' }, dir: { type: 'string' },
  } });
  let specs = values.quick ? quickClipSet() : fullClipSet();
  if (values.clips) {
    const want = new Set(values.clips.split(','));
    specs = specs.filter((s) => want.has(s.name));
  }
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const clips = await ensureClips(specs, values.dir ?? defaultClipDir(), log);
  const withMotion = !values['skip-motion'] && motionInstalled();
  const work = mkdtempSync(path.join(os.tmpdir(), 'lva-motion-acc-'));
  mkdirSync(work, { recursive: true });
  const results: ClipResult[] = [];
  try {
    for (const clip of clips) {
      const times = await runLvaEdge(clip, work);
      const lva = Object.fromEntries(SENSITIVITIES.map((s) => [s, score(times[s], clip.truth.motion, clip.spec.seconds)])) as Record<Sensitivity, Metrics>;
      const res: ClipResult = { clip, lva };
      if (withMotion) res.motion = score(await runMotionDaemon(clip, work), clip.truth.motion, clip.spec.seconds);
      results.push(res);
      log(`  ${clip.spec.name}: ${SENSITIVITIES.map((s) => `${s} ${lva[s].reports}`).join(' ')}${res.motion ? ` motion ${res.motion.reports}` : ''} reports`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  // ---- goals ----
  const movingAtMedium = results.filter((r) => r.clip.truth.expectedFrom === 'Medium' || r.clip.truth.expectedFrom === 'Low');
  const still = results.filter((r) => r.clip.truth.motion.length === 0);
  const highTarget = results.filter((r) => r.clip.spec.object?.size === 32 && r.clip.spec.object.speed === 50 && r.clip.spec.object.contrast >= 50 && r.clip.spec.fps === 25);
  const count = (rs: ClipResult[], pick: (r: ClipResult) => Metrics | undefined, ok: (m: Metrics) => boolean) =>
    rs.filter((r) => { const m = pick(r); return m !== undefined && ok(m); }).length;
  const falseOn = (rs: ClipResult[], pick: (r: ClipResult) => Metrics | undefined) => rs.filter((r) => (pick(r)?.reports ?? 0) > 0).length;
  const mean = (xs: Array<number | null>) => { const v = xs.filter((x): x is number => x !== null); return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null; };
  const motionPick = (r: ClipResult) => r.motion;
  const medPick = (r: ClipResult) => r.lva.Medium;

  const rows: BenchRow[] = [];
  const MOTION_LABEL = 'Motion daemon 4.5 (defaults)';
  const mCaught = count(movingAtMedium, medPick, caught);
  rows.push(row({
    measure: `Medium: moving-object clips caught (onset ≤ 1.0 s, no gap > 2 s), of ${movingAtMedium.length}`,
    ours: mCaught, unit: 'clips', baseline: MOTION_LABEL, baselineValue: withMotion ? count(movingAtMedium, motionPick, caught) : null,
    goal: { on: 'ours', min: movingAtMedium.length },
  }));
  rows.push(row({
    measure: `Medium: noise-only / lighting-change clips with any motion report, of ${still.length}`,
    ours: falseOn(still, medPick), unit: 'clips', baseline: MOTION_LABEL, baselineValue: withMotion ? falseOn(still, motionPick) : null,
    goal: { on: 'ours', max: 0 },
  }));
  if (highTarget.length > 0) {
    rows.push(row({
      measure: 'High: 32×32 px object at 50 px/s in 720p25 caught (onset ≤ 1.0 s, no gap > 2 s)',
      ours: count(highTarget, (r) => r.lva.High, caught), unit: 'clips', baseline: MOTION_LABEL,
      baselineValue: withMotion ? count(highTarget, motionPick, caught) : null, goal: { on: 'ours', min: highTarget.length },
    }));
  }
  const moving = results.filter((r) => r.clip.truth.motion.length > 0);
  const hours = results.reduce((a, r) => a + r.clip.spec.seconds, 0) / 3600;
  const summary = (pick: (r: ClipResult) => Metrics) => ({
    recall: mean(moving.map((r) => pick(r).recall)),
    precision: mean(results.map((r) => pick(r).precision)),
    onset: mean(moving.filter((r) => r.clip.truth.expectedFrom).flatMap((r) => pick(r).onsets)),
    falsePerHour: results.reduce((a, r) => a + pick(r).falseEvents, 0) / hours,
  });
  const theirs = withMotion ? summary((r) => r.motion!) : null;
  for (const s of SENSITIVITIES) {
    const ours = summary((r) => r.lva[s]);
    if (ours.recall !== null) rows.push(row({ measure: `${s}: mean frame recall (±0.5 s), moving-object clips`, ours: ours.recall, unit: 'fraction', baseline: MOTION_LABEL, baselineValue: theirs?.recall ?? null }));
    if (ours.precision !== null) rows.push(row({ measure: `${s}: mean frame precision (±0.5 s), clips with reports`, ours: ours.precision, unit: 'fraction', baseline: MOTION_LABEL, baselineValue: theirs?.precision ?? null }));
    if (ours.onset !== null) rows.push(row({ measure: `${s}: mean onset latency of the detected intervals, labelled clips`, ours: ours.onset, unit: 's', baseline: MOTION_LABEL, baselineValue: theirs?.onset ?? null }));
    rows.push(row({
      measure: `${s}: false events per hour, all clips`, ours: ours.falsePerHour, unit: '1/h', baseline: MOTION_LABEL, baselineValue: theirs?.falsePerHour ?? null,
      goal: s === 'Medium' ? { on: 'ours', max: 0 } : undefined,
    }));
  }

  const notes = [
    `${results.length} clips (${values.quick ? 'quick set' : 'full set'}), 1280x720 H.264; lva-edge analyses ${MOTION_FRAME.width}x${MOTION_FRAME.height} gray at ≤ ${MOTION_FRAME.fps} fps through replay (real decode path)`,
    withMotion
      ? `Motion daemon 4.5 with its default detection settings (threshold 1500, noise_tune on, lightswitch_percent 0, minimum_motion_frames 1), live MJPEG input at the clip frame rate after a ${MOTION_LEAD_IN_S} s static lead-in`
      : 'Motion daemon not run (not installed or --skip-motion)',
    'onset = first report at or after (start − 0.5 s) minus start; a clip is "caught" when every interval has onset ≤ 1.0 s and no gap > 2 s; false event = a run of reports (gaps ≤ 2 s) none of which is within 0.5 s of a truth interval',
  ];

  // Per-clip table (human-readable, also with --json: the JSON report is the last line).
  const table: string[] = ['| clip | fps | truth | detector | onset | max gap | recall | precision | false ev/h | reports |', '|---|---|---|---|---|---|---|---|---|---|'];
  for (const r of results) {
    const dets: Array<[string, Metrics]> = SENSITIVITIES.map((s) => [`lva-edge ${s}`, r.lva[s]] as [string, Metrics]);
    if (r.motion) dets.push(['Motion', r.motion]);
    for (const [name, m] of dets) {
      table.push(`| ${r.clip.spec.name} | ${r.clip.spec.fps} | ${JSON.stringify(r.clip.truth.motion)} | ${name} | ${onsetText(m)} | ${gapText(m)} | ${f1(m.recall)} | ${f1(m.precision)} | ${m.falseEventsPerHour.toFixed(0)} | ${m.reports} |`);
    }
  }
  process.stdout.write(`${table.join('\n')}\n\n`);
  // The JSON line also carries the per-clip metrics (an extra key; the report contract's fields come first).
  const report = {
    bench: 'motion-accuracy', title: 'Motion detection accuracy on the labelled clip set: lva-edge Low/Medium/High vs the Motion daemon, same clips, same run', rows, notes,
    clips: results.map((r) => ({ clip: r.clip.spec.name, truth: r.clip.truth.motion, lva: r.lva, motion: r.motion ?? null })),
  };
  printReport(report, values.json);
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  await main();
}
