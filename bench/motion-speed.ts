/**
 * Motion detection speed, every figure next to a baseline measured in the same run:
 *
 *   node --import tsx bench/motion-speed.ts [--quick] [--json] [--rounds 3] [--skip-live]
 *
 * (a) Core: MotionDetector µs/frame on 320×180 gray frames ÷ an OpenCV-Python implementation of
 *     Frigate's improved motion detector (bench/frigate_motion.py, Debian python3-opencv, one thread)
 *     on the SAME frames (a raw file both read into memory; only the detection loops are timed, in CPU
 *     time of each process, so other work on a shared machine does not land on either side), on two
 *     scenes: the synthetic camera below (high-contrast test pattern) and a clip of the labelled set
 *     (soft textured scene, where Frigate's contrast stretch amplifies noise into many contours).
 *     Goal ≤ 1.0 (at least as fast), stretch ≤ 0.5 (2× faster). Also shown without a goal: the same
 *     OpenCV loop with improve_contrast off (Frigate's default is on).
 * (b) Motion path of a 720p25 H.264 camera: CPU of `replay` through the LVA motion-detection sample
 *     topology (ffmpeg decode → 320×180 gray at the analysis rate → detector → hub events) ÷ CPU of
 *     bare ffmpeg decoding the same clip to 320×180 gray (same decoder options). Goal ≤ 1.2.
 * (c) A live 1080p25 camera (4 Mbit/s, looping over the RTSP test server) with motion-triggered
 *     recording: lva-edge running evr-motion-files (Node + its ffmpeg child) ÷ the Motion daemon doing
 *     detection + passthrough recording (movie_passthrough on) on the same stream, CPU per second of
 *     stream over the same window, one after the other. Goal ≤ 0.75. Motion's settings are the perf
 *     anchors' (shared docs perf.md §6): 1920×1080, 25 fps, threshold 4000, noise_tune on,
 *     despeckle EedDl, minimum_motion_frames 3, event_gap 5, pre/post capture 25 frames, mkv passthrough.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { MotionDetector } from '../src/media/motion.js';
import { replay } from '../src/replay.js';
import { findFfmpeg } from '../src/util/executables.js';
import { makeSyntheticCamera } from '../src/util/synthetic-camera.js';
import { measureCpu, median } from './cpu.js';
import { defaultClipDir, ensureClips, fullClipSet, quickClipSet } from './motion-clips.js';
import { printReport, row, type BenchRow } from './report.js';

const { values } = parseArgs({ options: {
  quick: { type: 'boolean', default: false }, json: { type: 'boolean', default: false },
  rounds: { type: 'string' }, 'skip-live': { type: 'boolean', default: false },
} });
const QUICK = values.quick;
const ROUNDS = Number(values.rounds ?? (QUICK ? 1 : 3));
const PYTHON = '/usr/bin/python3';
const here = path.dirname(fileURLToPath(import.meta.url));
const work = mkdtempSync(path.join(os.tmpdir(), 'lva-motion-speed-'));
const cache = path.join(defaultClipDir(), 'speed');
mkdirSync(cache, { recursive: true });
const log = (s: string) => process.stderr.write(`${s}\n`);

const rows: BenchRow[] = [];
const notes: string[] = [];

function ffmpeg(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(findFfmpeg(), ['-nostdin', '-hide_banner', '-loglevel', 'error', ...args], { stdio: 'ignore' });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}: ${args.join(' ')}`))));
  });
}

async function cachedCamera(name: string, spec: Parameters<typeof makeSyntheticCamera>[0]): Promise<string> {
  const file = path.join(cache, `${name}.mp4`);
  if (!existsSync(file)) {
    await makeSyntheticCamera(spec, `${file}.partial.mp4`);
    const { renameSync } = await import('node:fs');
    renameSync(`${file}.partial.mp4`, file);
  }
  return file;
}

function procCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (≤ 30 s) until `cpuSeconds` grows by ≥ 0.05 s within one second: the camera is connected and
 * being decoded, so a measuring window never starts during connection or reconnect back-off. */
async function waitUntilDecoding(cpuSeconds: () => number, who: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const c0 = cpuSeconds();
    await sleep(1000);
    if (cpuSeconds() - c0 >= 0.05) return;
  }
  throw new Error(`${who} did not start decoding the live camera within 30 s`);
}

try {
  // ---- (a) core vs OpenCV-Python ----------------------------------------------------------------
  const W = 320, H = 180, FPS = 25;
  const cam720 = await cachedCamera(QUICK ? 'cam720-10s' : 'cam720-30s', {
    seconds: QUICK ? 10 : 30, fps: 25, size: '1280x720', motion: QUICK ? [[3, 7]] : [[6, 12], [20, 26]], bitrate: '4M', noise: 6,
  });
  // Two scenes, because the OpenCV detector's cost depends on the picture (its contrast stretch turns
  // a low-contrast scene's noise into many contours, each handled in Python) and ours much less.
  const labelled = (await ensureClips([QUICK ? quickClipSet()[0]! : fullClipSet().find((c) => c.name === 'obj64-hi-50')!]))[0]!;
  const scenes = [
    { label: 'synthetic camera: high-contrast test pattern, sensor noise, 4 Mbit/s', clip: cam720 },
    { label: `labelled clip ${labelled.spec.name}: soft textured scene, noise σ 3`, clip: labelled.file },
  ];
  for (const [sceneIndex, scene] of scenes.entries()) {
    const framesFile = path.join(work, `frames${sceneIndex}.gray`);
    await ffmpeg(['-i', scene.clip, '-vf', `scale=${W}:${H}:flags=fast_bilinear,format=gray`, '-f', 'rawvideo', '-y', framesFile]);
    const raw = readFileSync(framesFile);
    const nFrames = Math.floor(raw.length / (W * H));
    const frames = Array.from({ length: nFrames }, (_, i) => new Uint8Array(raw.buffer, raw.byteOffset + i * W * H, W * H));
    let ourMotion = 0;
    const timeOurs = () => {
      const det = new MotionDetector({ sensitivity: 'Medium', width: W, height: H });
      ourMotion = 0;
      // CPU time, like the Python side: robust to other work on a shared machine.
      const t0 = process.cpuUsage();
      for (let i = 0; i < nFrames; i++) {
        if (det.process({ pts90k: Math.round((i * 90_000) / FPS), width: W, height: H, format: 'gray', data: frames[i]! }).motion) ourMotion++;
      }
      const u = process.cpuUsage(t0);
      return (u.user + u.system) / nFrames;
    };
    const timePython = (extra: string[] = []): { usPerFrame: number; motionFrames: number } | null => {
      const r = spawnSync(PYTHON, [path.join(here, 'frigate_motion.py'), '--file', framesFile, '--width', String(W), '--height', String(H), '--fps', String(FPS), '--rounds', '3', '--json', ...extra], { encoding: 'utf8', timeout: 300_000 });
      if (r.status !== 0) {
        notes.push(`OpenCV baseline unavailable: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`);
        return null;
      }
      return JSON.parse(r.stdout.trim().split('\n').pop()!);
    };
    timeOurs(); // JIT warm-up
    const ours: number[] = [], theirs: number[] = [], plain: number[] = [];
    let cvMotion = 0;
    for (let r = 0; r < Math.max(ROUNDS, 2); r++) {
      const p = timePython();
      if (p) { theirs.push(p.usPerFrame); cvMotion = p.motionFrames; }
      ours.push(timeOurs());
      const q = timePython(['--no-contrast']);
      if (q) plain.push(q.usPerFrame);
    }
    const coreOurs = median(ours), coreCv = theirs.length ? median(theirs) : null;
    rows.push(row({
      measure: `motion core, µs per 320×180 frame — ${scene.label} (${nFrames} frames)`, ours: coreOurs, unit: 'µs/frame',
      baseline: 'OpenCV-Python Frigate-style detector, Frigate defaults (bench/frigate_motion.py)', baselineValue: coreCv, goal: { on: 'ratio', max: 1 },
    }));
    if (plain.length) {
      // Informative, no goal: Frigate with improve_contrast off (its default is on) is a bare
      // blur/absdiff/threshold/dilate/contours loop in C++, without any lighting or noise handling.
      rows.push(row({
        measure: `motion core vs the same OpenCV detector with improve_contrast off — ${scene.label}`, ours: coreOurs, unit: 'µs/frame',
        baseline: 'OpenCV-Python Frigate-style, improve_contrast off', baselineValue: median(plain),
      }));
    }
    if (coreCv) notes.push(`${scene.label}: core ${(coreCv / coreOurs).toFixed(2)}× the OpenCV-Python detector's frame rate (goal ≥ 1×, stretch ≥ 2×); ${ourMotion} motion frames (Medium) vs ${cvMotion} (OpenCV) of ${nFrames}; medians of ${ours.length} interleaved rounds`);
    log(`(a) ${scene.label}: core ${coreOurs.toFixed(1)} µs/frame vs OpenCV ${coreCv?.toFixed(1) ?? '—'} µs/frame`);
  }

  // ---- (b) 720p25 motion path vs bare decode ----------------------------------------------------
  const motionTopology = JSON.parse(readFileSync(path.resolve(here, '../../shared/lva-samples/topologies/2.0/motion-detection.topology.json'), 'utf8').replace(/"medium"/, '"Medium"'));
  const decodeBaseline = () => ffmpeg(['-threads', '1', '-skip_loop_filter', 'all', '-flags2', 'fast', '-i', cam720,
    '-vf', 'scale=320:180:flags=fast_bilinear,format=gray', '-f', 'rawvideo', '-y', '/dev/null']);
  let n = 0;
  const motionRun = async () => {
    const out = path.join(work, `m${n++}`);
    const r = await replay({ topology: motionTopology, params: { rtspUrl: 'rtsp://bench.invalid/x' }, input: cam720, output: out });
    if (!r.ok || r.events === 0) throw new Error(`motion replay failed: ${r.errors.join('; ')} (${r.events} events)`);
    rmSync(out, { recursive: true, force: true });
  };
  await motionRun();
  const pathOurs: number[] = [], pathBase: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    pathBase.push((await measureCpu(decodeBaseline)).total);
    pathOurs.push((await measureCpu(motionRun)).total);
  }
  const po = median(pathOurs), pb = median(pathBase);
  rows.push(row({
    measure: `motion path of a ${QUICK ? 10 : 30} s 720p25 4 Mbit/s camera clip (decode + detector + events)`, ours: po, unit: 'CPU s',
    baseline: 'bare ffmpeg decode → 320×180 gray', baselineValue: pb, goal: { on: 'ratio', max: 1.2 },
  }));
  log(`(b) motion path ${po.toFixed(2)} CPU s vs bare decode ${pb.toFixed(2)} CPU s`);

  // ---- (c) live 1080p25 with recording vs the Motion daemon ---------------------------------------
  if (!values['skip-live'] && existsSync('/usr/bin/motion')) {
    const window = QUICK ? 8 : 30, settle = QUICK ? 4 : 6;
    const cam1080 = await cachedCamera(QUICK ? 'cam1080-20s' : 'cam1080-40s', {
      seconds: QUICK ? 20 : 40, fps: 25, size: '1920x1080', motion: QUICK ? [[5, 9]] : [[5, 10], [22, 28]], bitrate: '4M', noise: 6,
    });
    const ts = path.join(work, 'loop.ts');
    await ffmpeg(['-i', cam1080, '-c', 'copy', '-f', 'mpegts', '-y', ts]);
    const { startRtspServer } = await import('../test/helpers/rtsp-server.js');
    const { startRecordingHarness } = await import('../test/helpers/recording.js');
    const { liveFfmpegProcesses } = await import('../src/media/ffmpeg-process.js');
    const rtsp = await startRtspServer({ loopFile: ts });
    try {
      const liveOurs: number[] = [], liveMotion: number[] = [];
      let clipsOurs = 0, moviesMotion = 0, ffmpegStarts = 0;
      for (let r = 0; r < (QUICK ? 1 : 2); r++) {
        // lva-edge: evr-motion-files on the live stream.
        const h = await startRecordingHarness();
        try {
          const topo = JSON.parse(readFileSync(path.resolve(here, '../../shared/lva-samples/topologies/2.0/evr-motion-files.topology.json'), 'utf8'));
          topo.properties.sinks[0].baseDirectoryPath = path.join(h.dir, 'media');
          await h.call('GraphTopologySet', topo);
          await h.call('GraphInstanceSet', { name: 'cam', properties: { topologyName: topo.name, parameters: [{ name: 'rtspUrl', value: rtsp.url('/loop') }, { name: 'motionSensitivity', value: 'Medium' }] } });
          const act = await h.call('GraphInstanceActivate', { name: 'cam' });
          if (act.status >= 300) throw new Error(`activate failed: ${JSON.stringify(act.payload)}`);
          const children = () => liveFfmpegProcesses().reduce((a, f) => a + (f.pid ? procCpuSeconds(f.pid) : 0), 0);
          await waitUntilDecoding(children, 'lva-edge');
          await sleep(settle * 1000);
          // ffmpeg children may be replaced during the window (reconnect when the looping camera's
          // timestamps jump): per-pid CPU is sampled every 250 ms, a new child counts from zero.
          const pids = () => liveFfmpegProcesses().map((f) => f.pid).filter((pid): pid is number => pid !== undefined);
          const first = new Map(pids().map((pid) => [pid, procCpuSeconds(pid)]));
          const last = new Map(first);
          const u0 = process.cpuUsage();
          const sampler = setInterval(() => {
            for (const pid of pids()) {
              if (!first.has(pid)) first.set(pid, 0);
              const c = procCpuSeconds(pid);
              if (c > 0) last.set(pid, c);
            }
          }, 250);
          await sleep(window * 1000);
          clearInterval(sampler);
          for (const pid of pids()) { const c = procCpuSeconds(pid); if (c > 0) last.set(pid, c); }
          const u = process.cpuUsage(u0);
          const childCpu = [...last].reduce((a, [pid, c]) => a + c - (first.get(pid) ?? 0), 0);
          liveOurs.push(((u.user + u.system) / 1e6 + childCpu) / window);
          ffmpegStarts += [...first.keys()].length;
          clipsOurs += h.ofType('RecordingStarted').length;
          await h.call('GraphInstanceDeactivate', { name: 'cam' });
        } finally {
          await h.close();
        }
        // Motion daemon on the same stream.
        const dir = mkdtempSync(path.join(work, 'motiond-'));
        writeFileSync(path.join(dir, 'motion.conf'), [
          'daemon off', 'setup_mode off', 'log_level 4', `log_file ${dir}/motion.log`, `target_dir ${dir}`,
          `netcam_url ${rtsp.url('/loop')}`, 'netcam_params rtsp_transport=tcp', 'width 1920', 'height 1080', 'framerate 25',
          'threshold 4000', 'noise_tune on', 'despeckle_filter EedDl', 'minimum_motion_frames 3', 'event_gap 5',
          'pre_capture 25', 'post_capture 25', 'picture_output off', 'movie_output on', 'movie_passthrough on', 'movie_codec mkv',
          'movie_filename %t-%v-%Y%m%d%H%M%S', 'webcontrol_port 0', 'stream_port 0', '',
        ].join('\n'));
        const child = spawn('/usr/bin/motion', ['-n', '-c', path.join(dir, 'motion.conf')], { stdio: 'ignore', detached: true });
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        try {
          await waitUntilDecoding(() => procCpuSeconds(child.pid!), 'the Motion daemon');
          await sleep(settle * 1000);
          const m0 = procCpuSeconds(child.pid!);
          await sleep(window * 1000);
          liveMotion.push((procCpuSeconds(child.pid!) - m0) / window);
        } finally {
          try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* gone */ }
          const t = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, 5000);
          await exited;
          clearTimeout(t);
        }
        const { readdirSync } = await import('node:fs');
        moviesMotion += readdirSync(dir).filter((f) => /\.(mkv|mp4|avi)$/.test(f)).length; // passthrough keeps the camera's container
        rmSync(dir, { recursive: true, force: true });
      }
      const lo = median(liveOurs), lm = median(liveMotion);
      rows.push(row({
        measure: 'live 1080p25 4 Mbit/s camera, motion-triggered recording (evr-motion-files)', ours: lo, unit: 'CPU s/s',
        baseline: 'Motion daemon 4.5, detection + passthrough recording', baselineValue: lm, goal: { on: 'ratio', max: 0.75 },
      }));
      notes.push(`live: ${window} s windows after ${settle} s settling, ${liveOurs.length} run(s) each; clips started: lva-edge ${clipsOurs}, Motion movies ${moviesMotion}; lva-edge ffmpeg processes seen in the windows: ${ffmpegStarts}; the RTSP test server's own CPU is in neither`);
      log(`(c) live 1080p ${lo.toFixed(3)} vs Motion ${lm.toFixed(3)} CPU s/s`);
    } finally {
      await rtsp.stop();
    }
  } else {
    notes.push('live 1080p comparison skipped (--skip-live or Motion daemon not installed)');
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

printReport({ bench: 'motion-speed', title: `Motion detection speed vs OpenCV-Python (Frigate-style) and the Motion daemon (${QUICK ? 'quick' : `${ROUNDS} rounds`}, Node ${process.version})`, rows, notes }, values.json);
