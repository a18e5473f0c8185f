/**
 * Which frames an extension sends (lva-spec §2.3 SamplingOptions) and which frames a frame-rate
 * filter passes, decided on media time only (pts90k), so replay gives the same requests as live.
 *
 * Rate rule: media time is cut into slots of 1/rate s (from time zero) and at most one frame per
 * slot goes — the first one. Over any stretch of T seconds that is at most rate·T + 1 frames, exactly
 * `rate` per second when frames are there, and every frame keeps its own timestamp. The source's
 * ffmpeg thins pictures with the same rule (ffmpeg-args.ts rateSelect), so a consumer slower than
 * that stream still finds a picture in each of its slots. 10 µs of slack absorb pts rounded to ticks.
 */

const TICKS = 90_000;
const SLACK_TICKS = 0.9;

export class RateLimiter {
  private lastSlot = -Infinity;
  private last = -Infinity;

  /** `perSecond` undefined = no limit. */
  constructor(readonly perSecond: number | undefined) {
    if (perSecond !== undefined && !(Number.isFinite(perSecond) && perSecond > 0)) throw new RangeError(`rate must be positive, got ${perSecond}`);
  }

  private slot(pts90k: number): number {
    return Math.floor(((pts90k + SLACK_TICKS) * this.perSecond!) / TICKS);
  }

  /** Whether a frame at pts90k may go now (does not record it). */
  allows(pts90k: number): boolean {
    if (this.perSecond === undefined) return true;
    // Media time went back (a re-based timeline): start over.
    if (pts90k < this.last - TICKS) return true;
    return this.slot(pts90k) > this.lastSlot;
  }

  /** Records that the frame at pts90k went. */
  took(pts90k: number): void {
    this.last = pts90k;
    if (this.perSecond !== undefined) this.lastSlot = this.slot(pts90k);
  }

  /** allows() + took() in one step. */
  take(pts90k: number): boolean {
    if (!this.allows(pts90k)) return false;
    this.took(pts90k);
    return true;
  }
}

export type SampleDecision = 'send' | 'rate' | 'annotation' | 'backoff';

export interface SamplingOptions {
  maximumSamplesPerSecond?: number;
  skipSamplesWithoutAnnotation: boolean;
}

/** An extension's sampling: annotation filter, rate limit and 503 back-off, all on media time. */
export class Sampler {
  private readonly rate: RateLimiter;
  private backoffUntil90k = -Infinity;

  constructor(private readonly options: SamplingOptions) {
    this.rate = new RateLimiter(options.maximumSamplesPerSecond);
  }

  /** Whether the frame should be sent; 'send' does not record it yet (see sent()). */
  decide(pts90k: number, annotated: boolean): SampleDecision {
    if (this.options.skipSamplesWithoutAnnotation && !annotated) return 'annotation';
    if (pts90k < this.backoffUntil90k) return 'backoff';
    return this.rate.allows(pts90k) ? 'send' : 'rate';
  }

  /** The frame at pts90k was sent (the rate counts requests actually made). */
  sent(pts90k: number): void {
    this.rate.took(pts90k);
  }

  /** The extension answered 503: send nothing before pts90k + delay. */
  backOff(pts90k: number, delayMs: number): void {
    this.backoffUntil90k = Math.max(this.backoffUntil90k, pts90k + Math.round(delayMs * 90));
  }
}
