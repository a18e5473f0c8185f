// Provisional aggregator (same API as specified for the motion core); replaced by the motion core's own.
export interface MotionBox { l: number; t: number; w: number; h: number }
export interface MotionEvent { timestamp90k: number; inferences: Array<{ type: 'motion'; motion: { box?: MotionBox } }> }

export class MotionEventAggregator {
  private windowStart: number | null = null;
  private boxes: MotionBox[] = [];
  constructor(private readonly opts: { windowMs: number; outputMotionRegion: boolean }) {}

  add(pts90k: number, regions: MotionBox[]): MotionEvent[] {
    const out: MotionEvent[] = [];
    const w = this.opts.windowMs * 90;
    if (this.windowStart !== null && pts90k >= this.windowStart + w) out.push(...this.flush());
    if (regions.length > 0) {
      if (this.windowStart === null) this.windowStart = pts90k;
      this.boxes.push(...regions);
      if (w === 0) out.push(...this.flush());
    }
    return out;
  }

  flush(): MotionEvent[] {
    if (this.windowStart === null) return [];
    const ts = this.windowStart;
    const boxes = this.boxes;
    this.windowStart = null;
    this.boxes = [];
    const inferences = this.opts.outputMotionRegion
      ? boxes.map((box) => ({ type: 'motion' as const, motion: { box } }))
      : [{ type: 'motion' as const, motion: {} }];
    return [{ timestamp90k: ts, inferences }];
  }
}
