/**
 * The labelled motion benchmark set: synthetic camera clips (H.264 MP4, made by piping frames drawn
 * here into ffmpeg/libx264) with a ground-truth JSON next to each one.
 *
 *   node --import tsx bench/motion-clips.ts [--quick] [--dir DIR]     (prints the clip list)
 *
 * Every clip is a static textured scene (soft shapes plus fine texture, mean ≈ 100 gray levels) seen
 * through a simulated sensor: temporal Gaussian noise of σ 0 / 3 / 8 levels (then H.264 at CRF 23,
 * which smooths some of it, like a real camera's encoder), a global lighting model (gain × scene +
 * offset, per frame) and chroma that is neutral at night. On top of it:
 *
 * - moving-object clips: a square (size in 1280×720 pixels) that differs from the scene behind it by
 *   `contrast` gray levels everywhere (so "low contrast" means low against its surroundings, not against
 *   a global mean), with a soft texture of its own (±12 levels, 32 px period, like clothing or a car
 *   body; `flat` objects have none — the worst case for slow motion, where only the edges change),
 *   that stands still for the first 3 s (it is part of the learnt background), moves
 *   back and forth horizontally at a constant speed from 3 s to 10 s, and stands still again until
 *   the end. Truth: one motion interval [3, 10].
 * - no-motion clips: noise only, a brightness step up/down (lights on/off), an auto-exposure ramp and
 *   an IR day→night→day switch (gain change, colour → gray, a different reflectance pattern under IR,
 *   more noise). Truth: no motion at all.
 *
 * Clips are cached under DIR (default $TMPDIR/lva-motion-clips) by a hash of their parameters and of
 * this generator's version, so re-runs cost nothing; delete the directory to regenerate.
 */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { findFfmpeg } from '../src/util/executables.js';

/** Bump when the drawing code changes, so cached clips are regenerated. */
const GENERATOR_VERSION = 4;

export type NoiseLevel = 'none' | 'moderate' | 'heavy';
/** Temporal noise σ (gray levels, before compression) per level. */
export const NOISE_SIGMA: Record<NoiseLevel, number> = { none: 0, moderate: 3, heavy: 8 };

export type Lighting =
  | { kind: 'steady' }
  /** Brightness step at `at` s: gain × (1 + step), e.g. +0.5 lights on, −0.45 lights off. */
  | { kind: 'step'; at: number; step: number }
  /** Brightness × (1 + step) during [at, until): two sharp global changes (used to calibrate the
   * Motion daemon's start-up delay). */
  | { kind: 'pulse'; at: number; until: number; step: number }
  /** Auto-exposure: gain ramps linearly from 1 to `to` between `from` and `until` s, then back. */
  | { kind: 'ramp'; from: number; until: number; to: number }
  /** IR cut filter: night (IR, gray, different reflectance, heavier noise) during [at, back). */
  | { kind: 'ir'; at: number; back: number };

export interface MovingObject {
  /** Side of the square in 1280×720 pixels (scaled with the clip size). */
  size: number;
  /** Object minus the scene behind it, gray levels (negative: darker than the scene). */
  contrast: number;
  /** No texture of its own: a uniform patch (only its edges change when it moves slowly). */
  flat?: boolean;
  /** Pixels per second in 1280×720 terms. */
  speed: number;
  /** Motion interval, seconds; standing still before and after. */
  start: number;
  end: number;
}

export interface ClipSpec {
  name: string;
  /** What it tests, for the printed table. */
  about: string;
  seconds: number;
  fps: number;
  width: number;
  height: number;
  noise: NoiseLevel;
  lighting: Lighting;
  object?: MovingObject;
  /** Most demanding preset expected to catch the object (the documented limits, docs/motion.md);
   * undefined for no-motion clips and for objects below every preset's limit. */
  expectedFrom?: 'High' | 'Medium' | 'Low';
  seed: number;
}

export interface ClipTruth {
  name: string;
  about: string;
  seconds: number;
  fps: number;
  width: number;
  height: number;
  noise: NoiseLevel;
  lighting: Lighting;
  object?: MovingObject;
  expectedFrom?: 'High' | 'Medium' | 'Low';
  /** Ground-truth motion intervals, seconds of media time from the first frame. */
  motion: Array<[number, number]>;
}

export interface Clip {
  spec: ClipSpec;
  truth: ClipTruth;
  file: string;
}

const W720 = 1280, H720 = 720;

function moving(name: string, about: string, o: Partial<MovingObject> & { size: number }, extra: Partial<ClipSpec> = {}): ClipSpec {
  const object: MovingObject = { contrast: 70, speed: 50, start: 3, end: 10, ...o };
  return {
    name, about, seconds: 13, fps: 25, width: W720, height: H720, noise: 'moderate', lighting: { kind: 'steady' },
    object, seed: hashSeed(name), ...extra,
  };
}

function still(name: string, about: string, extra: Partial<ClipSpec>): ClipSpec {
  return { name, about, seconds: 20, fps: 25, width: W720, height: H720, noise: 'moderate', lighting: { kind: 'steady' }, seed: hashSeed(name), ...extra };
}

/** The full labelled set (≈ 5 min of video). */
export function fullClipSet(): ClipSpec[] {
  return [
    moving('obj16-hi-50', '16 px object, high contrast, 50 px/s', { size: 16 }),
    moving('obj32-hi-50', '32 px object, high contrast, 50 px/s', { size: 32 }, { expectedFrom: 'High' }),
    moving('obj64-hi-50', '64 px object, high contrast, 50 px/s', { size: 64 }, { expectedFrom: 'Medium' }),
    moving('obj128-hi-50', '128 px object, high contrast, 50 px/s', { size: 128 }, { expectedFrom: 'Low' }),
    moving('obj32-lo-50', '32 px object, low contrast (+25), 50 px/s', { size: 32, contrast: 25 }),
    moving('obj64-lo-50', '64 px object, low contrast (−25), 50 px/s', { size: 64, contrast: -25 }, { expectedFrom: 'Medium' }),
    moving('obj64-hi-10', '64 px object, high contrast, slow 10 px/s', { size: 64, speed: 10 }, { expectedFrom: 'Medium' }),
    moving('obj64-flat-10', '64 px untextured object, slow 10 px/s (edges only)', { size: 64, speed: 10, flat: true }),
    moving('obj64-hi-200', '64 px object, high contrast, fast 200 px/s', { size: 64, speed: 200 }, { expectedFrom: 'Medium' }),
    moving('obj32-hi-200', '32 px object, high contrast, fast 200 px/s', { size: 32, speed: 200 }, { expectedFrom: 'High' }),
    moving('obj64-hi-50-clean', '64 px object, no sensor noise', { size: 64 }, { noise: 'none', expectedFrom: 'Medium' }),
    moving('obj64-hi-50-heavy', '64 px object, heavy noise (σ 8)', { size: 64 }, { noise: 'heavy', expectedFrom: 'Medium' }),
    moving('obj128-lo-50-heavy', '128 px object, low contrast, heavy noise', { size: 128, contrast: 25 }, { noise: 'heavy', expectedFrom: 'Medium' }),
    moving('obj64-hi-50-15fps', '64 px object at 15 fps', { size: 64 }, { fps: 15, expectedFrom: 'Medium' }),
    moving('obj32-hi-50-15fps', '32 px object at 15 fps', { size: 32 }, { fps: 15, expectedFrom: 'High' }),
    still('noise-none', 'static scene, no noise', { noise: 'none' }),
    still('noise-moderate', 'static scene, noise σ 3', { noise: 'moderate' }),
    still('noise-heavy', 'static scene, noise σ 8', { noise: 'heavy' }),
    still('light-on', 'lights on: brightness +50 % at 6 s', { lighting: { kind: 'step', at: 6, step: 0.5 } }),
    still('light-off', 'lights off: brightness −45 % at 6 s', { lighting: { kind: 'step', at: 6, step: -0.45 } }),
    still('light-on-15fps', 'lights on at 15 fps, heavy noise', { fps: 15, noise: 'heavy', lighting: { kind: 'step', at: 6, step: 0.5 } }),
    still('auto-exposure', 'auto-exposure ramp ×1.8 over 1.5 s and back', { lighting: { kind: 'ramp', from: 6, until: 7.5, to: 1.8 } }),
    still('ir-switch', 'IR cut filter: day → night at 6 s, back at 14 s', { lighting: { kind: 'ir', at: 6, back: 14 } }),
  ];
}

/** Three short clips for the smoke test and `--quick`: an object, noise only, a light step. */
export function quickClipSet(): ClipSpec[] {
  return [
    moving('q-obj64-hi-50', '64 px object, high contrast, 50 px/s (quick)', { size: 64, start: 2, end: 5 }, { seconds: 6, fps: 15, expectedFrom: 'Medium' }),
    still('q-noise-moderate', 'static scene, noise σ 3 (quick)', { seconds: 6, fps: 15 }),
    still('q-light-on', 'lights on at 3 s (quick)', { seconds: 6, fps: 15, lighting: { kind: 'step', at: 3, step: 0.5 } }),
  ];
}

/** Calibration clip for the Motion daemon's media-time anchor: brightness jumps at 3 s and back at 8 s. */
export function calibrationClip(): ClipSpec {
  return still('calib-pulse', 'brightness +60 % during [3 s, 8 s): Motion daemon clock calibration', {
    seconds: 10, noise: 'none', lighting: { kind: 'pulse', at: 3, until: 8, step: 0.6 },
  });
}

export function truthOf(spec: ClipSpec): ClipTruth {
  const motion: Array<[number, number]> = spec.object ? [[spec.object.start, spec.object.end]] : [];
  const { seed: _seed, ...rest } = spec;
  return { ...rest, motion };
}

export function defaultClipDir(): string {
  return path.join(os.tmpdir(), 'lva-motion-clips');
}

/** Makes (or finds cached) every clip; returns them in order. */
export async function ensureClips(specs: ClipSpec[], dir = defaultClipDir(), log: (s: string) => void = () => {}): Promise<Clip[]> {
  mkdirSync(dir, { recursive: true });
  const clips: Clip[] = [];
  for (const spec of specs) {
    const key = createHash('sha256').update(JSON.stringify({ v: GENERATOR_VERSION, spec })).digest('hex').slice(0, 12);
    const file = path.join(dir, `${spec.name}-${key}.mp4`);
    const truthFile = file.replace(/\.mp4$/, '.json');
    const truth = truthOf(spec);
    if (!existsSync(file) || !existsSync(truthFile)) {
      const t0 = performance.now();
      const partial = `${file}.partial.mp4`;
      await renderClip(spec, partial);
      renameSync(partial, file);
      writeFileSync(truthFile, `${JSON.stringify(truth, null, 1)}\n`);
      log(`generated ${path.basename(file)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    clips.push({ spec, truth: JSON.parse(readFileSync(truthFile, 'utf8')) as ClipTruth, file });
  }
  return clips;
}

// ---- drawing ----------------------------------------------------------------------------------

function hashSeed(s: string): number {
  return createHash('sha256').update(s).digest().readUInt32LE(0);
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Scene luma (float) under daylight, and an alternative reflectance pattern for IR. */
function makeScene(w: number, h: number, rand: () => number): { day: Float32Array; ir: Float32Array; mean: number } {
  const day = new Float32Array(w * h), ir = new Float32Array(w * h);
  const s = w / W720;
  // A few soft blobs (walls, bushes, a lit area) plus fine texture; IR sees another mix of the same
  // shapes (vegetation bright, painted surfaces dark), so the day→night change is not a gain/offset.
  const blobs = Array.from({ length: 14 }, () => ({
    x: rand() * w, y: rand() * h, r: (60 + rand() * 220) * s, a: (rand() - 0.5) * 70, b: (rand() - 0.5) * 90,
  }));
  const fx1 = 0.02 + rand() * 0.03, fy1 = 0.03 + rand() * 0.03, ph = rand() * 6.28;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let d = 100, n = 95;
      for (const bl of blobs) {
        const dx = (x - bl.x) / bl.r, dy = (y - bl.y) / bl.r;
        const e = Math.exp(-(dx * dx + dy * dy));
        d += bl.a * e;
        n += bl.b * e;
      }
      const tex = 10 * Math.sin((x / s) * fx1 + ph) * Math.cos((y / s) * fy1) + 6 * Math.sin(((x + 3 * y) / s) * 0.11);
      day[y * w + x] = d + tex;
      ir[y * w + x] = n + 0.6 * tex;
    }
  }
  let sum = 0;
  for (let i = 0; i < day.length; i++) sum += day[i]!;
  return { day, ir, mean: sum / day.length };
}

/** One scene per size (one camera, many recordings), drawn once per process. */
const scenes = new Map<string, ReturnType<typeof makeScene>>();
function sceneFor(w: number, h: number): ReturnType<typeof makeScene> {
  const key = `${w}x${h}`;
  let s = scenes.get(key);
  if (!s) scenes.set(key, (s = makeScene(w, h, mulberry32(20201))));
  return s;
}

/** Gaussian table: per row a random window into it, so every frame gets fresh-looking noise cheaply. */
function makeGaussTable(rand: () => number, n: number): Float32Array {
  const t = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(rand(), 1e-12), v = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    t[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) t[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return t;
}

/** Object x (left edge) at time t: still, then a triangle wave over the free width, then still. */
export function objectX(o: MovingObject, t: number, width: number): number {
  const s = width / W720;
  const size = o.size * s, margin = 40 * s;
  const span = width - size - 2 * margin;
  const travel = o.speed * s * (o.end - o.start);
  const x0 = margin + Math.max(0, (span - travel) / 2);
  const p = o.speed * s * (Math.min(Math.max(t, o.start), o.end) - o.start) + (x0 - margin);
  const period = 2 * span;
  const q = ((p % period) + period) % period;
  return margin + (q <= span ? q : period - q);
}

/** The object's own texture at (u, v) object pixels in 1280×720 terms. */
function objectTexture(u: number, v: number): number {
  return 12 * Math.sin((2 * Math.PI * u) / 32) * Math.sin((2 * Math.PI * v) / 32);
}

interface FrameLook {
  gain: number;
  offset: number;
  irMix: number; // 0 day, 1 night
}

function lookAt(l: Lighting, t: number): FrameLook {
  switch (l.kind) {
    case 'steady': return { gain: 1, offset: 0, irMix: 0 };
    case 'step': return { gain: t >= l.at ? 1 + l.step : 1, offset: 0, irMix: 0 };
    case 'pulse': return { gain: t >= l.at && t < l.until ? 1 + l.step : 1, offset: 0, irMix: 0 };
    case 'ramp': {
      const mid = (l.from + l.until) / 2;
      const up = Math.min(1, Math.max(0, (t - l.from) / (mid - l.from)));
      const down = Math.min(1, Math.max(0, (t - mid) / (l.until - mid)));
      const k = t < mid ? up : 1 - down;
      return { gain: 1 + (l.to - 1) * k, offset: 0, irMix: 0 };
    }
    case 'ir': {
      const night = t >= l.at && t < l.back;
      return night ? { gain: 1.25, offset: 8, irMix: 1 } : { gain: 1, offset: 0, irMix: 0 };
    }
  }
}

async function renderClip(spec: ClipSpec, out: string): Promise<void> {
  const { width: w, height: h, fps } = spec;
  const rand = mulberry32(spec.seed);
  const scene = sceneFor(w, h);
  const gauss = makeGaussTable(rand, 1 << 20);
  const yN = w * h, cN = (w >> 1) * (h >> 1);
  const frameBytes = yN + 2 * cN;
  const frames = Math.round(spec.seconds * fps);
  const dayU = 118, dayV = 136; // a slightly warm daylight tint; IR frames are neutral gray
  const s = w / W720;
  const gop = 2 * fps;
  const ff = spawn(findFfmpeg(), [
    '-nostdin', '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'rawvideo', '-pix_fmt', 'yuv420p', '-s', `${w}x${h}`, '-r', String(fps), '-i', 'pipe:0',
    '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23', '-pix_fmt', 'yuv420p', '-profile:v', 'main',
    '-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0', '-bf', '0',
    '-threads', '2', '-movflags', '+faststart', out,
  ], { stdio: ['pipe', 'ignore', 'pipe'] });
  let err = '';
  ff.stderr.on('data', (c) => (err = (err + c).slice(-4000)));
  const closed = new Promise<void>((resolve, reject) => {
    ff.on('error', reject);
    ff.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg encode of ${spec.name} failed (${code}): ${err}`))));
  });
  let exited = false;
  ff.once('close', () => { exited = true; ff.stdin.emit('drain'); });
  ff.stdin.on('error', () => {}); // EPIPE when ffmpeg dies: reported by `closed`
  const write = (buf: Buffer) => new Promise<void>((resolve, reject) => {
    if (exited) reject(new Error(`ffmpeg exited early: ${err}`));
    else if (ff.stdin.write(buf)) resolve();
    else ff.stdin.once('drain', () => (exited ? reject(new Error(`ffmpeg exited early: ${err}`)) : resolve()));
  });
  try {
    for (let f = 0; f < frames; f++) {
      const t = f / fps;
      const look = lookAt(spec.lighting, t);
      const sigma = NOISE_SIGMA[spec.noise] + (look.irMix > 0 ? 4 : 0);
      const buf = Buffer.allocUnsafe(frameBytes);
      const base = look.irMix > 0 ? scene.ir : scene.day;
      let ox0 = -1, ox1 = -1, oy0 = -1, oy1 = -1, contrast = 0, flat = true;
      if (spec.object) {
        const o = spec.object;
        ox0 = Math.round(objectX(o, t, w));
        ox1 = ox0 + Math.round(o.size * s);
        oy0 = Math.round(h / 2 - (o.size * s) / 2 + 60 * s);
        oy1 = oy0 + Math.round(o.size * s);
        contrast = o.contrast;
        flat = o.flat === true;
      }
      const gain = look.gain, offset = look.offset;
      for (let y = 0; y < h; y++) {
        const row = y * w;
        const nOff = sigma > 0 ? (rand() * (gauss.length - w)) | 0 : 0;
        const inRow = y >= oy0 && y < oy1;
        for (let x = 0; x < w; x++) {
          let v = base[row + x]!;
          if (inRow && x >= ox0 && x < ox1) v += flat ? contrast : contrast + objectTexture((x - ox0) / s, (y - oy0) / s);
          v = v * gain + offset;
          if (sigma > 0) v += sigma * gauss[nOff + x]!;
          buf[row + x] = v < 0 ? 0 : v > 255 ? 255 : v + 0.5;
        }
      }
      buf.fill(look.irMix > 0 ? 128 : dayU, yN, yN + cN);
      buf.fill(look.irMix > 0 ? 128 : dayV, yN + cN, yN + 2 * cN);
      await write(buf);
    }
  } finally {
    ff.stdin.end();
  }
  await closed;
}

// ---- CLI --------------------------------------------------------------------------------------

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const dirIdx = args.indexOf('--dir');
  const dir = dirIdx >= 0 ? args[dirIdx + 1]! : defaultClipDir();
  if (args.includes('--clean')) rmSync(dir, { recursive: true, force: true });
  const specs = args.includes('--quick') ? quickClipSet() : fullClipSet();
  const t0 = performance.now();
  const clips = await ensureClips(specs, dir, (s) => console.log(s));
  for (const c of clips) console.log(`${c.spec.name.padEnd(22)} ${c.spec.fps} fps ${c.spec.seconds} s  truth ${JSON.stringify(c.truth.motion)}  ${c.spec.about}`);
  console.log(`${clips.length} clips in ${dir} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}
