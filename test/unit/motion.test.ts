import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { MotionDetector, SENSITIVITY_PRESETS, type MotionResult, type MotionSensitivity } from '../../src/media/motion.js';
import type { Frame } from '../../src/media/sample.js';
import { prng } from '../helpers/prng.js';

// ---- synthetic scenes ---------------------------------------------------------------------------


/** Gaussian-ish noise (Irwin–Hall of 4 uniforms, unit variance), drawn from a table with a random
 * start and odd stride per frame so generating long clips stays cheap. */
const NOISE_TABLE = (() => {
  const rand = prng(99);
  return Float32Array.from({ length: 1 << 16 }, () => (rand() + rand() + rand() + rand() - 2) * Math.sqrt(3));
})();

interface Rect { x: number; y: number; w: number; h: number } // frame pixels

interface SceneObject {
  /** Rectangle (frame pixels) at time t seconds, or null when absent. */
  at(t: number): Rect | null;
  /** Luma of the object. */
  value: number;
}

interface SceneOptions {
  width: number;
  height: number;
  fps: number;
  seconds: number;
  noise: number | ((t: number) => number);
  objects?: SceneObject[];
  /** Photometric transform applied to the rendered scene (lighting, IR, exposure). */
  light?: (t: number, v: number) => number;
  seed?: number;
}

/** Textured static background defined in normalised coordinates, so every frame size shows the same
 * scene: smooth gradients, periodic texture and blocky detail, luma roughly 60..200. */
function makeBackground(width: number, height: number): Float32Array {
  const bg = new Float32Array(width * height);
  const blocks = prng(12345);
  const grid = new Float32Array(32 * 18).map(() => (blocks() - 0.5) * 40);
  for (let y = 0; y < height; y++) {
    const v = y / height;
    for (let x = 0; x < width; x++) {
      const u = x / width;
      bg[y * width + x] =
        130 + 25 * Math.sin(2 * Math.PI * u * 7 + 1) * Math.cos(2 * Math.PI * v * 4) + 20 * (u - 0.5)
        + grid[Math.floor(v * 18) * 32 + Math.floor(u * 32)];
    }
  }
  return bg;
}

function* scene(o: SceneOptions): Generator<Frame & { t: number; rects: Rect[] }> {
  const { width: W, height: H, fps } = o;
  const bg = makeBackground(W, H);
  const rand = prng(o.seed ?? 7);
  const frames = Math.round(o.seconds * fps);
  const base = 1_000_000; // media clock does not start at zero
  const layer = new Float32Array(W * H);
  for (let f = 0; f < frames; f++) {
    const t = f / fps;
    layer.set(bg);
    const rects: Rect[] = [];
    for (const obj of o.objects ?? []) {
      const r = obj.at(t);
      if (!r) continue;
      rects.push(r);
      const x0 = Math.max(0, Math.round(r.x)), y0 = Math.max(0, Math.round(r.y));
      const x1 = Math.min(W, Math.round(r.x + r.w)), y1 = Math.min(H, Math.round(r.y + r.h));
      for (let y = y0; y < y1; y++) layer.fill(obj.value, y * W + x0, y * W + x1);
    }
    const sigma = typeof o.noise === 'function' ? o.noise(t) : o.noise;
    const data = new Uint8Array(W * H);
    let k = (rand() * 65536) | 0;
    const stride = 2 * ((rand() * 30000) | 0) + 1001;
    for (let i = 0; i < W * H; i++) {
      let v = o.light ? o.light(t, layer[i]) : layer[i];
      k = (k + stride) & 0xffff;
      v += sigma * NOISE_TABLE[k];
      data[i] = v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
    }
    yield { pts90k: base + Math.round(t * 90_000), width: W, height: H, format: 'gray', data, t, rects };
  }
}

/** A rectangle moving horizontally at `speed` px/s, wrapping around the frame. */
function mover(W: number, H: number, w: number, h: number, speed: number, value: number, y = (H - h) / 2, from = 0): SceneObject {
  return {
    value,
    at: (t) => {
      if (t < from) return null;
      const span = W - w;
      const p = (0.1 * W + speed * t) % (2 * span);
      return { x: p <= span ? p : 2 * span - p, y, w, h }; // bounce between the edges
    },
  };
}

function run(sensitivity: MotionSensitivity, o: SceneOptions) {
  const det = new MotionDetector({ sensitivity, width: o.width, height: o.height });
  const out: Array<{ t: number; rects: Rect[]; r: MotionResult }> = [];
  for (const fr of scene(o)) out.push({ t: fr.t, rects: fr.rects, r: det.process(fr) });
  return out;
}

function iou(a: Rect, b: Rect): number {
  const ix = Math.max(0, Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x));
  const iy = Math.max(0, Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y));
  const inter = ix * iy;
  return inter / (a.w * a.h + b.w * b.h - inter);
}

function bestIoU(r: MotionResult, truth: Rect, W: number, H: number): number {
  let best = 0;
  for (const g of r.regions) best = Math.max(best, iou({ x: g.l * W, y: g.t * H, w: g.w * W, h: g.h * H }, truth));
  return best;
}

const motionFrames = (rs: ReturnType<typeof run>) => rs.filter((x) => x.r.motion);

// ---- tests --------------------------------------------------------------------------------------

describe('MotionDetector', () => {
  test('presets get less sensitive from High to Low', () => {
    const { High, Medium, Low } = SENSITIVITY_PRESETS;
    assert.ok(High.minAreaFraction < Medium.minAreaFraction && Medium.minAreaFraction < Low.minAreaFraction);
    assert.ok(High.minContrast < Medium.minContrast && Medium.minContrast < Low.minContrast);
  });

  for (const sigma of [1, 3, 6]) {
    test(`static scene with noise σ=${sigma}: no motion at any sensitivity`, () => {
      for (const s of ['High', 'Medium', 'Low'] as const) {
        const rs = run(s, { width: 320, height: 180, fps: 25, seconds: 8, noise: sigma, seed: sigma });
        assert.equal(motionFrames(rs).length, 0, `${s} reported motion on a static scene`);
        assert.ok(rs.every((x) => x.r.changedFraction < 0.01), `${s}: changedFraction too high`);
      }
    });
  }

  for (const fps of [5, 15, 25, 30]) {
    test(`moving square is detected with a matching box at ${fps} fps`, () => {
      const W = 320, H = 180;
      const rs = run('Medium', { width: W, height: H, fps, seconds: 6, noise: 2, objects: [mover(W, H, 30, 30, 50, 50, 75, 0.6)] });
      const after = rs.filter((x) => x.t >= 1);
      assert.ok(after.length > 0, 'no frames');
      for (const x of after) {
        assert.equal(x.r.motion, true, `no motion at t=${x.t}`);
        assert.equal(x.r.regions.length, 1, `expected one region at t=${x.t}`);
        const score = bestIoU(x.r, x.rects[0], W, H);
        assert.ok(score > 0.5, `IoU ${score.toFixed(2)} at t=${x.t}`);
      }
    });
  }

  test('regions are normalised to 0..1', () => {
    const W = 320, H = 180;
    // The object bounces into the frame corners and edges.
    const rs = run('High', { width: W, height: H, fps: 25, seconds: 8, noise: 2, objects: [mover(W, H, 40, 40, 120, 30, H - 40)] });
    const all = rs.flatMap((x) => x.r.regions);
    assert.ok(all.length > 0, 'no regions');
    const edge = all.filter((g) => g.l + g.w > 0.999 || g.t + g.h > 0.999 || g.l < 0.001);
    assert.ok(edge.length > 0, 'the object never reached an edge; the test checks nothing');
    for (const g of all) {
      for (const v of [g.l, g.t, g.w, g.h]) assert.ok(v >= 0 && v <= 1, `out of range: ${JSON.stringify(g)}`);
      assert.ok(g.l + g.w <= 1 + 1e-9 && g.t + g.h <= 1 + 1e-9, `past the edge: ${JSON.stringify(g)}`);
    }
  });

  test('a 16×16 px object is below Low\'s minimum area but caught at High and Medium', () => {
    const W = 320, H = 180;
    const o = { width: W, height: H, fps: 15, seconds: 5, noise: 2, objects: [mover(W, H, 16, 16, 50, 60, 82, 0.6)] };
    assert.equal(motionFrames(run('Low', o)).length, 0, 'Low reported the 16×16 object');
    for (const s of ['High', 'Medium'] as const) {
      const after = run(s, o).filter((x) => x.t >= 1);
      assert.ok(motionFrames(after).length >= 0.9 * after.length, `${s} missed the 16×16 object`);
    }
  });

  test('High catches a 720p 32×32 object (14×8 px at 320×180) of moderate contrast at 50 px/s', () => {
    const W = 320, H = 180;
    // Luma 95 on a background of ~60..200: contrast 30+ levels over most of its path.
    for (const fps of [5, 25]) {
      const rs = run('High', { width: W, height: H, fps, seconds: 6, noise: 2, objects: [mover(W, H, 14, 8, 50, 95, 40, 0.6)] });
      const after = rs.filter((x) => x.t >= 1);
      const hits = after.filter((x) => x.r.motion && bestIoU(x.r, x.rects[0], W, H) > 0.3);
      assert.ok(hits.length >= 0.8 * after.length, `${fps} fps: ${hits.length}/${after.length}`);
    }
  });

  const step = (t: number, v: number) => (t >= 3 ? v + 40 : v);
  /** IR day/night: gamma and contrast change, offset, clipping, and a noisier sensor. */
  const irSwitch = (t: number, v: number) => (t >= 3 ? 1.5 * (255 * Math.pow(v / 255, 0.8) - 128) + 128 + 15 : v);
  for (const [name, light, noise] of [
    ['brightness step +40', step, 2],
    ['IR-like switch (gamma, contrast, noise)', irSwitch, (t: number) => (t >= 3 ? 4 : 2)],
  ] as const) {
    for (const fps of [5, 15, 30]) {
      test(`${name} at ${fps} fps: no motion, and detection works again within 1 s`, () => {
        const W = 320, H = 180;
        const quiet = run('High', { width: W, height: H, fps, seconds: 6, noise, light });
        assert.equal(motionFrames(quiet).length, 0, 'motion reported for a lighting change');
        assert.ok(quiet.some((x) => x.r.suppressed === 'global-change'), 'global change not flagged');

        // Same switch with a square that starts moving right after it.
        const busy = run('Medium', {
          width: W, height: H, fps, seconds: 6, noise, light, objects: [mover(W, H, 30, 30, 50, 40, 60, 3)],
        });
        const at = busy.find((x) => x.t >= 3)!;
        assert.equal(at.r.motion, false, 'motion reported on the switch frame');
        assert.equal(at.r.suppressed, 'global-change', 'switch frame not flagged');
        const later = busy.filter((x) => x.t >= 4);
        assert.ok(later.length > 0 && later.every((x) => x.r.motion), 'motion not detected 1 s after the switch');
      });
    }
  }

  for (const fps of [5, 25]) {
    test(`slow illumination drift (sunrise) and an auto-exposure ramp at ${fps} fps: no motion`, () => {
      const W = 320, H = 180;
      // Sunrise: +60 levels and +20 % contrast over 60 s.
      const sunrise = (t: number, v: number) => (v - 40) * (1 + (0.2 * t) / 60) + 40 + t;
      const dawn = run('High', { width: W, height: H, fps, seconds: 60, noise: 2, light: sunrise });
      assert.equal(motionFrames(dawn).length, 0, 'motion reported during sunrise');
      // Exposure ramp: −30 levels over 1 s.
      const ramp = (t: number, v: number) => v - 30 * Math.min(1, Math.max(0, t - 2));
      const rs = run('High', { width: W, height: H, fps, seconds: 5, noise: 2, light: ramp });
      assert.equal(motionFrames(rs).length, 0, 'motion reported during an exposure ramp');
    });
  }

  test('a large object entering (40 % of the frame) is motion, not a global change', () => {
    const W = 320, H = 180;
    const w = Math.round(W * 0.632), h = Math.round(H * 0.632);
    // Dark object sliding in from the left edge at 160 px/s, fully in after ~1.3 s.
    const big: SceneObject = { value: 30, at: (t) => (t < 1 ? null : { x: -w + 160 * (t - 1), y: (H - h) / 2, w, h }) };
    const rs = run('Medium', { width: W, height: H, fps: 15, seconds: 3, noise: 2, objects: [big] });
    const during = rs.filter((x) => x.t >= 1.2);
    assert.ok(during.every((x) => x.r.suppressed !== 'global-change'), 'large object taken for a lighting change');
    assert.ok(during.every((x) => x.r.motion), 'large object not reported on every frame');
    const full = during.filter((x) => x.rects[0].x >= 0);
    assert.ok(full.length > 0, 'object never fully inside');
    for (const x of full) assert.ok(bestIoU(x.r, x.rects[0], W, H) > 0.5, `IoU too low at t=${x.t}`);
  });

  test('warm-up: the first 0.5 s only learn', () => {
    const W = 320, H = 180;
    const rs = run('High', { width: W, height: H, fps: 25, seconds: 2, noise: 2, objects: [mover(W, H, 30, 30, 50, 40)] });
    const early = rs.filter((x) => x.t < 0.5);
    assert.ok(early.length > 0 && early.every((x) => !x.r.motion && x.r.suppressed === 'warming-up'), 'warm-up frames');
    assert.ok(rs.filter((x) => x.t >= 0.6).every((x) => x.r.motion), 'motion not reported after warm-up');
  });

  test('an object moving during warm-up leaves no lasting ghost', () => {
    const W = 320, H = 180;
    // The background learns the square's start position during warm-up; that imprint must fade.
    const rs = run('Medium', { width: W, height: H, fps: 15, seconds: 7, noise: 2, objects: [mover(W, H, 30, 30, 50, 40)] });
    const ghosted = rs.filter((x) => x.t >= 0.6 && x.t < 1.5).some((x) => bestIoU(x.r, x.rects[0], W, H) < 0.5);
    assert.ok(ghosted, 'scenario no longer produces a ghost; the test checks nothing');
    for (const x of rs.filter((x) => x.t >= 4.5)) {
      assert.equal(x.r.regions.length, 1, `extra regions at t=${x.t}`);
      assert.ok(bestIoU(x.r, x.rects[0], W, H) > 0.5, `ghost still merged at t=${x.t}`);
    }
  });

  test('a timestamp discontinuity starts a new warm-up', () => {
    const W = 160, H = 90;
    const det = new MotionDetector({ sensitivity: 'Medium', width: W, height: H });
    const frames = [...scene({ width: W, height: H, fps: 10, seconds: 2, noise: 1, objects: [mover(W, H, 15, 15, 25, 40)] })];
    const results = frames.map((f) => det.process(f));
    assert.equal(results.at(-1)!.motion, true, 'no motion before the discontinuity');
    const back = det.process({ ...frames[0], pts90k: frames[0].pts90k - 90_000 });
    assert.equal(back.suppressed, 'warming-up', 'time going back did not restart');
  });

  test('identical input gives identical results', () => {
    const o = { width: 320, height: 180, fps: 15, seconds: 4, noise: 3, objects: [mover(320, 180, 20, 20, 60, 50)] };
    const a = run('High', o).map((x) => x.r);
    const b = run('High', o).map((x) => x.r);
    assert.deepEqual(a, b, 'results differ');
    assert.ok(a.some((r) => r.motion), 'no motion at all');
  });

  for (const [W, H] of [[320, 180], [160, 90], [640, 360], [333, 187]] as const) {
    test(`frame size ${W}×${H}: static scene quiet, moving square found`, () => {
      const still = run('Medium', { width: W, height: H, fps: 10, seconds: 4, noise: 2 });
      assert.equal(motionFrames(still).length, 0, 'motion on a static scene');
      const side = Math.round(W * 0.1);
      const rs = run('Medium', {
        width: W, height: H, fps: 10, seconds: 4, noise: 2, objects: [mover(W, H, side, side, W * 0.15, 40, (H - side) / 2, 0.6)],
      });
      for (const x of rs.filter((x) => x.t >= 1)) {
        assert.equal(x.r.motion, true, `no motion at t=${x.t}`);
        assert.ok(bestIoU(x.r, x.rects[0], W, H) > 0.5, `IoU too low at t=${x.t}`);
      }
    });
  }

  test('a frame of a new size re-initialises instead of failing', () => {
    const det = new MotionDetector({ sensitivity: 'Medium', width: 320, height: 180 });
    const [f] = scene({ width: 160, height: 90, fps: 10, seconds: 0.1, noise: 1 });
    assert.equal(det.process(f).suppressed, 'warming-up', 'new size did not restart');
    assert.throws(() => det.process({ ...f, pts90k: f.pts90k + 9000, data: new Uint8Array(10) }), RangeError);
  });
});

/** A square that stands still at x0 until `from`, then moves right at `speed` px/s. */
function starter(x0: number, y: number, side: number, speed: number, from: number, value: number): SceneObject {
  return { value, at: (t) => ({ x: x0 + speed * Math.max(0, t - from), y, w: side, h: side }) };
}

describe('MotionDetector: fragments of one object', () => {
  test('a slow untextured object (64 px at 10 px/s in 720p terms) is caught at Medium within 1.5 s, as one region', () => {
    // At 320×180: 16×16 px moving 2.5 px/s. For its first second only its leading and trailing edges
    // change (16 px apart, each a 1–2 cell strip below the minimum area): the merge rule joins them.
    const W = 320, H = 180, side = 16, from = 2;
    for (const fps of [5, 15, 25]) {
      const rs = run('Medium', { width: W, height: H, fps, seconds: 4.5, noise: 2, objects: [starter(140, 90, side, 2.5, from, 200)] });
      assert.equal(motionFrames(rs.filter((x) => x.t < from)).length, 0, `${fps} fps: motion before it moved`);
      const first = rs.find((x) => x.t >= from && x.r.motion);
      assert.ok(first && first.t - from <= 1.5, `${fps} fps: first motion at ${first ? (first.t - from).toFixed(2) : 'never'} s after the start`);
      const caught = rs.filter((x) => x.t >= from + 1.5);
      for (const x of caught) {
        assert.equal(x.r.motion, true, `${fps} fps: no motion at t=${x.t}`);
        assert.equal(x.r.regions.length, 1, `${fps} fps: edges reported as ${x.r.regions.length} regions at t=${x.t}`);
        // One box spanning the trailing edge (old position) to the leading edge (new position).
        assert.ok(x.r.regions[0].w * W >= side - 2, `${fps} fps: box ${(x.r.regions[0].w * W).toFixed(1)} px wide at t=${x.t}`);
      }
    }
  });

  test('small changes close together add up to an object; the same changes far apart do not', () => {
    // Two 8×8 px squares (16 working cells each, below Medium's 26-cell minimum; 32 together).
    const W = 320, H = 180;
    const pair = (gap: number) => [mover(W, H, 8, 8, 40, 200, 60, 0), { value: 200, at: (t: number) => { const r = mover(W, H, 8, 8, 40, 200, 60, 0).at(t)!; return { ...r, y: r.y + 8 + gap }; } }];
    const near = run('Medium', { width: W, height: H, fps: 15, seconds: 3, noise: 2, objects: pair(6) }).filter((x) => x.t >= 1);
    assert.ok(motionFrames(near).length >= 0.9 * near.length, `near pair: ${motionFrames(near).length}/${near.length} motion frames`);
    const far = run('Medium', { width: W, height: H, fps: 15, seconds: 3, noise: 2, objects: pair(60) }).filter((x) => x.t >= 1);
    assert.equal(motionFrames(far).length, 0, 'far-apart specks summed into one object');
    // Each square alone is visible at High (minimum 12 cells): the far pair is not simply invisible.
    const high = run('High', { width: W, height: H, fps: 15, seconds: 3, noise: 2, objects: pair(60) }).filter((x) => x.t >= 1);
    assert.ok(motionFrames(high).length >= 0.9 * high.length, 'High missed the far pair');
  });
});
