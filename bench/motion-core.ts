/**
 * Micro-benchmark of the pure motion core (src/media/motion.ts) at 320×180 gray, next to a naive
 * baseline loop in the same process: |frame − background| > 25, count, background EMA in 8.8 fixed
 * point — /work/shared/bench/motion-bench.mjs `--bg u8 --no-blur` (perf.md §5: 91 µs/frame there).
 *
 *   node --import tsx bench/motion-core.ts [--frames 250] [--rounds 5] [--sensitivity Medium] [--quick] [--json]
 *
 * --quick: 50 frames × 2 rounds (smoke test). --json: the report's JSON as the last stdout line (bench/report.ts).
 *
 * Frames are synthetic (textured background, noise σ 2, a 30×30 square moving at 50 px/s, 25 fps),
 * generated up front so only the loops are timed. Rounds interleave the two loops; the median round is
 * reported.
 */
import { MotionDetector, type MotionSensitivity } from '../src/media/motion.js';
import { commonFlags, printReport, row } from './report.js';

const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const W = 320, H = 180, N = W * H, FPS = 25;
const { json, quick } = commonFlags(args);
const FRAMES = Number(opt('frames', quick ? '50' : '250'));
const ROUNDS = Number(opt('rounds', quick ? '2' : '5'));
const SENSITIVITY = opt('sensitivity', 'Medium') as MotionSensitivity;

// ---- synthetic clip -----------------------------------------------------------------------------
let seed = 42;
const rand = () => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed / 4294967296;
};
const background = new Float32Array(N);
for (let y = 0; y < H; y++) {
  for (let x = 0; x < W; x++) {
    background[y * W + x] = 130 + 25 * Math.sin(x / 7) * Math.cos(y / 11) + 15 * Math.sin((x + 2 * y) / 29) + (rand() - 0.5) * 20;
  }
}
const frames: Uint8Array[] = [];
for (let f = 0; f < FRAMES; f++) {
  const data = new Uint8Array(N);
  const ox = Math.round(20 + ((50 * f) / FPS) % (W - 60)), oy = 75;
  for (let i = 0; i < N; i++) {
    const x = i % W, y = (i / W) | 0;
    const v = x >= ox && x < ox + 30 && y >= oy && y < oy + 30 ? 45 : background[i];
    const n = (rand() + rand() + rand() + rand() - 2) * Math.sqrt(3) * 2;
    data[i] = Math.max(0, Math.min(255, Math.round(v + n)));
  }
  frames.push(data);
}

// ---- naive baseline -----------------------------------------------------------------------------
const bgQ = new Int32Array(N);
const ALPHA_Q = Math.max(1, Math.round((1 - Math.exp(-1 / (FPS * 0.8))) * 256));
function naive(frame: Uint8Array): number {
  let changed = 0;
  const thrQ = 25 << 8;
  for (let i = 0; i < N; i++) {
    const b = bgQ[i];
    const d = (frame[i] << 8) - b;
    if (d > thrQ || d < -thrQ) changed++;
    bgQ[i] = b + ((d * ALPHA_Q) >> 8);
  }
  return changed;
}

// ---- timing -------------------------------------------------------------------------------------
let sink = 0; // keeps results alive so nothing is optimised away
function timeNaive(): number {
  for (let i = 0; i < N; i++) bgQ[i] = frames[0][i] << 8;
  const t0 = process.hrtime.bigint();
  for (let f = 0; f < FRAMES; f++) sink += naive(frames[f]);
  return Number(process.hrtime.bigint() - t0) / 1000 / FRAMES;
}
let motionFrames = 0;
function timeDetector(): number {
  const det = new MotionDetector({ sensitivity: SENSITIVITY, width: W, height: H });
  motionFrames = 0;
  const t0 = process.hrtime.bigint();
  for (let f = 0; f < FRAMES; f++) {
    const r = det.process({ pts90k: Math.round((f * 90_000) / FPS), width: W, height: H, format: 'gray', data: frames[f] });
    if (r.motion) motionFrames++;
  }
  return Number(process.hrtime.bigint() - t0) / 1000 / FRAMES;
}

timeNaive(); timeDetector(); // warm the JIT
const ours: number[] = [], base: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  base.push(timeNaive());
  ours.push(timeDetector());
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
printReport({
  bench: 'motion-core',
  title: `Motion core (pure, in process): ${W}x${H} gray, ${FRAMES} frames × ${ROUNDS} rounds, sensitivity ${SENSITIVITY}, Node ${process.version}`,
  rows: [
    row({ measure: 'MotionDetector per frame (median round)', ours: median(ours)!, unit: 'µs', baseline: 'naive |diff|>25 + count + EMA loop', baselineValue: median(base)! }),
  ],
  notes: [
    `${motionFrames}/${FRAMES} frames reported motion.`,
    `ours min ${Math.min(...ours).toFixed(1)} / max ${Math.max(...ours).toFixed(1)} µs; naive min ${Math.min(...base).toFixed(1)} / max ${Math.max(...base).toFixed(1)} µs.`,
    'No goal here: the end-to-end motion CPU is judged by bench/recording.ts and bench/motion-speed.ts.',
  ],
}, json);
if (sink < 0) console.log(sink);
