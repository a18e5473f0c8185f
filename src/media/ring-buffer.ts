/**
 * Pre-roll buffer of encoded samples for the signal gate (lva-spec §6.2: the closed gate "acts as a
 * buffer" so a negative activationSignalOffset can reach back in time).
 *
 * Holds references to the Sample objects of all tracks of one source, in push (decode/arrival)
 * order, and evicts in whole GOPs so that a clip can always start on a video keyframe:
 *
 *   push order →   [K₀ a p a p a | K₁ a p a p a | K₂ a p a p ·· newest]
 *                                   ^ last keyframe with pts ≤ newest − retainTicks (the horizon):
 *                                     everything before it is evicted, it and everything after kept
 *
 * So any requested start in [newest − retainTicks, newest] has a keyframe at or before it in the
 * buffer, and memory is bounded by retainTicks + one GOP (+ a byte cap, see below).
 *
 * Decisions:
 * - Anchors are video keyframes only (audio samples are all sync samples but cannot start a video
 *   clip). Samples pushed before the first keyframe (stream joined mid-GOP) are never returned; with
 *   no keyframe at all they are evicted by time alone, so memory stays bounded.
 * - The keyframe is chosen by pts, the slice is returned in push (decode) order, and samples after the
 *   keyframe whose pts is earlier than the keyframe's are left out: audio that ffmpeg interleaved
 *   between the keyframe's dts and pts, and the leading pictures of an open GOP, which would decode
 *   against the previous GOP. The input is assumed dts-interleaved (as ffmpeg's muxers write it), so
 *   audio with pts ≥ the keyframe's pts never precedes the keyframe in push order.
 * - Byte cap (maxBytes): after retention eviction, while the buffer is over the cap the oldest whole
 *   GOP is dropped and counted (droppedSamples/droppedBytes). If the newest GOP alone exceeds the cap
 *   it is dropped too; the rest of that GOP then has no keyframe and is dropped/evicted in turn, so
 *   memory never exceeds maxBytes + one sample even for a stream without keyframes.
 * - Discontinuities are handled here, not by the node: pushing a *video* sample flagged `discont`
 *   clears the buffer first, because pre-roll spanning the discontinuity could not be decoded and the
 *   source may have restarted its timestamps (which would break eviction by media time). Audio
 *   discont samples are kept as they are: an audio gap does not break video decoding, and only video
 *   anchors the buffer. The node still has to tell the SignalGate (finish/reset).
 */

import type { SignalGateConfig } from '../graph/model.js';
import { msToTicks, type Sample } from './sample.js';

export interface RingBufferOptions {
  /** History to keep behind the newest sample, 90 kHz ticks (see retentionFor). */
  readonly retainTicks: number;
  /** Upper bound on the payload bytes held; default unlimited. */
  readonly maxBytes?: number;
}

export interface PreRoll {
  /** From the chosen keyframe through the newest sample, push order; references, not copies. */
  readonly samples: Sample[];
  /** pts90k of the chosen keyframe; > the requested start when the buffer does not reach back that far.
   * NaN when keyframeFound is false. */
  readonly actualStart90k: number;
  /** False when the buffer holds no video keyframe: samples is empty and the clip has to wait for the
   * next live keyframe. */
  readonly keyframeFound: boolean;
}

/**
 * Retention the ring buffer needs for a signal gate, in 90 kHz ticks (lva-spec §6.2 sizing):
 * max(0, −O) + W + GOP. The pre-roll reaches back −O from the first event and the open decision comes
 * W after it arrives; GOP-aligned eviction already keeps the keyframe at or before the horizon, so the
 * GOP term is headroom for trigger latency (an event dated before it arrives).
 */
export function retentionFor(config: SignalGateConfig, gopTicks: number): number {
  const preRoll = Math.max(0, -msToTicks(config.activationSignalOffsetMs));
  const window = Math.max(0, msToTicks(config.activationEvaluationWindowMs));
  const gop = Number.isFinite(gopTicks) && gopTicks > 0 ? gopTicks : 0;
  return preRoll + window + gop;
}

/**
 * Double-ended queue with stable absolute indices: element i keeps index i until removed.
 * Removal from the head clears the slot and advances a head offset; the backing array is compacted
 * only when the dead prefix is at least half of it, so every element is copied at most once per
 * compaction it survives and push/shift are O(1) amortised (no Array#shift per element).
 */
class IndexedDeque<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  /** Absolute index of items[head]. */
  private base = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  /** Absolute index of the oldest element (== endIndex when empty). */
  get firstIndex(): number {
    return this.base;
  }

  /** Absolute index the next pushed element will get. */
  get endIndex(): number {
    return this.base + this.length;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** Element at absolute index (caller guarantees firstIndex ≤ index < endIndex). */
  atIndex(index: number): T {
    return this.items[this.head + index - this.base] as T;
  }

  /** k-th element from the oldest (0 = oldest). */
  nth(k: number): T | undefined {
    return k >= 0 && k < this.length ? this.items[this.head + k] : undefined;
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head++;
    this.base++;
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.base = this.endIndex;
    this.items = [];
    this.head = 0;
  }
}

interface Anchor {
  /** Absolute push index of the keyframe sample. */
  readonly index: number;
  readonly pts90k: number;
}

/** Keyframe distances remembered for the GOP estimate. */
const GOP_HISTORY = 8;

export class RingBuffer {
  private readonly samples = new IndexedDeque<Sample>();
  /** Video keyframes currently in the buffer, push order. */
  private readonly anchors = new IndexedDeque<Anchor>();
  private retain: number;
  private readonly maxBytes: number;
  private heldBytes = 0;
  private newest = Number.NEGATIVE_INFINITY;
  private lastKeyframePts: number | null = null;
  private readonly gopDistances: number[] = [];
  private gopCursor = 0;

  private dropped = { samples: 0, bytes: 0 };
  private evicted = 0;
  private discontCount = 0;

  constructor(options: RingBufferOptions) {
    this.retain = RingBuffer.checkRetention(options.retainTicks);
    const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    if (!(maxBytes >= 0)) throw new RangeError(`ring buffer: maxBytes must be ≥ 0, got ${maxBytes}`);
    this.maxBytes = maxBytes;
  }

  private static checkRetention(ticks: number): number {
    if (!Number.isFinite(ticks) || ticks < 0) throw new RangeError(`ring buffer: retainTicks must be ≥ 0, got ${ticks}`);
    return ticks;
  }

  /** Samples dropped by the byte cap (not counting normal retention eviction). */
  get droppedSamples(): number {
    return this.dropped.samples;
  }

  /** Payload bytes dropped by the byte cap. */
  get droppedBytes(): number {
    return this.dropped.bytes;
  }

  /** Samples evicted because they fell behind the retention window. */
  get evictedSamples(): number {
    return this.evicted;
  }

  /** Video discontinuities that cleared the buffer. */
  get discontinuities(): number {
    return this.discontCount;
  }

  get retainTicks(): number {
    return this.retain;
  }

  /** Number of samples held. */
  get size(): number {
    return this.samples.length;
  }

  /** Payload bytes held. */
  get bytes(): number {
    return this.heldBytes;
  }

  /** Largest pts90k pushed since the last clear, or null. */
  get newest90k(): number | null {
    return this.newest === Number.NEGATIVE_INFINITY ? null : this.newest;
  }

  /** pts90k of the oldest keyframe held (how far back a clip can start), or null. */
  get oldestKeyframe90k(): number | null {
    return this.anchors.nth(0)?.pts90k ?? null;
  }

  /**
   * Measured keyframe interval: the largest of the last 8 distances between consecutive video
   * keyframes (the maximum, because the buffer must fit the longest GOP); 0 until two keyframes were
   * seen. Survives clear(): a reconnecting camera keeps its encoder settings.
   */
  get gopTicks(): number {
    let max = 0;
    for (const d of this.gopDistances) if (d > max) max = d;
    return max;
  }

  /** Change the retention (e.g. once gopTicks is known); shrinking evicts immediately. */
  setRetention(retainTicks: number): void {
    this.retain = RingBuffer.checkRetention(retainTicks);
    this.evictBehindHorizon();
  }

  push(sample: Sample): void {
    const isVideo = sample.track.kind === 'video';
    if (isVideo && sample.discont === true) {
      this.discontCount++;
      this.clear();
    }
    this.samples.push(sample);
    this.heldBytes += sample.data.length;
    if (sample.pts90k > this.newest) this.newest = sample.pts90k;
    if (isVideo && sample.keyframe) {
      this.anchors.push({ index: this.samples.endIndex - 1, pts90k: sample.pts90k });
      this.measureGop(sample.pts90k);
    }
    this.evictBehindHorizon();
    this.enforceByteCap();
  }

  /**
   * Pre-roll for a clip that should start at requestedStart90k: from the last keyframe (push order)
   * with pts ≤ requestedStart90k — or the oldest keyframe when the buffer does not reach back that far —
   * through the newest sample, leaving out samples with pts earlier than that keyframe.
   */
  readFrom(requestedStart90k: number): PreRoll {
    let chosen: Anchor | undefined;
    for (let k = this.anchors.length - 1; k >= 0; k--) {
      const anchor = this.anchors.nth(k) as Anchor;
      if (anchor.pts90k <= requestedStart90k) {
        chosen = anchor;
        break;
      }
    }
    chosen ??= this.anchors.nth(0);
    if (chosen === undefined) return { samples: [], actualStart90k: Number.NaN, keyframeFound: false };
    const out: Sample[] = [];
    for (let i = chosen.index; i < this.samples.endIndex; i++) {
      const s = this.samples.atIndex(i);
      if (s.pts90k >= chosen.pts90k) out.push(s);
    }
    return { samples: out, actualStart90k: chosen.pts90k, keyframeFound: true };
  }

  /** Forget all samples (discontinuity, graph restart). Counters and the GOP estimate are kept. */
  clear(): void {
    this.samples.clear();
    this.anchors.clear();
    this.heldBytes = 0;
    this.newest = Number.NEGATIVE_INFINITY;
    this.lastKeyframePts = null;
  }

  private measureGop(pts90k: number): void {
    if (this.lastKeyframePts !== null) {
      const distance = pts90k - this.lastKeyframePts;
      if (distance > 0) {
        if (this.gopDistances.length < GOP_HISTORY) this.gopDistances.push(distance);
        else this.gopDistances[this.gopCursor] = distance;
        this.gopCursor = (this.gopCursor + 1) % GOP_HISTORY;
      }
    }
    this.lastKeyframePts = pts90k;
  }

  /** First keyframe after the oldest held sample: where the oldest GOP (or keyframe-less lead-in) ends. */
  private endOfOldestGop(): Anchor | undefined {
    const first = this.anchors.nth(0);
    if (first === undefined) return undefined;
    return first.index > this.samples.firstIndex ? first : this.anchors.nth(1);
  }

  private evictBehindHorizon(): void {
    const horizon = this.newest - this.retain;
    for (;;) {
      const next = this.endOfOldestGop();
      // Keep the oldest GOP while the next keyframe is still inside the window: it is the keyframe
      // at/before the horizon that a start near the horizon needs.
      if (next === undefined || next.pts90k > horizon) break;
      this.removeUntil(next.index, false);
    }
    if (this.anchors.length === 0) {
      // No keyframe held: nothing is readable, keep only retainTicks of it by time.
      for (let s = this.samples.nth(0); s !== undefined && s.pts90k < horizon; s = this.samples.nth(0)) {
        this.removeUntil(this.samples.firstIndex + 1, false);
      }
    }
  }

  private enforceByteCap(): void {
    while (this.heldBytes > this.maxBytes && this.samples.length > 0) {
      const next = this.endOfOldestGop();
      this.removeUntil(next === undefined ? this.samples.endIndex : next.index, true);
    }
  }

  /** Remove samples from the head up to (excluding) absolute index `end`, with their anchors. */
  private removeUntil(end: number, dropped: boolean): void {
    while (this.samples.firstIndex < end) {
      const s = this.samples.shift() as Sample;
      const n = s.data.length;
      this.heldBytes -= n;
      if (dropped) {
        this.dropped.samples++;
        this.dropped.bytes += n;
      } else {
        this.evicted++;
      }
    }
    for (let a = this.anchors.nth(0); a !== undefined && a.index < end; a = this.anchors.nth(0)) this.anchors.shift();
  }
}
