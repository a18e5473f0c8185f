/**
 * Ties the graph's media timeline (90 kHz ticks, `Sample.pts90k`) to wall-clock time, so that LVA's
 * timestamps (90 kHz ticks since the Unix epoch, lva-spec §4.4), eventTime and `${System.DateTime}`
 * all derive from media time. Live: anchored when the first sample arrives. Replay: media time 0 is
 * `--start-time`, so two runs give identical names and events.
 */
export class MediaClock {
  private base90k?: number;

  constructor(private readonly wallNow: () => number = Date.now, fixedStartMs?: number) {
    if (fixedStartMs !== undefined) this.base90k = fixedStartMs * 90;
  }

  get anchored(): boolean {
    return this.base90k !== undefined;
  }

  /** Anchors media time `pts90k` to the current wall clock (first sample of a live stream). */
  anchor(pts90k: number): void {
    if (this.base90k === undefined) this.base90k = this.wallNow() * 90 - pts90k;
  }

  /** Media time → 90 kHz ticks since the Unix epoch. */
  toEpoch90k(pts90k: number): number {
    return Math.round((this.base90k ?? this.wallNow() * 90 - pts90k) + pts90k);
  }

  toDate(pts90k: number): Date {
    return new Date(Math.round(this.toEpoch90k(pts90k) / 90));
  }

  /** Wall clock now, mapped onto the media timeline (for events arriving from outside). */
  wallToMedia(ms: number): number {
    if (this.base90k === undefined) return 0;
    return Math.round(ms * 90 - this.base90k);
  }
}
