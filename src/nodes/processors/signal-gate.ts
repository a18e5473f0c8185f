import { NodeTypes, type SignalGateConfig } from '../../graph/model.js';
import { RingBuffer, retentionFor } from '../../media/ring-buffer.js';
import { SignalGate, type GateDecision } from '../../media/signal-gate.js';
import type { Sample } from '../../media/sample.js';
import { caps, kinds, MediaNode, type Item, type NodeContext, type NodeFactory } from '../node.js';

/**
 * `#Microsoft.Media.MediaGraphSignalGateProcessor` (lva-spec §6): the pure SignalGate decides, the
 * RingBuffer keeps pre-roll; this node feeds them and turns decisions into in-band items for the
 * sinks: activation start → pre-roll samples from the keyframe at/before the requested start → live
 * samples → activation end.
 *
 * Media is held back until every analysis input (motion detector, extensions) has reported, via
 * watermarks, that it has looked at frames up to that media time. Triggers therefore reach the gate
 * before the media they are about, however slow analysis is relative to stream copy — which makes
 * replay deterministic — and live the hold is capped (W + 2 s) so a stalled analyser cannot stop
 * recording.
 */

const DEFAULT_GOP_TICKS = 2 * 90_000;
const RING_MAX_BYTES = 256 * 1024 * 1024;
const LIVE_MAX_HOLD_EXTRA_TICKS = 2 * 90_000;
const ANALYSIS_TYPES = new Set<string>([NodeTypes.MotionDetection, NodeTypes.HttpExtension, NodeTypes.GrpcExtension,
  NodeTypes.CognitiveServicesVisionExtension, NodeTypes.FrameRateFilter]);

export class SignalGateNode extends MediaNode<SignalGateConfig> {
  private readonly gate: SignalGate;
  private readonly ring: RingBuffer;
  private readonly mediaPads = new Set<number>();
  /** Analysis pads → media time they have analysed up to (Infinity once ended). */
  private readonly watermarks = new Map<number, number>();
  private readonly pending: Sample[] = [];
  private pendingHead = 0;
  private newestReceived = -Infinity;
  private lastReleased = -Infinity;
  private forwarding: number | null = null;
  /** Positive offset: the clip starts later than the open decision; wait for media to reach it. */
  private delayedStart: { id: number; start90k: number; requestedStart90k: number; firstEvent90k: number } | null = null;
  private eosPads = 0;
  private gopWarned = 0;
  override readonly stats = { triggers: 0, rejected: 0, activations: 0 };
  private readonly maxHoldTicks: number;

  constructor(config: SignalGateConfig, ctx: NodeContext) {
    super(config, ctx);
    this.gate = SignalGate.fromConfig(config);
    this.ring = new RingBuffer({ retainTicks: retentionFor(config, DEFAULT_GOP_TICKS), maxBytes: RING_MAX_BYTES });
    ctx.node.inputs.forEach((input, pad) => {
      const t = ctx.upstreamType(input.nodeName);
      if (t === NodeTypes.RtspSource) this.mediaPads.add(pad);
      else if (t !== undefined && ANALYSIS_TYPES.has(t)) this.watermarks.set(pad, -Infinity);
    });
    const deterministic = ctx.replayInput !== undefined && !ctx.replayInput.realtime;
    this.maxHoldTicks = deterministic ? Infinity : Math.round(config.activationEvaluationWindowMs * 90) + LIVE_MAX_HOLD_EXTRA_TICKS;
  }

  handle(pad: number, item: Item): void {
    switch (item.kind) {
      case 'init':
        if (this.mediaPads.has(pad)) this.ctx.emit(item);
        return;
      case 'sample':
        if (!this.mediaPads.has(pad)) return;
        this.pending.push(item.sample);
        if (item.sample.pts90k > this.newestReceived) this.newestReceived = item.sample.pts90k;
        this.release();
        return;
      case 'event': {
        if (this.mediaPads.has(pad)) return;
        this.stats.triggers++;
        // Analysis events come before the media they describe is released (see class comment), so
        // they "arrive" at their own media time; hub messages arrive at the newest media time seen.
        const te = item.event.pts90k;
        const arrival = this.watermarks.has(pad) ? Math.max(te, this.lastReleased) : Math.max(this.newestReceived, this.lastReleased, 0);
        const r = this.gate.trigger(te, arrival);
        if (!r.accepted) {
          this.stats.rejected++;
          this.ctx.log.debug({ reason: r.reason, eventTime90k: te }, 'trigger ignored');
        }
        return;
      }
      case 'discont':
        if (this.mediaPads.has(pad)) this.onStreamBroken();
        return;
      case 'watermark':
        if (this.watermarks.has(pad)) {
          this.watermarks.set(pad, Math.max(this.watermarks.get(pad)!, item.pts90k));
          this.release();
        }
        return;
      case 'eos':
        this.eosPads++;
        if (this.watermarks.has(pad)) this.watermarks.set(pad, Infinity);
        if (this.eosPads >= this.ctx.node.inputs.length) this.endOfStream();
        else this.release();
        return;
      default:
        return;
    }
  }

  /** Releases held media up to what every analysis input has seen (or the live hold cap). */
  private release(): void {
    let limit = this.newestReceived;
    for (const wm of this.watermarks.values()) limit = Math.min(limit, wm);
    if (Number.isFinite(this.maxHoldTicks)) limit = Math.max(limit, this.newestReceived - this.maxHoldTicks);
    while (this.pendingHead < this.pending.length) {
      const s = this.pending[this.pendingHead]!;
      if (s.pts90k > limit) break;
      this.pending[this.pendingHead++] = undefined as never;
      this.process(s);
    }
    if (this.pendingHead > 256 && this.pendingHead * 2 > this.pending.length) {
      this.pending.splice(0, this.pendingHead);
      this.pendingHead = 0;
    }
  }

  private process(s: Sample): void {
    if (s.discont && s.track.kind === 'video' && this.lastReleased > -Infinity) {
      // The camera dropped: the clip in progress ends at the last media before the gap.
      this.apply(this.gate.finish(this.lastReleased), undefined);
    }
    this.ring.push(s);
    if (s.pts90k > this.lastReleased) this.lastReleased = s.pts90k;
    this.checkGop(s.pts90k);
    const emitted = this.apply(this.gate.advance(s.pts90k), s);
    if (this.delayedStart && s.pts90k >= this.delayedStart.start90k) {
      const d = this.delayedStart;
      this.delayedStart = null;
      this.startClip(d.id, d.start90k, d.requestedStart90k, d.firstEvent90k);
      return;
    }
    if (!emitted && this.forwarding !== null && this.gate.shouldForward(s.pts90k)) this.ctx.emit({ kind: 'sample', sample: s });
  }

  /** Applies gate decisions; returns true when `current` was already emitted as part of a pre-roll. */
  private apply(decisions: GateDecision[], current: Sample | undefined): boolean {
    let emitted = false;
    for (const d of decisions) {
      if (d.kind === 'open') {
        this.stats.activations++;
        if (current && d.start90k > current.pts90k) {
          this.delayedStart = { id: d.activationId, start90k: d.start90k, requestedStart90k: d.requestedStart90k, firstEvent90k: d.firstEvent90k };
        } else {
          emitted = this.startClip(d.activationId, d.start90k, d.requestedStart90k, d.firstEvent90k) || emitted;
        }
      } else if (d.kind === 'close') {
        if (this.delayedStart?.id === d.activationId) this.delayedStart = null;
        if (this.forwarding === d.activationId) {
          this.ctx.emit({ kind: 'activation', phase: 'end', id: d.activationId, end90k: d.end90k, truncated: d.truncated });
          this.forwarding = null;
        }
      }
    }
    return emitted;
  }

  private startClip(id: number, start90k: number, requestedStart90k: number, firstEvent90k: number): boolean {
    const pre = this.ring.readFrom(start90k);
    this.forwarding = id;
    this.ctx.emit({ kind: 'activation', phase: 'start', id, requestedStart90k, firstEvent90k });
    if (!pre.keyframeFound) return false;
    if (pre.actualStart90k > start90k) {
      this.ctx.publish('Diagnostics', 'PreRollShortened', {
        requestedStartTime: this.ctx.clock.toDate(start90k).toISOString(),
        actualStartTime: this.ctx.clock.toDate(pre.actualStart90k).toISOString(),
        reason: 'The pre-roll buffer did not reach back to the requested start (stream started or reconnected recently).',
      }, { eventTime: this.ctx.clock.toDate(start90k).toISOString() });
    }
    for (const s of pre.samples) this.ctx.emit({ kind: 'sample', sample: s });
    return true;
  }

  private checkGop(now90k: number): void {
    const gop = this.ring.gopTicks;
    if (!(gop > 0)) return;
    const want = retentionFor(this.config, gop);
    if (want !== this.ring.retainTicks) this.ring.setRetention(want);
    const preRoll = Math.max(0, -this.config.activationSignalOffsetMs * 90);
    // A clip starts on the keyframe at or before the requested start, so it can begin up to one GOP
    // early; tell the operator once when that exceeds the pre-roll they asked for.
    if (gop > Math.max(preRoll, 2 * 90_000) && Math.abs(gop - this.gopWarned) > gop / 2) {
      this.gopWarned = gop;
      this.ctx.publish('Diagnostics', 'KeyframeIntervalTooLong', {
        keyframeIntervalSeconds: gop / 90_000,
        requestedPreRollSeconds: preRoll / 90_000,
        message: 'Clips start on the keyframe at or before the requested start, so they may begin up to one keyframe interval earlier than requested. Configure the camera for a shorter GOP (1–2 s) for precise pre-roll.',
      }, { eventTime: this.ctx.clock.toDate(now90k).toISOString() });
    }
  }

  /** The camera went away: what is held can no longer wait for analysis, and the clip ends now. */
  private onStreamBroken(): void {
    const saved = new Map(this.watermarks);
    for (const k of this.watermarks.keys()) this.watermarks.set(k, Infinity);
    this.release();
    for (const [k, v] of saved) this.watermarks.set(k, v === Infinity ? Infinity : Math.max(v, this.lastReleased));
    if (this.lastReleased > -Infinity) this.apply(this.gate.finish(this.lastReleased + 1), undefined);
    this.delayedStart = null;
  }

  private endOfStream(): void {
    for (const k of this.watermarks.keys()) this.watermarks.set(k, Infinity);
    this.release();
    if (this.lastReleased > -Infinity) this.apply(this.gate.finish(this.lastReleased + 1), undefined);
    if (this.forwarding !== null) {
      this.ctx.emit({ kind: 'activation', phase: 'end', id: this.forwarding, end90k: this.lastReleased + 1, truncated: true });
      this.forwarding = null;
    }
  }
}

export const signalGateFactory: NodeFactory = {
  type: NodeTypes.SignalGate,
  outputCaps: () => caps('media'),
  checkInputs: (inputCaps) => {
    if (!inputCaps.some((c) => c.has('media'))) return 'A signal gate needs a media input from the RTSP source.';
    if (!inputCaps.some((c) => c.has('events'))) return 'A signal gate needs at least one trigger input (a motion detector, an extension or an IoT Hub message source).';
    return undefined;
  },
  accepts: () => kinds('init', 'sample', 'event', 'watermark', 'discont', 'eos'),
  create: (node, ctx) => new SignalGateNode(node.config as SignalGateConfig, ctx),
};
