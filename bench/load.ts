// Load bench (issue 8): a daemon with 50 topologies and 1000 instances stored, 8 of them live 720p
// cameras with motion-triggered recording (evr-motion-files), for 10 minutes.
//
//   node --import tsx bench/load.ts [--minutes 10] [--cameras 8] [--quick] [--json]
//
// --quick (smoke test): 1 minute, 2 cameras, 100 instances. --json: the report's JSON as the last stdout
// line (bench/report.ts).
//
// The cameras: one RTSP test server looping a 30 s 720p25 synthetic recording (2 Mbit/s, sensor noise)
// on /loop, pulled by every instance; a box crosses the scene during [12 s, 15 s] of every loop, so
// the scripted events are known: one every 30 s per camera, at the same moment on every camera.
// Reported:
// - CPU % of one core: the daemon and its ffmpeg children (from /proc, over the measured window),
//   next to the same-run baseline: the same number of bare ffmpeg pulls decoding to 320×180 gray at
//   10 fps with the product's decoder options (the analysis work alone, nothing recorded).
// - RSS (daemon + children) after a warm-up and at the end; goal: growth < 10 %.
// - Frames dropped (lva_frames_dropped_total + lva_data_dropped_total from /metrics).
// - Event latency: motion Inference event arrival (SSE) − its eventTime (the media time of the frame);
//   the topology is evr-motion-files plus an IoT Hub message sink on the motion detector.
// - Scripted events recorded: for every motion burst that started inside the window, on every camera,
//   a clip whose [startTime, endTime] covers the burst's start. Goal: none missed.
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import { startDaemon, stopAllDaemons, tempDir, mapLimit } from '../test/helpers/daemon.js';
import { startRtspServer } from '../test/helpers/rtsp-server.js';
import { listDescendantProcesses } from '../test/helpers/processes.js';
import { makeSyntheticCamera } from '../src/util/synthetic-camera.js';
import { findFfmpeg } from '../src/util/executables.js';
import { median } from './cpu.js';
import { evrMotionFiles } from './topologies.js';
import { printReport, row, type BenchRow } from './report.js';

const { values } = parseArgs({ options: {
  minutes: { type: 'string' }, cameras: { type: 'string' }, json: { type: 'boolean', default: false }, quick: { type: 'boolean', default: false },
} });
const QUICK = values.quick;
const MINUTES = Number(values.minutes ?? (QUICK ? 1 : 10));
const CAMERAS = Number(values.cameras ?? (QUICK ? 2 : 8));
const TOPOLOGIES = 50;
const INSTANCES = QUICK ? 100 : 1000;
const LOOP_S = 30;
const MOTION: [number, number] = [12, 15];
const WARMUP_S = QUICK ? 15 : 45;
const BASELINE_S = QUICK ? 15 : 60;
const TICKS = 100; // USER_HZ

const work = tempDir('lva-bench-load-');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** utime + stime of a process in seconds (0 when it is gone). */
function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICKS;
  } catch {
    return 0;
  }
}
function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}
/** A process and its descendants: CPU seconds so far (live ones) and RSS. */
function tree(pid: number): { cpu: Map<number, number>; rss: number } {
  const pids = [pid, ...listDescendantProcesses(pid).map((p) => p.pid)];
  return { cpu: new Map(pids.map((p) => [p, cpuSecondsOf(p)])), rss: pids.reduce((s, p) => s + rssOf(p), 0) };
}
/** CPU seconds spent between two snapshots by processes alive at the end (children that exited in
 * between count only up to the last snapshot they appeared in; the window is short against their life). */
function cpuBetween(a: Map<number, number>, b: Map<number, number>): number {
  let s = 0;
  for (const [pid, v] of b) s += v - (a.get(pid) ?? 0);
  return s;
}

const clip = path.join(work, 'camera-720p25.ts');
await makeSyntheticCamera({ seconds: LOOP_S, fps: 25, size: '1280x720', motion: [MOTION], bitrate: '2M', noise: 6 }, clip);
const rtsp = await startRtspServer({ loopFile: clip });
const cameraUrl = rtsp.url('/loop');
const notes: string[] = [];
const rows: BenchRow[] = [];
let exitCode = 0;

try {
  // ---- baseline: bare decoding pulls ----
  const pulls: ChildProcess[] = [];
  for (let i = 0; i < CAMERAS; i++) {
    pulls.push(spawn(findFfmpeg(), ['-nostdin', '-hide_banner', '-loglevel', 'error', '-rtsp_transport', 'tcp',
      '-threads', '1', '-skip_loop_filter', 'all', '-flags2', 'fast', '-i', cameraUrl,
      '-vf', 'fps=10,scale=320:180:flags=fast_bilinear,format=gray', '-f', 'rawvideo', '-y', '/dev/null'], { stdio: 'ignore' }));
  }
  await sleep(5000);
  const b0 = new Map(pulls.map((p) => [p.pid!, cpuSecondsOf(p.pid!)]));
  const bt0 = performance.now();
  await sleep(BASELINE_S * 1000);
  const b1 = new Map(pulls.map((p) => [p.pid!, cpuSecondsOf(p.pid!)]));
  const baselineCpuPct = (cpuBetween(b0, b1) / ((performance.now() - bt0) / 1000)) * 100;
  const baselineRss = pulls.reduce((s, p) => s + rssOf(p.pid!), 0);
  for (const p of pulls) p.kill('SIGKILL');
  await Promise.all(pulls.map((p) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once('exit', r)))));

  // ---- the daemon: 50 topologies, 1000 instances, N active ----
  const d = await startDaemon({ dataDir: path.join(work, 'state'), config: { applicationDataDirectory: path.join(work, 'state'), outputRootDirectory: path.join(work, 'media') } });
  const call = async (method: string, payload: object, ok: number[]) => {
    const r = await d.call(method, payload);
    if (!ok.includes(r.status)) throw new Error(`${method}: ${r.status} ${JSON.stringify(r.payload).slice(0, 300)}`);
    return r;
  };
  // evr-motion-files plus an IoT Hub message sink on the motion detector (as in LVA's samples that
  // publish inferences), so every motion event is also an Analytics event we can time.
  const base = evrMotionFiles() as any;
  base.properties.sinks.push({
    '@type': '#Microsoft.Media.MediaGraphIoTHubMessageSink', name: 'hubSink', hubOutputName: 'inferenceOutput',
    inputs: [{ nodeName: 'motionDetection' }],
  });
  const topologyName = (i: number) => `load-t-${String(i).padStart(2, '0')}`;
  const fillStart = performance.now();
  for (let i = 0; i < TOPOLOGIES; i++) await call('GraphTopologySet', { ...structuredClone(base), name: topologyName(i) }, [201]);
  await mapLimit(Array.from({ length: INSTANCES }, (_, i) => i), 8, (i) => call('GraphInstanceSet', {
    '@apiVersion': '2.0', name: `load-i-${String(i).padStart(4, '0')}`,
    properties: { topologyName: topologyName(i % TOPOLOGIES), parameters: [{ name: 'rtspUrl', value: i < CAMERAS ? cameraUrl : `rtsp://cam-${i}.example/stream` }] },
  }, [201]));
  const fillS = (performance.now() - fillStart) / 1000;
  notes.push(`${TOPOLOGIES} topologies and ${INSTANCES} instances stored in ${fillS.toFixed(1)} s; ${CAMERAS} active.`);

  // Events over SSE with their arrival times.
  const events: Array<{ at: number; e: any }> = [];
  const sse = http.get(`${d.url}/v1/events`, (res) => {
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => {
      buf += c;
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const msg = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = msg.split('\n').find((l) => l.startsWith('data: '));
        if (data) events.push({ at: Date.now(), e: JSON.parse(data.slice(6)) });
      }
    });
    res.on('error', () => {});
  });
  sse.on('error', () => {});
  const typed = (t: string) => events.filter((x) => String(x.e.applicationProperties.eventType).endsWith(`.${t}`));
  const instanceOf = (x: { e: any }) => String(x.e.applicationProperties.subject).split('/')[2];

  for (let i = 0; i < CAMERAS; i++) await call('GraphInstanceActivate', { '@apiVersion': '2.0', name: `load-i-${String(i).padStart(4, '0')}` }, [200]);
  await sleep(WARMUP_S * 1000);
  const s0 = tree(d.pid);
  const windowStart = Date.now();
  const t0 = performance.now();
  const rssSamples: number[] = [s0.rss];
  const endAt = t0 + MINUTES * 60_000;
  while (performance.now() < endAt) {
    await sleep(Math.min(30_000, endAt - performance.now()));
    rssSamples.push(tree(d.pid).rss);
  }
  const s1 = tree(d.pid);
  const windowEnd = Date.now();
  const wallS = (performance.now() - t0) / 1000;
  const cpuPct = (cpuBetween(s0.cpu, s1.cpu) / wallS) * 100;
  const metrics = (await d.request('GET', '/metrics')).text;
  const sumMetric = (name: string) => [...metrics.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].reduce((s, m) => s + Number(m[1]), 0);
  const framesDropped = sumMetric('lva_frames_dropped_total');
  const dataDropped = sumMetric('lva_data_dropped_total');

  // Let the clips of the last bursts finish before counting.
  await sleep(12_000);
  sse.destroy();

  // Scripted events: motion bursts, in phase on every camera (one shared /loop feed). A burst's start
  // is the earliest motion eventTime of a cluster (events less than LOOP_S/2 apart).
  const motion = events.filter((x) => String(x.e.applicationProperties.eventType).endsWith('.Analytics.Inference')).map((x) => ({
    at: x.at,
    // The frame's media time (LVA's 90 kHz `timestamp` since the epoch), else the event time.
    t: typeof x.e.body.timestamp === 'number' ? x.e.body.timestamp / 90 : Date.parse(String(x.e.applicationProperties.eventTime)),
    inst: instanceOf(x),
  }));
  const latencies = motion.map((m) => m.at - m.t);
  const starts: number[] = [];
  for (const t of motion.map((m) => m.t).sort((a, b) => a - b)) {
    if (starts.length === 0 || t - starts[starts.length - 1]! > (LOOP_S / 2) * 1000) starts.push(t);
  }
  const scripted = starts.filter((t) => t >= windowStart && t <= windowEnd - 10_000);
  const clips = typed('RecordingAvailable').map((x) => ({ inst: instanceOf(x), start: Date.parse(String(x.e.body.startTime)), end: Date.parse(String(x.e.body.endTime)) }));
  let missed = 0;
  let missedDetection = 0;
  const active = Array.from({ length: CAMERAS }, (_, i) => `load-i-${String(i).padStart(4, '0')}`);
  for (const t of scripted) {
    for (const inst of active) {
      if (clips.some((c) => c.inst === inst && c.start <= t + 1000 && c.end >= t)) continue;
      missed++;
      const near = clips.filter((c) => c.inst === inst && Math.abs(c.start - t) < 60_000).map((c) => `[${c.start - t}, ${c.end - t}]`);
      const seen = motion.filter((m) => m.inst === inst && m.t >= t - 1000 && m.t <= t + 6000).map((m) => Math.round(m.t - t));
      if (seen.length === 0) missedDetection++;
      notes.push(`missed: ${inst} burst at ${new Date(t).toISOString()}; motion events of this camera in the burst (ms): ${seen.join(' ') || 'none'}; its clips nearby (ms from the burst): ${near.join(' ') || 'none'}`);
    }
  }
  const expected = scripted.length * CAMERAS;
  const rssStart = s0.rss;
  const rssEnd = s1.rss;
  const growth = (rssEnd - rssStart) / rssStart;
  const MiB = 1024 * 1024;

  rows.push(row({ measure: `CPU, ${CAMERAS} cameras 720p25 with motion recording (daemon + ffmpeg)`, ours: cpuPct, unit: '% of one core',
    baseline: `${CAMERAS} bare ffmpeg pulls decoding to 320×180 gray at 10 fps`, baselineValue: baselineCpuPct }));
  rows.push(row({ measure: 'RSS after warm-up', ours: rssStart / MiB, unit: 'MiB', baseline: `${CAMERAS} bare ffmpeg decoding pulls`, baselineValue: baselineRss / MiB }));
  rows.push(row({ measure: `RSS after ${MINUTES} min`, ours: rssEnd / MiB, unit: 'MiB' }));
  rows.push(row({ measure: 'RSS growth over the run', ours: growth * 100, unit: '%', goal: { on: 'ours', max: 10, strict: true } }));
  rows.push(row({ measure: 'frames dropped (analysis frames + media)', ours: framesDropped + dataDropped, unit: 'items' }));
  if (latencies.length > 0) {
    rows.push(row({ measure: 'event latency, median (frame time → SSE arrival)', ours: median(latencies), unit: 'ms' }));
    rows.push(row({ measure: 'event latency, max', ours: Math.max(...latencies), unit: 'ms' }));
  } else {
    notes.push('no motion event arrived: no latency measured');
    exitCode = 1;
  }
  rows.push(row({ measure: `scripted events without a clip (of ${expected})`, ours: missed, unit: 'events', goal: { on: 'ours', max: 0 } }));
  notes.push(`of the scripted events without a clip, ${missedDetection} had no motion event on that camera (a detection miss), ${missed - missedDetection} had one (a recording miss).`);
  notes.push(`measured over ${wallS.toFixed(0)} s after a ${WARMUP_S} s warm-up; RSS sampled every 30 s: ${rssSamples.map((r) => (r / MiB).toFixed(0)).join(', ')} MiB.`);
  notes.push(`${clips.length} clips, ${motion.length} motion (Inference) events, ${scripted.length} scripted bursts in the window; lva_frames_dropped_total ${framesDropped}, lva_data_dropped_total ${dataDropped}.`);
  notes.push(`machine: ${(await import('node:os')).cpus().length} cores, shared; CPU figures include whatever contention there was.`);
  if (expected === 0) {
    notes.push('no scripted burst fell inside the window: the motion check did not run');
    exitCode = 1;
  }

  for (let i = 0; i < CAMERAS; i++) await call('GraphInstanceDeactivate', { '@apiVersion': '2.0', name: `load-i-${String(i).padStart(4, '0')}` }, [200]);
  const code = await d.stop();
  if (code !== 0) notes.push(`daemon exited with ${code}`);
} catch (err) {
  notes.push(`FAILED: ${(err as Error).message}`);
  exitCode = 1;
} finally {
  await stopAllDaemons();
  await rtsp.stop();
  rmSync(work, { recursive: true, force: true });
}

printReport({ bench: 'load', title: `Load: ${TOPOLOGIES} topologies, ${INSTANCES} instances stored, ${CAMERAS} live 720p cameras with motion recording for ${MINUTES} min`, rows, notes }, values.json);
process.exit(exitCode);
