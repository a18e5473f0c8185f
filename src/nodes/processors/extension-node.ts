import type { ExtensionConfig } from '../../graph/model.js';
import type { EncodedImage, Frame } from '../../media/sample.js';
import { mapBoxesToFrame } from '../../extension/boxes.js';
import { Sampler } from '../../extension/sampling.js';
import type { ExtensionOutcome, ReplyProblem } from '../../extension/reply.js';
import { imageRequestKey, MediaNode, type Inference, type Item, type NodeContext } from '../node.js';

/**
 * What the HTTP and gRPC extension nodes share (lva-spec §2.3); only how one picture travels to the
 * extension and back differs (`send`).
 *
 * - Sampling on media time (extension/sampling.ts): skipSamplesWithoutAnnotation, then
 *   maximumSamplesPerSecond, then the busy back-off (HTTP 503 Retry-After, gRPC RESOURCE_EXHAUSTED).
 * - One picture in flight. Live: a frame arriving while one is in flight is dropped and counted
 *   (droppedBusy) — inference never queues up behind a slow extension. Deterministic replay: every
 *   sampled frame waits for its answer, so the results depend only on the file and the extension.
 * - Results: an `event` item (inferences with boxes mapped back to the frame, dated at the frame's
 *   pts) for hub sinks and signal gates, and the frame itself annotated with them for downstream
 *   extensions (ai-composition). Nothing found: no event, the frame goes on unannotated.
 * - Watermark: "analysed up to" — held just before a frame whose answer is pending, so a gate never
 *   releases media the extension may still trigger on.
 * - Errors become diagnostics events (one per kind per 10 s of media time, every one counted),
 *   never a crash.
 */

const PROBLEM_REPEAT_TICKS = 10 * 90_000;

export abstract class ExtensionNode extends MediaNode<ExtensionConfig> {
  private readonly sampler: Sampler;
  private readonly imageKey: string;
  private readonly waitForEachAnswer: boolean;
  private inflight: Promise<void> | null = null;
  private inflightPts: number | null = null;
  /** Newest media time upstream has shown us (frames and watermarks). */
  private upstreamSeen = -Infinity;
  private lastWatermark = -Infinity;
  private readonly problemLast = new Map<string, number>();
  override readonly stats = {
    frames: 0, requests: 0, results: 0, empty: 0, errors: 0, busy503: 0,
    droppedBusy: 0, skippedRate: 0, skippedAnnotation: 0, skippedBackoff: 0, missingImage: 0,
  };

  /** The endpoint as it may be shown (no secrets). */
  protected abstract readonly displayUrl: string;
  /** What a ProtocolError's `protocol` says when the problem does not name one. */
  protected abstract readonly protocolName: 'http' | 'grpc';
  /** Sends one picture; resolves with what the answer means (never rejects). */
  protected abstract send(frame: Frame, image: EncodedImage, upstream: Inference[] | undefined): Promise<ExtensionOutcome>;

  constructor(config: ExtensionConfig, ctx: NodeContext) {
    super(config, ctx);
    this.sampler = new Sampler(config.samplingOptions);
    this.imageKey = imageRequestKey(config.image);
    this.waitForEachAnswer = ctx.replayInput !== undefined && !ctx.replayInput.realtime;
  }

  handle(_pad: number, item: Item): Promise<void> | void {
    switch (item.kind) {
      case 'frame':
        return this.onFrame(item.frame, item.inferences);
      case 'watermark':
        this.advance(item.pts90k);
        return;
      case 'eos':
        // Let the answer in flight land before downstream sees the end.
        return this.inflight ?? undefined;
      default:
        return;
    }
  }

  private onFrame(frame: Frame, upstream: Inference[] | undefined): Promise<void> | void {
    this.stats.frames++;
    const pts = frame.pts90k;
    const decision = this.sampler.decide(pts, (upstream?.length ?? 0) > 0);
    if (decision !== 'send') {
      if (decision === 'rate') this.stats.skippedRate++;
      else if (decision === 'annotation') this.stats.skippedAnnotation++;
      else this.stats.skippedBackoff++;
      this.advance(pts);
      return;
    }
    if (this.inflight) {
      this.stats.droppedBusy++;
      this.upstreamSeen = Math.max(this.upstreamSeen, pts);
      return;
    }
    const image = frame.images?.get(this.imageKey);
    if (!image) {
      this.stats.missingImage++;
      this.advance(pts);
      return;
    }
    this.sampler.sent(pts);
    this.stats.requests++;
    this.inflightPts = pts;
    this.upstreamSeen = Math.max(this.upstreamSeen, pts);
    const p = this.send(frame, image, upstream).then((outcome) => this.onOutcome(frame, image, outcome)).finally(() => {
      this.inflight = null;
      this.inflightPts = null;
      this.advance(this.upstreamSeen);
    });
    this.inflight = p;
    if (this.waitForEachAnswer) return p;
  }

  private onOutcome(frame: Frame, image: EncodedImage, outcome: ExtensionOutcome): void {
    const pts = frame.pts90k;
    switch (outcome.kind) {
      case 'nothing':
        this.stats.empty++;
        this.ctx.emit({ kind: 'frame', frame });
        return;
      case 'busy':
        this.stats.busy503++;
        this.sampler.backOff(pts, outcome.retryAfterMs);
        this.report(pts, {
          name: 'ProtocolError', errorCode: this.protocolName === 'http' ? '503' : 'ResourceExhausted',
          message: `the extension is busy${this.protocolName === 'http' ? ' (503)' : ' (RESOURCE_EXHAUSTED)'}; retrying after ${outcome.retryAfterMs} ms of media time`,
        });
        return;
      case 'failed':
        this.stats.errors++;
        this.report(pts, outcome.problem);
        return;
      case 'inferences': {
        if (outcome.problem) this.report(pts, outcome.problem);
        this.stats.results++;
        const inferences = mapBoxesToFrame(outcome.inferences, image.content);
        this.ctx.emit({ kind: 'event', event: { pts90k: pts, inferences, producer: { name: this.name, role: 'processors' } } });
        this.ctx.emit({ kind: 'frame', frame, inferences });
        return;
      }
    }
  }

  /** Publishes a diagnostics event for a problem, once per kind per 10 s of media time. */
  protected report(pts90k: number, problem: ReplyProblem): void {
    const key = `${problem.name}/${problem.errorCode}`;
    const last = this.problemLast.get(key);
    if (last !== undefined && pts90k - last < PROBLEM_REPEAT_TICKS && pts90k >= last) return;
    this.problemLast.set(key, pts90k);
    this.ctx.log.warn({ errorCode: problem.errorCode, url: this.displayUrl }, problem.message);
    this.ctx.publish('Diagnostics', problem.name, {
      errorCode: problem.errorCode,
      ...(problem.name === 'ProtocolError' ? { protocol: problem.protocol ?? this.protocolName } : {}),
      url: this.displayUrl,
      message: problem.message,
    });
  }

  /** Moves the watermark to `pts90k`, or to just before the frame whose answer is pending. */
  private advance(pts90k: number): void {
    this.upstreamSeen = Math.max(this.upstreamSeen, pts90k);
    const wm = this.inflightPts === null ? this.upstreamSeen : Math.min(this.upstreamSeen, this.inflightPts - 1);
    if (wm > this.lastWatermark) {
      this.lastWatermark = wm;
      this.ctx.emit({ kind: 'watermark', pts90k: wm });
    }
  }

  override async stop(): Promise<void> {
    await this.inflight;
  }
}
