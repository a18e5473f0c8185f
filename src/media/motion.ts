/**
 * Pure motion-detection core behind `#Microsoft.Media.MediaGraphMotionDetectionProcessor`
 * (lva-spec §2.3). Frame in, motion regions out. No I/O, no timers, no wall clock: every time constant
 * is in seconds of media time, measured from the frames' `pts90k`, so the detector behaves the same at
 * 5, 15, 25 or 30 fps.
 *
 * Per frame:
 *  1. Block-average the gray frame down to a working grid of about 160×90 cells (whatever the input
 *     size). Averaging f×f pixels is the blur: it divides sensor noise by f at a quarter of the cost of
 *     a 3×3 blur at full resolution, and it makes every area rule resolution independent.
 *  2. Photometric compensation. The frame is modelled as `gain × background + offset`; gain and offset
 *     are fitted robustly (two hypotheses — pure offset from the median difference, and gain from the
 *     global moments — the one with more inliers is refined by least squares on its inliers). A
 *     brightness step, an auto-exposure ramp or an IR contrast change is therefore explained by two
 *     numbers and leaves no residual, while a close object (even 40 % of the frame) is an outlier of
 *     the fit and stays in the residual. The background is re-expressed in the new lighting every frame.
 *  3. Residual against the running-average background, thresholded at
 *     `max(minContrast, noiseFactor × σ)`, where σ is the larger of a global noise estimate (median
 *     absolute residual of the previous frames, robust to moving objects) and a per-pixel mean absolute
 *     deviation that only ever raises the bar (foliage, water, flicker teach their own pixels to need
 *     more change).
 *  4. Morphology-lite: a pixel survives when at least 4 of its 3×3 neighbourhood changed — kills
 *     isolated speckle and one-pixel lines, fills pinholes.
 *  5. Connected components (8-connected union-find) on a 3×3-cell grid of the cleaned mask, so
 *     fragments of one object a few pixels apart join; exact boxes are then taken from the cleaned
 *     pixels; boxes closer than MERGE_GAP_CELLS (5 % of the frame width) merge, so the two edges of a
 *     slowly moving object count together; components smaller than the preset's minimum area are dropped.
 *  6. Persistence: a region is reported only when a region was also seen near it in the previous
 *     analysed frame (≤ 1 s earlier). This removes single-frame events (raindrops, insects under IR,
 *     compression glitches) at the price of exactly one frame of onset latency.
 *  7. Global-change suppression: if the fitted lighting jumped by more than SHIFT_LIMIT levels between
 *     two frames, or more than GLOBAL_FRACTION of the frame still differs after compensation (nonlinear
 *     change: lamp in one corner, clipping, IR cut filter, camera moved), nothing is reported, the
 *     background is reset to the current frame and re-learnt fast for RELEARN_S seconds.
 *
 * The background learns with τ = 2 s where nothing changed and barely under changed pixels, so
 * moving objects do not burn into it; a pixel that has differed for 2 s without a break (a parked car,
 * a ghost) is absorbed with τ = 0.5 s. The first WARMUP_S seconds, and the first frames after a discontinuity
 * (timestamps going back or jumping ahead by more than 10 s, or a new frame size), only learn.
 */
import type { Frame } from './sample.js';
import { TICKS_PER_SECOND } from './sample.js';
import type { MotionDetectionConfig } from '../graph/model.js';

export type MotionSensitivity = MotionDetectionConfig['sensitivity'];

/** A box normalised to the frame: 0..1, origin top-left. */
export interface MotionRegion {
  l: number;
  t: number;
  w: number;
  h: number;
}

export interface MotionResult {
  /** True when at least one region passed every rule (area, persistence) on this frame. */
  motion: boolean;
  /** Reported regions, largest first; empty when `motion` is false. */
  regions: MotionRegion[];
  /** Fraction (0..1) of the frame that differs from the background after noise cleaning. */
  changedFraction: number;
  /** Why nothing was reported although something (may have) changed. */
  suppressed?: 'global-change' | 'warming-up' | 'noise';
}

export interface MotionDetectorOptions {
  sensitivity: MotionSensitivity;
  /** Expected frame size; a frame of another size re-initialises the detector (new warm-up). */
  width: number;
  height: number;
}

export interface SensitivityPreset {
  /** Smallest luma difference (0..255 levels) between an object and the background that can count,
   * whatever the noise. */
  readonly minContrast: number;
  /** The threshold is also at least this many noise standard deviations of the residual. */
  readonly noiseFactor: number;
  /** Smallest changed area that counts, as a fraction of the frame (fragments within a few pixels of
   * each other add up). */
  readonly minAreaFraction: number;
}

/**
 * What each sensitivity catches. At 320×180 (57 600 px), on a clean camera (noise σ ≲ 2 levels):
 *
 * | preset | smallest object              | min contrast | in 1280×720 terms        |
 * |--------|------------------------------|--------------|--------------------------|
 * | High   | 46 px  (0.08 %, ≈ 7×7 px)    | 8 levels     | ≈ 27×27 px               |
 * | Medium | 104 px (0.18 %, ≈ 10×10 px)  | 12 levels    | ≈ 41×41 px               |
 * | Low    | 432 px (0.75 %, ≈ 21×21 px)  | 20 levels    | ≈ 83×83 px               |
 *
 * On noisier video the contrast bar rises to `noiseFactor × σ` (e.g. σ = 4 on the working grid →
 * High 16, Medium 18, Low 20 levels; the working-grid averaging halves σ at 320×180). The factors are
 * well above the 3σ of Gaussian noise because σ comes from the median residual and H.264 noise is not
 * Gaussian: with the decoder's loop filter skipped (the ingest does, for speed) heavy sensor noise
 * leaves blocky patches of 12+ levels over 1–2 % of the frame for a few frames; at 3.0/3.5/4.0 the
 * benchmark's heavy-noise clip (σ 8 at 720p) gave false events at High and Medium, at 4.0/4.5/5.0 none
 * at Medium and three short ones at High, with no moving object of the set lost. High catches a
 * 32×32 px object in 720p (14×8 px at 320×180) of moderate contrast (≥ 30 levels) moving at 50 px/s.
 * Fragments within MERGE_GAP_CELLS of each other add up.
 * Measured behaviour and the user-facing version of this table: docs/motion.md (bench/motion-accuracy.ts).
 * Medium was 0.25 % until the benchmark showed a 64 px object walking off at 10 px/s in 720p took 1.2 s
 * to reach it; at 0.18 % (with the fragment merge) it takes 0.9 s, and no noise or lighting clip of
 * the set produces a report.
 */
export const SENSITIVITY_PRESETS: Readonly<Record<MotionSensitivity, SensitivityPreset>> = Object.freeze({
  High: Object.freeze({ minContrast: 8, noiseFactor: 4.0, minAreaFraction: 0.0008 }),
  Medium: Object.freeze({ minContrast: 12, noiseFactor: 4.5, minAreaFraction: 0.0018 }),
  Low: Object.freeze({ minContrast: 20, noiseFactor: 5.0, minAreaFraction: 0.0075 }),
});

// ---- time constants (seconds of media time) ---------------------------------------------------
const WARMUP_S = 0.5;
/** Background time constant where nothing changed: short enough to follow sunrise, shadows of clouds
 * drifting slowly and auto-exposure creep; long enough that a slow walker is not absorbed. */
const BG_TAU_S = 2;
/** Under changed pixels the background barely learns, so an object that lingers (turns round, waits a
 * second) leaves no imprint behind; things that stay are absorbed by the ABSORB rule instead. */
const BG_TAU_CHANGED_S = 30;
/** During warm-up and re-learning after a global change. */
const FAST_TAU_S = 0.1;
/** Global noise estimate smoothing. */
const NOISE_TAU_S = 1;
/** Per-pixel deviation: unchanged pixels, and changed pixels (which push it towards the global bar,
 * never beyond, so a stationary person is not tuned out within seconds). */
const PIXEL_DEV_TAU_S = 4;
/** A pixel that has differed continuously for this long is not a passing object: a ghost (the
 * background learnt something that has left, e.g. during warm-up), a parked car, a moved chair. It is
 * then absorbed with ABSORB_TAU_S, like Frigate's "update after 10 motion frames" and Motion's
 * static_object_time. Objects crossing a pixel take well under 2 s (a 30 px object at 50 px/s: 0.6 s). */
const ABSORB_AFTER_S = 2;
const ABSORB_TAU_S = 0.5;
const PIXEL_DEV_TAU_CHANGED_S = 16;
const RELEARN_S = 0.5;
/** A gap longer than this (or time going backwards) is a discontinuity: start over with a warm-up. */
const DISCONTINUITY_S = 10;
/** Persistence: the previous frame's regions count only if that frame is at most this old. */
const PERSIST_MAX_GAP_S = 1;

// ---- geometry and decision constants ---------------------------------------------------------
/** Working grid area (cells); 160×90 for 16:9 input. */
const TARGET_WORK_CELLS = 160 * 90;
/** Labelling grid: one label cell per 3×3 working cells, so fragments ≲ 3 cells apart join. */
const LABEL_CELL = 3;
/** Lighting jump between two frames (mean absolute change of the fitted model, levels) treated as a
 * light switch even if compensation explains it: real switches are never perfectly linear. */
const SHIFT_LIMIT = 10;
/** Fraction of the frame that still differs after compensation beyond which the change is global. */
const GLOBAL_FRACTION = 0.6;
/** Persistence search margin around the previous regions, fraction of the frame side (a 5 fps stream
 * still links an object moving 0.5 frame widths per second). */
const PERSIST_MARGIN = 0.1;
/** Mean absolute deviation → σ for a normal distribution. */
const MAD_TO_SIGMA = 1.2533;
/** Median absolute value → σ for a normal distribution. */
const MEDIAN_ABS_TO_SIGMA = 1 / 0.6745;
/** Ridge term (levels²) pulling the fitted gain to 1 when the scene has little texture (night). */
const GAIN_RIDGE = 16;
const MIN_GAIN = 0.2;
const MAX_GAIN = 5;
const INITIAL_NOISE_SIGMA = 2;
/** Absolute-residual histogram: 1/8-level bins up to 64 levels. */
const ABS_HIST_SCALE = 8;
const ABS_HIST_BINS = 512;
const MAX_REGIONS = 16;
/** Components whose boxes come within this many working cells (5 % of the frame width at 160 cells)
 * are one object before the area rule: for its first second a slowly moving object shows only its
 * leading and trailing edges (its width apart) and bits of its textured inside, each too small alone. */
const MERGE_GAP_CELLS = 8;

export class MotionDetector {
  readonly sensitivity: MotionSensitivity;
  private readonly preset: SensitivityPreset;

  // Geometry (reallocated only when the frame size changes).
  private frameW = 0;
  private frameH = 0;
  private factor = 1;
  private workW = 0;
  private workH = 0;
  private workN = 0;
  private cellW = 0;
  private cellH = 0;
  private minAreaCells = 1;
  private marginX = 1;
  private marginY = 1;

  private work = new Float32Array(0); // current frame on the working grid
  private background = new Float32Array(0);
  private pixelDev = new Float32Array(0); // per-pixel mean absolute residual
  private changedFor = new Float32Array(0); // seconds each pixel has differed without interruption
  private rawMask = new Uint8Array(0);
  private rowSum = new Uint8Array(0); // horizontal 3-sums of rawMask
  private cleanMask = new Uint8Array(0);
  private rowRaw = new Int32Array(0); // raw changed cells per working row (residualAndLearn)
  private rowKept = new Int32Array(0); // cleaned changed cells per working row (morphology)
  private cellOn = new Uint8Array(0);
  private cellLabel = new Int32Array(0); // provisional label, then compact component id + 1
  private parent = new Int32Array(0);
  private compId = new Int32Array(0);
  private compX0 = new Int32Array(0);
  private compY0 = new Int32Array(0);
  private compX1 = new Int32Array(0);
  private compY1 = new Int32Array(0);
  private compCount = new Int32Array(0);
  private readonly diffHist = new Int32Array(511);
  private readonly absHist = new Int32Array(ABS_HIST_BINS);

  // Candidates of the previous analysed frame (working-grid boxes), for persistence.
  private readonly prevX0 = new Int32Array(MAX_REGIONS * 4);
  private readonly prevY0 = new Int32Array(MAX_REGIONS * 4);
  private readonly prevX1 = new Int32Array(MAX_REGIONS * 4);
  private readonly prevY1 = new Int32Array(MAX_REGIONS * 4);
  private prevCount = 0;
  private prevPts = 0;

  // Temporal state.
  private started = false;
  private lastPts = 0;
  private warmupUntil = 0;
  private relearnUntil = -Infinity;
  private noiseSigma = INITIAL_NOISE_SIGMA;

  // Photometric fit of the current frame.
  private gain = 1;
  private offset = 0;
  private lightingShift = 0;
  private sampleCount = 1;

  constructor(options: MotionDetectorOptions) {
    const preset = SENSITIVITY_PRESETS[options.sensitivity];
    if (!preset) throw new RangeError(`unknown motion sensitivity: ${String(options.sensitivity)}`);
    this.sensitivity = options.sensitivity;
    this.preset = preset;
    this.allocate(options.width, options.height);
  }

  /** Forget everything learnt; the next frame starts a new warm-up. */
  reset(): void {
    this.started = false;
    this.prevCount = 0;
    this.relearnUntil = -Infinity;
    this.noiseSigma = INITIAL_NOISE_SIGMA;
  }

  process(frame: Frame): MotionResult {
    if (frame.width !== this.frameW || frame.height !== this.frameH) {
      this.allocate(frame.width, frame.height);
      this.reset();
    }
    if (frame.data.length < frame.width * frame.height) {
      throw new RangeError(`frame data has ${frame.data.length} bytes, expected ${frame.width * frame.height}`);
    }
    const pts = frame.pts90k;
    this.downscale(frame.data);

    const dtTicks = pts - this.lastPts;
    if (!this.started || dtTicks <= 0 || dtTicks > DISCONTINUITY_S * TICKS_PER_SECOND) {
      this.startOver(pts);
      return { motion: false, regions: [], changedFraction: 0, suppressed: 'warming-up' };
    }
    this.lastPts = pts;
    const dt = dtTicks / TICKS_PER_SECOND;
    const warming = pts < this.warmupUntil;
    const relearning = pts < this.relearnUntil;
    const fast = warming || relearning;

    this.fitLighting();
    const rawChanged = this.residualAndLearn(
      dt,
      fast ? rate(dt, FAST_TAU_S) : rate(dt, ABSORB_TAU_S),
      fast ? rate(dt, FAST_TAU_S) : rate(dt, BG_TAU_S),
      fast ? rate(dt, FAST_TAU_S) : rate(dt, BG_TAU_CHANGED_S),
      fast ? rate(dt, FAST_TAU_S) : rate(dt, PIXEL_DEV_TAU_S),
      fast ? rate(dt, FAST_TAU_S) : rate(dt, PIXEL_DEV_TAU_CHANGED_S),
    );
    this.updateNoise(fast ? rate(dt, FAST_TAU_S) : rate(dt, NOISE_TAU_S));

    if (warming) {
      this.prevCount = 0;
      return { motion: false, regions: [], changedFraction: 0, suppressed: 'warming-up' };
    }
    const rawFraction = rawChanged / this.workN;
    if (this.lightingShift > SHIFT_LIMIT || rawFraction > GLOBAL_FRACTION) {
      // Light switch, IR day/night, camera moved: adopt the new scene as background and learn fast.
      this.background.set(this.work);
      this.changedFor.fill(0);
      this.relearnUntil = pts + RELEARN_S * TICKS_PER_SECOND;
      this.prevCount = 0;
      return { motion: false, regions: [], changedFraction: rawFraction, suppressed: 'global-change' };
    }
    if (relearning) {
      this.prevCount = 0;
      return { motion: false, regions: [], changedFraction: rawFraction, suppressed: 'global-change' };
    }
    if (rawChanged === 0) {
      this.prevCount = 0;
      return { motion: false, regions: [], changedFraction: 0 };
    }

    const cleanChanged = this.morphology();
    const changedFraction = cleanChanged / this.workN;
    if (cleanChanged === 0) {
      // Only isolated speckle: ordinary sensor noise, nothing to flag.
      this.prevCount = 0;
      return { motion: false, regions: [], changedFraction: 0 };
    }
    const components = this.label();
    const candidates = this.mergeAndFilter(components);
    const regions = this.persistent(candidates, pts);
    if (regions.length === 0) return { motion: false, regions, changedFraction, suppressed: 'noise' };
    return { motion: true, regions, changedFraction };
  }

  // ------------------------------------------------------------------------------------------
  private allocate(width: number, height: number): void {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
      throw new RangeError(`invalid frame size ${width}x${height}`);
    }
    this.frameW = width;
    this.frameH = height;
    const f = Math.max(1, Math.round(Math.sqrt((width * height) / TARGET_WORK_CELLS)));
    // Never average away a whole dimension.
    this.factor = Math.max(1, Math.min(f, width, height));
    this.workW = Math.floor(width / this.factor);
    this.workH = Math.floor(height / this.factor);
    const n = (this.workN = this.workW * this.workH);
    this.cellW = Math.ceil(this.workW / LABEL_CELL);
    this.cellH = Math.ceil(this.workH / LABEL_CELL);
    const cells = this.cellW * this.cellH;
    this.minAreaCells = Math.max(2, Math.round(this.preset.minAreaFraction * n));
    this.marginX = Math.max(1, Math.round(PERSIST_MARGIN * this.workW));
    this.marginY = Math.max(1, Math.round(PERSIST_MARGIN * this.workH));
    this.work = new Float32Array(n);
    this.background = new Float32Array(n);
    this.pixelDev = new Float32Array(n);
    this.changedFor = new Float32Array(n);
    this.rawMask = new Uint8Array(n);
    this.rowSum = new Uint8Array(n);
    this.cleanMask = new Uint8Array(n);
    this.rowRaw = new Int32Array(this.workH);
    this.rowKept = new Int32Array(this.workH);
    this.cellOn = new Uint8Array(cells);
    this.cellLabel = new Int32Array(cells);
    this.parent = new Int32Array(cells + 1);
    this.compId = new Int32Array(cells + 1);
    this.compX0 = new Int32Array(cells);
    this.compY0 = new Int32Array(cells);
    this.compX1 = new Int32Array(cells);
    this.compY1 = new Int32Array(cells);
    this.compCount = new Int32Array(cells);
  }

  private startOver(pts: number): void {
    this.started = true;
    this.lastPts = pts;
    this.warmupUntil = pts + WARMUP_S * TICKS_PER_SECOND;
    this.relearnUntil = -Infinity;
    this.prevCount = 0;
    this.background.set(this.work);
    this.pixelDev.fill(0);
    this.changedFor.fill(0);
    this.noiseSigma = INITIAL_NOISE_SIGMA;
  }

  /** Block average factor×factor pixels into the working grid; remainder rows/columns are ignored. */
  private downscale(src: Uint8Array): void {
    const f = this.factor, W = this.frameW, ww = this.workW, wh = this.workH, work = this.work;
    if (f === 1) {
      for (let y = 0; y < wh; y++) {
        const s = y * W, o = y * ww;
        for (let x = 0; x < ww; x++) work[o + x] = src[s + x];
      }
      return;
    }
    if (f === 2 && W % 4 === 0) {
      // Four pixels per 32-bit little-endian load (a DataView, so any byte offset works): masking out
      // alternate bytes and adding gives the sums of the two horizontal pairs in the two 16-bit halves;
      // adding the row below completes two 2×2 cells (≤ 1020, no carry between the halves). Exact
      // integer sums, so the same floats as the byte loop below.
      const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
      const pairs = ww >>> 1; // ww = W / 2 is even
      for (let y = 0; y < wh; y++) {
        let s = 2 * y * W;
        let o = y * ww;
        for (let k = 0; k < pairs; k++, s += 4, o += 2) {
          const a = view.getUint32(s, true), c = view.getUint32(s + W, true);
          const t = (a & 0x00ff00ff) + ((a >>> 8) & 0x00ff00ff) + (c & 0x00ff00ff) + ((c >>> 8) & 0x00ff00ff);
          work[o] = (t & 0xffff) * 0.25;
          work[o + 1] = (t >>> 16) * 0.25;
        }
      }
      return;
    }
    if (f === 2) {
      for (let y = 0; y < wh; y++) {
        let s = 2 * y * W;
        const o = y * ww;
        for (let x = 0; x < ww; x++, s += 2) {
          work[o + x] = (src[s] + src[s + 1] + src[s + W] + src[s + W + 1]) * 0.25;
        }
      }
      return;
    }
    const inv = 1 / (f * f);
    for (let y = 0; y < wh; y++) {
      const o = y * ww;
      for (let x = 0; x < ww; x++) work[o + x] = 0;
      for (let dy = 0; dy < f; dy++) {
        let s = (y * f + dy) * W;
        for (let x = 0; x < ww; x++) {
          let sum = 0;
          for (let dx = 0; dx < f; dx++, s++) sum += src[s];
          work[o + x] += sum;
        }
      }
      for (let x = 0; x < ww; x++) work[o + x] *= inv;
    }
  }

  /**
   * Robust fit of `work ≈ gain × background + offset` on a 2×2-subsampled grid. Two hypotheses —
   * offset only (median difference: right for brightness steps and for large objects, which are a
   * minority of pixels) and moments (std/mean ratio: right for contrast changes) — are scored by inlier
   * count; the winner is refined twice by ridge least squares on its inliers.
   */
  private fitLighting(): void {
    const ww = this.workW, wh = this.workH, bg = this.background, work = this.work, hist = this.diffHist;
    // Every 3rd cell of every 3rd row (1 600 samples at 160×90) pins two parameters and a median well.
    const step = this.workN >= 900 ? 3 : 1;
    hist.fill(0);
    let n = 0, sx = 0, sy = 0, sxx = 0, syy = 0;
    for (let y = 0; y < wh; y += step) {
      const o = y * ww;
      for (let x = 0; x < ww; x += step) {
        const bx = bg[o + x], fy = work[o + x];
        n++; sx += bx; sy += fy; sxx += bx * bx; syy += fy * fy;
        let d = Math.round(fy - bx) + 255;
        if (d < 0) d = 0; else if (d > 510) d = 510;
        hist[d]++;
      }
    }
    const mx = sx / n, my = sy / n;
    const varX = Math.max(0, sxx / n - mx * mx), varY = Math.max(0, syy / n - my * my);
    let medianDiff = 0;
    for (let i = 0, acc = 0, half = n / 2; i < 511; i++) {
      acc += hist[i];
      if (acc >= half) { medianDiff = i - 255; break; }
    }
    const inlierLimit = Math.max(10, 4 * this.noiseSigma);
    // Hypothesis 1: offset only. Hypothesis 2: moments.
    const a1 = 1, b1 = medianDiff;
    const a2 = varX > 1 ? Math.sqrt(varY / varX) : 1, b2 = my - a2 * mx;
    // Both hypotheses scored in one pass over the samples (same sums as two separate passes).
    const s1 = this.sums[this.sumSlot]!, s2 = this.sums[this.sumSlot ^ 1]!;
    this.inlierSumsPair(s1, a1, b1, s2, a2, b2, inlierLimit, step);
    const n1 = s1.n;
    let best = n1 >= s2.n ? s1 : s2;
    let a = n1 >= s2.n ? a1 : a2, b = n1 >= s2.n ? b1 : b2;
    for (let iter = 0; iter < 2 && best.n >= 8; iter++) {
      const bx = best.sx / best.n, by = best.sy / best.n;
      const cov = best.sxy / best.n - bx * by, vx = Math.max(0, best.sxx / best.n - bx * bx);
      a = (cov + GAIN_RIDGE) / (vx + GAIN_RIDGE);
      if (a < MIN_GAIN) a = MIN_GAIN; else if (a > MAX_GAIN) a = MAX_GAIN;
      b = by - a * bx;
      if (iter === 0) best = this.inlierSums(a, b, inlierLimit, step);
    }
    this.gain = a;
    this.offset = b;
    // Residual histogram on the same samples, for the global noise estimate (median |residual|).
    const absHist = this.absHist;
    absHist.fill(0);
    for (let y = 0; y < wh; y += step) {
      const o = y * ww;
      for (let x = 0; x < ww; x += step) {
        const r = work[o + x] - a * bg[o + x] - b;
        let h = (Math.abs(r) * ABS_HIST_SCALE) | 0;
        if (h >= ABS_HIST_BINS) h = ABS_HIST_BINS - 1;
        absHist[h]++;
      }
    }
    this.sampleCount = n;
    // Mean absolute change the lighting model applies to the background (upper-bound approximation).
    this.lightingShift = Math.abs((a - 1) * mx + b) + Math.abs(a - 1) * Math.sqrt(varX);
  }

  private readonly sums = [
    { n: 0, sx: 0, sy: 0, sxx: 0, sxy: 0 },
    { n: 0, sx: 0, sy: 0, sxx: 0, sxy: 0 },
  ];
  private sumSlot = 0;

  /** inlierSums for two lines at once, into `s` and `t` (one pass over the samples). */
  private inlierSumsPair(
    s: { n: number; sx: number; sy: number; sxx: number; sxy: number }, a: number, b: number,
    t: { n: number; sx: number; sy: number; sxx: number; sxy: number }, c: number, d: number,
    limit: number, step: number,
  ): void {
    const ww = this.workW, wh = this.workH, bg = this.background, work = this.work;
    let n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    let m = 0, tx = 0, ty = 0, txx = 0, txy = 0;
    for (let y = 0; y < wh; y += step) {
      const o = y * ww;
      for (let x = 0; x < ww; x += step) {
        const bx = bg[o + x], fy = work[o + x];
        const r = fy - a * bx - b;
        if (r < limit && r > -limit) { n++; sx += bx; sy += fy; sxx += bx * bx; sxy += bx * fy; }
        const q = fy - c * bx - d;
        if (q < limit && q > -limit) { m++; tx += bx; ty += fy; txx += bx * bx; txy += bx * fy; }
      }
    }
    s.n = n; s.sx = sx; s.sy = sy; s.sxx = sxx; s.sxy = sxy;
    t.n = m; t.sx = tx; t.sy = ty; t.sxx = txx; t.sxy = txy;
  }

  /** Least-squares sums over the pixels within `limit` of `a·bg + b` (two alternating slots, so the
   * fit allocates nothing per frame). */
  private inlierSums(a: number, b: number, limit: number, step: number) {
    const s = this.sums[this.sumSlot];
    this.sumSlot ^= 1;
    const ww = this.workW, wh = this.workH, bg = this.background, work = this.work;
    let n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (let y = 0; y < wh; y += step) {
      const o = y * ww;
      for (let x = 0; x < ww; x += step) {
        const bx = bg[o + x], fy = work[o + x];
        const r = fy - a * bx - b;
        if (r < limit && r > -limit) { n++; sx += bx; sy += fy; sxx += bx * bx; sxy += bx * fy; }
      }
    }
    s.n = n; s.sx = sx; s.sy = sy; s.sxx = sxx; s.sxy = sxy;
    return s;
  }

  /**
   * The hot loop: residual against the relit background, raw change mask, and the
   * background / per-pixel deviation update (relit, then blended towards the frame). Returns the number
   * of changed working cells.
   */
  private residualAndLearn(
    dt: number, alphaAbsorb: number, alphaBg: number, alphaBgChanged: number, alphaDev: number, alphaDevChanged: number,
  ): number {
    const ww = this.workW, wh = this.workH, work = this.work, bg = this.background, dev = this.pixelDev, held = this.changedFor;
    const raw = this.rawMask, rowRaw = this.rowRaw;
    const a = this.gain, b = this.offset;
    const baseThr = Math.max(this.preset.minContrast, this.preset.noiseFactor * this.noiseSigma);
    const pixFactor = this.preset.noiseFactor * MAD_TO_SIGMA;
    let changed = 0;
    for (let y = 0, i = 0; y < wh; y++) {
      const rowStart = changed;
      for (const end = i + ww; i < end; i++) {
        const predicted = a * bg[i] + b;
        const r = work[i] - predicted;
        // Branch-free |r| and max(): the sign of a residual is noise, and a branch on it mispredicts.
        const ar = Math.abs(r);
        let d = dev[i] * a;
        const thr = Math.max(pixFactor * d, baseThr);
        if (ar > thr) {
          raw[i] = 1;
          changed++;
          const since = held[i] + dt;
          held[i] = since;
          bg[i] = predicted + (since > ABSORB_AFTER_S ? alphaAbsorb : alphaBgChanged) * r;
          d += alphaDevChanged * ((ar < baseThr ? ar : baseThr) - d);
        } else {
          raw[i] = 0;
          held[i] = 0;
          bg[i] = predicted + alphaBg * r;
          d += alphaDev * (ar - d);
        }
        dev[i] = d;
      }
      rowRaw[y] = changed - rowStart;
    }
    return changed;
  }

  /** Global noise σ of the residual from the median absolute residual of this frame's samples, smoothed. */
  private updateNoise(alpha: number): void {
    const hist = this.absHist, half = this.sampleCount / 2;
    let acc = 0, bin = 0;
    for (; bin < ABS_HIST_BINS; bin++) {
      acc += hist[bin];
      if (acc >= half) break;
    }
    const sigma = ((bin + 0.5) / ABS_HIST_SCALE) * MEDIAN_ABS_TO_SIGMA;
    this.noiseSigma += alpha * (sigma - this.noiseSigma);
  }

  /** 3×3 "at least 4 changed" filter into cleanMask; marks label cells. Returns surviving count.
   * Rows whose 3-row neighbourhood has no raw change (rowRaw, from residualAndLearn) are cleared
   * without being looked at; rowKept records the survivors per row for label(). */
  private morphology(): number {
    const ww = this.workW, wh = this.workH, raw = this.rawMask, rs = this.rowSum, clean = this.cleanMask;
    const rowRaw = this.rowRaw, rowKept = this.rowKept;
    const cellOn = this.cellOn, cw = this.cellW;
    // Horizontal 3-sums, only where a row (or the row above/below it) changed.
    for (let y = 0; y < wh; y++) {
      if (rowRaw[y] === 0) continue; // rs of this row is never read unless a neighbour changed; see below
      const o = y * ww;
      if (ww === 1) { rs[o] = raw[o]; continue; }
      rs[o] = raw[o] + raw[o + 1];
      for (let x = 1; x < ww - 1; x++) rs[o + x] = raw[o + x - 1] + raw[o + x] + raw[o + x + 1];
      rs[o + ww - 1] = raw[o + ww - 2] + raw[o + ww - 1];
    }
    cellOn.fill(0);
    let kept = 0;
    for (let y = 0; y < wh; y++) {
      const o = y * ww;
      const hasUp = y > 0 && rowRaw[y - 1] !== 0, hasMid = rowRaw[y] !== 0, hasDown = y < wh - 1 && rowRaw[y + 1] !== 0;
      if (!hasUp && !hasMid && !hasDown) {
        // No change within one row: every 3×3 count is 0.
        clean.fill(0, o, o + ww);
        rowKept[y] = 0;
        continue;
      }
      // A row without raw change contributes 0 (its rs entries are stale and not read).
      const up = hasUp ? o - ww : -1, mid = hasMid ? o : -1, down = hasDown ? o + ww : -1;
      const cellRow = ((y / LABEL_CELL) | 0) * cw;
      const rowStart = kept;
      for (let x = 0; x < ww; x++) {
        let count = 0;
        if (mid >= 0) count += rs[mid + x];
        if (up >= 0) count += rs[up + x];
        if (down >= 0) count += rs[down + x];
        if (count >= 4) {
          clean[o + x] = 1;
          kept++;
          cellOn[cellRow + ((x / LABEL_CELL) | 0)] = 1;
        } else clean[o + x] = 0;
      }
      rowKept[y] = kept - rowStart;
    }
    return kept;
  }

  /** Union-find labelling of the label cells (8-connected), then exact boxes and pixel counts from the
   * cleaned mask. Returns the number of components (in comp* arrays). */
  private label(): number {
    const cw = this.cellW, ch = this.cellH, on = this.cellOn, lab = this.cellLabel, parent = this.parent;
    let next = 0;
    for (let cy = 0; cy < ch; cy++) {
      const o = cy * cw;
      for (let cx = 0; cx < cw; cx++) {
        const c = o + cx;
        if (!on[c]) { lab[c] = 0; continue; }
        let l = 0;
        if (cx > 0 && lab[c - 1]) l = lab[c - 1];
        if (cy > 0) {
          const u = c - cw;
          if (cx > 0 && lab[u - 1]) l = l ? this.union(l, lab[u - 1]) : lab[u - 1];
          if (lab[u]) l = l ? this.union(l, lab[u]) : lab[u];
          if (cx < cw - 1 && lab[u + 1]) l = l ? this.union(l, lab[u + 1]) : lab[u + 1];
        }
        if (!l) { l = ++next; parent[l] = l; }
        lab[c] = l;
      }
    }
    // Compact ids: compId[root] = id + 1.
    const compId = this.compId;
    for (let l = 1; l <= next; l++) compId[l] = 0;
    let count = 0;
    for (let c = 0, cells = cw * ch; c < cells; c++) {
      if (!lab[c]) continue;
      const root = this.find(lab[c]);
      if (!compId[root]) {
        compId[root] = ++count;
        const k = count - 1;
        this.compX0[k] = 0x7fffffff; this.compY0[k] = 0x7fffffff;
        this.compX1[k] = -1; this.compY1[k] = -1; this.compCount[k] = 0;
      }
      lab[c] = compId[root];
    }
    // Exact extents from the cleaned pixels.
    const ww = this.workW, wh = this.workH, clean = this.cleanMask;
    const x0 = this.compX0, y0 = this.compY0, x1 = this.compX1, y1 = this.compY1, cnt = this.compCount;
    const rowKept = this.rowKept;
    for (let y = 0; y < wh; y++) {
      if (rowKept[y] === 0) continue;
      const o = y * ww, cellRow = ((y / LABEL_CELL) | 0) * cw;
      for (let x = 0; x < ww; x++) {
        if (!clean[o + x]) continue;
        const k = lab[cellRow + ((x / LABEL_CELL) | 0)] - 1;
        if (x < x0[k]) x0[k] = x;
        if (x > x1[k]) x1[k] = x;
        if (y < y0[k]) y0[k] = y;
        if (y > y1[k]) y1[k] = y;
        cnt[k]++;
      }
    }
    return count;
  }

  private find(i: number): number {
    const parent = this.parent;
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]]; // path halving
      i = parent[i];
    }
    return i;
  }

  /** Joins two label trees; the smaller label becomes the root so results never depend on visit order. */
  private union(p: number, q: number): number {
    const rp = this.find(p), rq = this.find(q);
    if (rp === rq) return rp;
    if (rp < rq) { this.parent[rq] = rp; return rp; }
    this.parent[rp] = rq;
    return rq;
  }

  /** Merge components whose boxes touch or overlap (compacting in place), drop those below the minimum
   * area. Returns the number of candidates left at the front of the comp* arrays. */
  private mergeAndFilter(count: number): number {
    const x0 = this.compX0, y0 = this.compY0, x1 = this.compX1, y1 = this.compY1, cnt = this.compCount;
    const g = MERGE_GAP_CELLS;
    let n = count;
    let merged = true;
    while (merged) {
      merged = false;
      for (let i = 0; i < n; i++) {
        for (let j = i + 1; j < n; j++) {
          if (x0[j] > x1[i] + g || x0[i] > x1[j] + g || y0[j] > y1[i] + g || y0[i] > y1[j] + g) continue;
          if (x0[j] < x0[i]) x0[i] = x0[j];
          if (y0[j] < y0[i]) y0[i] = y0[j];
          if (x1[j] > x1[i]) x1[i] = x1[j];
          if (y1[j] > y1[i]) y1[i] = y1[j];
          cnt[i] += cnt[j];
          n--;
          x0[j] = x0[n]; y0[j] = y0[n]; x1[j] = x1[n]; y1[j] = y1[n]; cnt[j] = cnt[n];
          j = i; // the grown box may now touch earlier ones
          merged = true;
        }
      }
    }
    let kept = 0;
    for (let i = 0; i < n; i++) {
      if (cnt[i] < this.minAreaCells) continue;
      x0[kept] = x0[i]; y0[kept] = y0[i]; x1[kept] = x1[i]; y1[kept] = y1[i]; cnt[kept] = cnt[i];
      kept++;
    }
    return kept;
  }

  /** Keep the candidates that have a previous-frame candidate nearby; remember this frame's
   * candidates; return the kept ones normalised to the frame, largest first. */
  private persistent(n: number, pts: number): MotionRegion[] {
    const x0 = this.compX0, y0 = this.compY0, x1 = this.compX1, y1 = this.compY1, cnt = this.compCount;
    const px0 = this.prevX0, py0 = this.prevY0, px1 = this.prevX1, py1 = this.prevY1;
    const prevValid = this.prevCount > 0 && pts - this.prevPts <= PERSIST_MAX_GAP_S * TICKS_PER_SECOND;
    const mx = this.marginX, my = this.marginY;
    // Largest first (selection by repeated max; n is small), confirming as we go.
    const regions: MotionRegion[] = [];
    const order = Math.min(n, this.prevX0.length);
    for (let rank = 0; rank < order; rank++) {
      let best = rank;
      for (let i = rank + 1; i < n; i++) if (cnt[i] > cnt[best]) best = i;
      if (best !== rank) {
        swap(x0, rank, best); swap(y0, rank, best); swap(x1, rank, best); swap(y1, rank, best); swap(cnt, rank, best);
      }
      if (!prevValid || regions.length >= MAX_REGIONS) continue;
      for (let p = 0; p < this.prevCount; p++) {
        if (x0[rank] > px1[p] + mx || px0[p] > x1[rank] + mx || y0[rank] > py1[p] + my || py0[p] > y1[rank] + my) continue;
        regions.push(this.normalise(x0[rank], y0[rank], x1[rank], y1[rank]));
        break;
      }
    }
    for (let i = 0; i < order; i++) { px0[i] = x0[i]; py0[i] = y0[i]; px1[i] = x1[i]; py1[i] = y1[i]; }
    this.prevCount = order;
    this.prevPts = pts;
    return regions;
  }

  private normalise(x0: number, y0: number, x1: number, y1: number): MotionRegion {
    const f = this.factor, W = this.frameW, H = this.frameH;
    // A box touching the last working column/row also covers the remainder pixels not averaged.
    const right = x1 + 1 >= this.workW ? W : (x1 + 1) * f;
    const bottom = y1 + 1 >= this.workH ? H : (y1 + 1) * f;
    return { l: (x0 * f) / W, t: (y0 * f) / H, w: (right - x0 * f) / W, h: (bottom - y0 * f) / H };
  }
}

/** Per-frame blend factor of an exponential average with time constant `tau` over `dt` seconds. */
function rate(dt: number, tau: number): number {
  return 1 - Math.exp(-dt / tau);
}

function swap(a: Int32Array, i: number, j: number): void {
  const t = a[i];
  a[i] = a[j];
  a[j] = t;
}
