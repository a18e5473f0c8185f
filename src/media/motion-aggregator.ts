/**
 * LVA's `eventAggregationWindow` for the motion detector (lva-spec §2.3; the exact LVA behaviour is
 * undocumented, §8 — these are our rules). Pure: time is the frames' pts90k.
 *
 * - `windowMs` 0: one event per motion frame, stamped with that frame's pts.
 * - `windowMs` W > 0: the first motion frame opens a window [start, start + W) of media time. Regions
 *   seen inside it are merged (overlapping or touching boxes are replaced by their union, so an object
 *   moving through the window yields the box it swept) and emitted as one event when the window ends —
 *   at the first frame (motion or not) with pts ≥ start + W, or on `flush()`. The event carries the
 *   timestamp of the window's FIRST motion frame: that is when the motion began, which is what the
 *   signal gate and anyone seeking in a recording needs (lva-spec §4.4); the emission itself is late by
 *   up to W. A frame whose pts is before the open window's start (timestamps reset) closes the window.
 * - `outputMotionRegion` false: each event has exactly one inference `{type:'motion', motion:{}}`.
 * - Box values are rounded to 6 decimals and clamped to [0, 1] (and l + w, t + h to ≤ 1).
 *
 * Call `add` for every analysed frame — with an empty region list when there is no motion — so windows
 * close on time.
 */

// Type aliases rather than interfaces: object-literal types are assignable to Record<string, unknown>,
// which is how the graph carries inferences (nodes/node.ts `Inference`).
export type MotionBox = { l: number; t: number; w: number; h: number };

export type MotionInference = { type: 'motion'; motion: { box?: MotionBox } };

export type MotionEvent = {
  /** Media time of the window's first motion frame, 90 kHz ticks. */
  timestamp90k: number;
  inferences: MotionInference[];
};

export interface MotionEventAggregatorOptions {
  windowMs: number;
  outputMotionRegion: boolean;
}

/** Upper bound on boxes per event; beyond it the smallest are dropped (an event is a hint, not a mask). */
const MAX_BOXES = 32;

export class MotionEventAggregator {
  private readonly windowTicks: number;
  private readonly outputMotionRegion: boolean;
  private windowStart: number | null = null;
  private boxes: MotionBox[] = [];

  constructor(options: MotionEventAggregatorOptions) {
    if (!Number.isFinite(options.windowMs) || options.windowMs < 0) {
      throw new RangeError(`eventAggregationWindow must be ≥ 0 ms, got ${options.windowMs}`);
    }
    this.windowTicks = Math.round(options.windowMs * 90);
    this.outputMotionRegion = options.outputMotionRegion;
  }

  /** Feed one analysed frame (empty `regions` = no motion); returns the events completed by it. */
  add(pts90k: number, regions: readonly MotionBox[]): MotionEvent[] {
    const out: MotionEvent[] = [];
    if (this.windowStart !== null && (pts90k >= this.windowStart + this.windowTicks || pts90k < this.windowStart)) {
      out.push(this.close());
    }
    if (regions.length === 0) return out;
    if (this.windowTicks === 0) {
      out.push(this.event(pts90k, mergeBoxes(regions.map(clampBox))));
      return out;
    }
    if (this.windowStart === null) this.windowStart = pts90k;
    for (const r of regions) this.boxes.push(clampBox(r));
    // Merge as we go so a long window over a busy scene keeps a handful of boxes, not thousands.
    if (this.boxes.length > 4 * MAX_BOXES) this.boxes = mergeBoxes(this.boxes);
    return out;
  }

  /** Emit the open window, if any (end of stream, deactivation). */
  flush(): MotionEvent[] {
    return this.windowStart === null ? [] : [this.close()];
  }

  private close(): MotionEvent {
    const ev = this.event(this.windowStart as number, mergeBoxes(this.boxes));
    this.windowStart = null;
    this.boxes = [];
    return ev;
  }

  private event(timestamp90k: number, boxes: MotionBox[]): MotionEvent {
    if (!this.outputMotionRegion) return { timestamp90k, inferences: [{ type: 'motion', motion: {} }] };
    return { timestamp90k, inferences: boxes.map((box) => ({ type: 'motion', motion: { box: roundBox(box) } })) };
  }
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

function clampBox(b: MotionBox): MotionBox {
  const l = clamp01(b.l), t = clamp01(b.t);
  return { l, t, w: Math.min(clamp01(b.w), 1 - l), h: Math.min(clamp01(b.h), 1 - t) };
}

function round6(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}

function roundBox(b: MotionBox): MotionBox {
  const l = round6(b.l), t = round6(b.t);
  // Rounding l and w separately could push the right edge past 1 by 1e-6.
  return { l, t, w: Math.min(round6(b.w), round6(1 - l)), h: Math.min(round6(b.h), round6(1 - t)) };
}

/** Replace every group of overlapping/touching boxes by its union; largest first; at most MAX_BOXES. */
function mergeBoxes(input: readonly MotionBox[]): MotionBox[] {
  const boxes = input.map((b) => ({ x0: b.l, y0: b.t, x1: b.l + b.w, y1: b.t + b.h }));
  let merged = true;
  while (merged) {
    merged = false;
    for (let i = 0; i < boxes.length; i++) {
      for (let j = boxes.length - 1; j > i; j--) {
        const a = boxes[i], b = boxes[j];
        if (b.x0 > a.x1 || a.x0 > b.x1 || b.y0 > a.y1 || a.y0 > b.y1) continue;
        a.x0 = Math.min(a.x0, b.x0); a.y0 = Math.min(a.y0, b.y0);
        a.x1 = Math.max(a.x1, b.x1); a.y1 = Math.max(a.y1, b.y1);
        boxes.splice(j, 1);
        merged = true;
      }
    }
  }
  return boxes
    .map((b) => ({ l: b.x0, t: b.y0, w: b.x1 - b.x0, h: b.y1 - b.y0 }))
    .sort((p, q) => q.w * q.h - p.w * p.h || p.t - q.t || p.l - q.l)
    .slice(0, MAX_BOXES);
}
