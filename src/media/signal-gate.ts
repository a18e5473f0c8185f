/**
 * The signal gate of lva-spec §6 as a pure state machine on the 90 kHz media timeline.
 *
 * Inputs are trigger events (`trigger`) and the progress of media time (`advance`, `finish`);
 * outputs are decisions (`open`, `extend`, `close`) that the SignalGateNode turns into "flush the
 * ring buffer from start90k, then forward live samples while shouldForward(pts)" and "finish the clip".
 * No I/O, no timers, no wall clock: every time is a 90 kHz media timestamp handed in by the caller.
 *
 * One activation, on the media timeline (W = evaluation window, O = offset):
 *
 *      tFirst+O (start)   tFirst   firstArrival   decideAt = firstArrival+W          end
 *   ------|-----------------|-----------|-----------------|------------------------------|------>
 *         |<-- pre-roll  -->|           |<- evaluating: ->|<----------- open ----------->|
 *                                        earlier events    later events push end to tLast+Tmin,
 *                                        move tFirst       never beyond tFirst+Tmax
 *
 *   end = min(tLast + Tmin, tFirst + Tmax)        clip = [start, end), start clamped to ≥ previous end
 *
 * Boundary decisions (lva-spec §6.2 leaves them open; these are ours):
 * - The evaluation window is half-open, [firstArrival, firstArrival + W): once media time reaches
 *   decideAt the open decision is taken, so an earlier-dated event arriving exactly at decideAt is a late
 *   arrival. This makes the outcome independent of whether the node called advance() or trigger()
 *   first for that instant, and makes W = 0 mean "no late event is ever honoured".
 * - The clip is half-open, [start, end): a sample with pts == end is not forwarded, and an event that
 *   arrives when media time has reached end finds the activation closed and starts a new one, whose
 *   start is clamped to the previous end, so the two clips are contiguous. An event arriving at
 *   end − 1 tick still extends the open activation.
 * - Whether an event extends an activation is decided by its arrival (the state of the gate when it
 *   arrives), as §6.1 rule 3 says ("arrives while the gate is open"); where it places the clip is
 *   decided by its media time.
 * - Before handling a trigger the gate first catches up to the trigger's arrival (time never runs
 *   backwards: an arrival earlier than media already seen counts as "now"). Decisions caused by that
 *   catch-up are queued and returned, in order, by the next advance()/finish().
 */

import type { SignalGateConfig } from '../graph/model.js';
import { msToTicks } from './sample.js';

/** The four §6.1 parameters in 90 kHz ticks. */
export interface SignalGateParams {
  /** W, activationEvaluationWindow (≥ 0). */
  readonly windowTicks: number;
  /** O, activationSignalOffset; negative = pre-roll, positive = delayed start. */
  readonly offsetTicks: number;
  /** Tmin, minimumActivationTime (> 0). */
  readonly minTicks: number;
  /** Tmax, maximumActivationTime (> 0). */
  readonly maxTicks: number;
}

/** Guards against absurd event timestamps (lva-spec has none; peers.md §3 item 11). */
export interface SignalGateOptions {
  /** An event dated more than this after its arrival is rejected ('event-in-future'). Default: Tmax. */
  readonly maxEventLeadTicks?: number;
  /**
   * An event dated more than this before its arrival is rejected ('event-too-old'). Default: Tmax —
   * such an event's whole activation (capped at tFirst + Tmax) would have ended before it arrived, and
   * its pre-roll is far outside any ring buffer sized by retentionFor().
   */
  readonly maxEventAgeTicks?: number;
}

/** closed: no activation, media is only buffered; evaluating: waiting for decideAt, earlier events may
 * still move the start; open: start fixed, media in [start, end) is forwarded, events push the end. */
export type GateState = 'closed' | 'evaluating' | 'open';

export type TriggerRejectReason =
  /** Event time is NaN, infinite or negative. */
  | 'invalid-event-time'
  /** Arrival time is NaN, infinite or negative. */
  | 'invalid-arrival-time'
  /** Event dated more than maxEventLeadTicks after its arrival. */
  | 'event-in-future'
  /** Event dated more than maxEventAgeTicks before its arrival. */
  | 'event-too-old'
  /** §6.1 rule 5: earlier than the activation's first event, arrived after the open decision. */
  | 'late-arrival'
  /** §6.1 rule 4: dated at or after tFirst + Tmax, so no clip of this activation can contain it. */
  | 'beyond-maximum-activation-time'
  /** The clip this event would start (te + min(Tmin, Tmax)) ends before the previous clip's end, so
   * after the overlap clamp it would be empty. */
  | 'covered-by-previous-activation';

export type TriggerResult =
  | { readonly accepted: true; readonly activationId: number; readonly effect: 'started' | 'moved-start' | 'extended' | 'none' }
  | { readonly accepted: false; readonly reason: TriggerRejectReason; readonly activationId?: number };

/** The evaluation window has elapsed: flush the buffer from start90k and forward live media. */
export interface GateOpen {
  readonly kind: 'open';
  readonly activationId: number;
  /** Media time at which the decision was taken (≥ decideAt). */
  readonly at90k: number;
  /** tFirst: media time of the earliest event of the activation. */
  readonly firstEvent90k: number;
  /** tFirst + O, as the spec defines the clip start (RecordingStarted.requestedStartTime). */
  readonly requestedStart90k: number;
  /** requestedStart90k clamped to ≥ the previous activation's end (lva-spec §6.2 decision [I]). */
  readonly start90k: number;
  /** True when start90k > requestedStart90k because of the clamp. */
  readonly clamped: boolean;
  /** Planned end at the time of opening; later events may move it (see GateExtend). */
  readonly end90k: number;
}

/** An event arriving while open moved the planned end (informational; shouldForward already knows). */
export interface GateExtend {
  readonly kind: 'extend';
  readonly activationId: number;
  readonly at90k: number;
  readonly end90k: number;
}

/** The activation is over: samples with pts ≥ end90k no longer belong to it. */
export interface GateClose {
  readonly kind: 'close';
  readonly activationId: number;
  readonly at90k: number;
  readonly start90k: number;
  readonly end90k: number;
  /** Closed by finish() before the planned end (end of stream, discontinuity): end90k = media now. */
  readonly truncated: boolean;
  /** end90k ≤ start90k: nothing of the stream belongs to this clip (positive O ≥ Tmin, or truncation). */
  readonly empty: boolean;
  readonly eventCount: number;
  readonly lateDropped: number;
}

export type GateDecision = GateOpen | GateExtend | GateClose;

/** A read-only view of the activation in progress. */
export interface ActivationSnapshot {
  readonly id: number;
  readonly state: 'evaluating' | 'open';
  readonly tFirst90k: number;
  readonly tLast90k: number;
  readonly firstArrival90k: number;
  readonly decideAt90k: number;
  readonly requestedStart90k: number;
  /** While evaluating this is provisional: an earlier event can still move it. */
  readonly start90k: number;
  readonly clamped: boolean;
  /** Planned end, min(tLast + Tmin, tFirst + Tmax). */
  readonly end90k: number;
  readonly eventCount: number;
  readonly lateDropped: number;
}

interface Activation {
  readonly id: number;
  readonly firstArrival90k: number;
  readonly decideAt90k: number;
  tFirst90k: number;
  tLast90k: number;
  eventCount: number;
  lateDropped: number;
}

const REJECT_REASONS: readonly TriggerRejectReason[] = [
  'invalid-event-time',
  'invalid-arrival-time',
  'event-in-future',
  'event-too-old',
  'late-arrival',
  'beyond-maximum-activation-time',
  'covered-by-previous-activation',
];

function isMediaTime(t: number): boolean {
  return Number.isFinite(t) && t >= 0;
}

/** Converts the millisecond durations of a validated SignalGateConfig into gate parameters. */
export function signalGateParamsFromConfig(cfg: SignalGateConfig): SignalGateParams {
  return {
    windowTicks: msToTicks(cfg.activationEvaluationWindowMs),
    offsetTicks: msToTicks(cfg.activationSignalOffsetMs),
    minTicks: msToTicks(cfg.minimumActivationTimeMs),
    maxTicks: msToTicks(cfg.maximumActivationTimeMs),
  };
}

export class SignalGate {
  static fromConfig(cfg: SignalGateConfig, options: SignalGateOptions = {}): SignalGate {
    return new SignalGate(signalGateParamsFromConfig(cfg), options);
  }

  readonly params: SignalGateParams;
  private readonly maxLeadTicks: number;
  private readonly maxAgeTicks: number;
  /** Shortest possible clip tail after a lone event: the end is at least tFirst + min(Tmin, Tmax). */
  private readonly minSpanTicks: number;

  private gateState: GateState = 'closed';
  private activation: Activation | null = null;
  private nextId = 1;
  /** Newest media time seen (advance/finish/trigger arrival); -Infinity before any. */
  private now = Number.NEGATIVE_INFINITY;
  /** End of the last closed activation, for the overlap clamp; null before the first one. */
  private previousEnd: number | null = null;
  private pending: GateDecision[] = [];
  private accepted = 0;
  private readonly rejected: Record<TriggerRejectReason, number>;

  constructor(params: SignalGateParams, options: SignalGateOptions = {}) {
    const { windowTicks, offsetTicks, minTicks, maxTicks } = params;
    if (!Number.isFinite(windowTicks) || windowTicks < 0) throw new RangeError(`signal gate: windowTicks must be ≥ 0, got ${windowTicks}`);
    if (!Number.isFinite(offsetTicks)) throw new RangeError(`signal gate: offsetTicks must be finite, got ${offsetTicks}`);
    if (!Number.isFinite(minTicks) || minTicks <= 0) throw new RangeError(`signal gate: minTicks must be > 0, got ${minTicks}`);
    if (!Number.isFinite(maxTicks) || maxTicks <= 0) throw new RangeError(`signal gate: maxTicks must be > 0, got ${maxTicks}`);
    this.params = { windowTicks, offsetTicks, minTicks, maxTicks };
    this.maxLeadTicks = options.maxEventLeadTicks ?? maxTicks;
    this.maxAgeTicks = options.maxEventAgeTicks ?? maxTicks;
    if (!(this.maxLeadTicks >= 0) || !(this.maxAgeTicks >= 0)) throw new RangeError('signal gate: event lead/age limits must be ≥ 0');
    this.minSpanTicks = Math.min(minTicks, maxTicks);
    this.rejected = Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<TriggerRejectReason, number>;
  }

  get state(): GateState {
    return this.gateState;
  }

  /** Newest media time the gate has seen, or null before any. */
  get mediaNow90k(): number | null {
    return this.now === Number.NEGATIVE_INFINITY ? null : this.now;
  }

  /** End of the most recently closed activation (what the next start is clamped to), or null. */
  get previousEnd90k(): number | null {
    return this.previousEnd;
  }

  get acceptedEvents(): number {
    return this.accepted;
  }

  /** Rejected/dropped trigger counts by reason, over the gate's lifetime. */
  get rejections(): Readonly<Record<TriggerRejectReason, number>> {
    return { ...this.rejected };
  }

  get currentActivation(): ActivationSnapshot | null {
    const a = this.activation;
    if (a === null || this.gateState === 'closed') return null;
    const requestedStart = this.requestedStartOf(a);
    const start = this.startOf(a);
    return {
      id: a.id,
      state: this.gateState,
      tFirst90k: a.tFirst90k,
      tLast90k: a.tLast90k,
      firstArrival90k: a.firstArrival90k,
      decideAt90k: a.decideAt90k,
      requestedStart90k: requestedStart,
      start90k: start,
      clamped: start > requestedStart,
      end90k: this.endOf(a),
      eventCount: a.eventCount,
      lateDropped: a.lateDropped,
    };
  }

  /**
   * A trigger event dated eventTime90k that reached the gate when the media clock read arrival90k
   * (the node maps arrival onto the media clock as the pts of the newest sample it has seen).
   */
  trigger(eventTime90k: number, arrival90k: number): TriggerResult {
    if (!isMediaTime(eventTime90k)) return this.reject('invalid-event-time');
    if (!isMediaTime(arrival90k)) return this.reject('invalid-arrival-time');
    const arrival = Math.max(arrival90k, this.now);
    this.step(arrival);
    const te = eventTime90k;
    if (te > arrival + this.maxLeadTicks) return this.reject('event-in-future');
    if (te < arrival - this.maxAgeTicks) return this.reject('event-too-old');

    const a = this.activation;
    if (a === null) {
      if (this.coveredByPrevious(te)) return this.reject('covered-by-previous-activation');
      const started: Activation = {
        id: this.nextId++,
        firstArrival90k: arrival,
        decideAt90k: arrival + this.params.windowTicks,
        tFirst90k: te,
        tLast90k: te,
        eventCount: 1,
        lateDropped: 0,
      };
      this.activation = started;
      this.gateState = 'evaluating';
      this.accepted++;
      return { accepted: true, activationId: started.id, effect: 'started' };
    }

    if (te >= a.tFirst90k + this.params.maxTicks) return this.reject('beyond-maximum-activation-time', a.id);

    if (this.gateState === 'evaluating') {
      // §6.1 rule 5: within W an earlier-dated event becomes the first event and moves the start.
      let effect: 'moved-start' | 'extended' | 'none' = 'none';
      if (te < a.tFirst90k) {
        if (this.coveredByPrevious(te)) return this.reject('covered-by-previous-activation', a.id);
        a.tFirst90k = te;
        effect = 'moved-start';
      } else if (te > a.tLast90k) {
        a.tLast90k = te;
        effect = 'extended';
      }
      a.eventCount++;
      this.accepted++;
      return { accepted: true, activationId: a.id, effect };
    }

    // Open: the start has been announced and cannot move any more.
    if (te < a.tFirst90k) {
      a.lateDropped++;
      return this.reject('late-arrival', a.id);
    }
    const endBefore = this.endOf(a);
    if (te > a.tLast90k) a.tLast90k = te;
    const endAfter = this.endOf(a);
    a.eventCount++;
    this.accepted++;
    if (endAfter !== endBefore) {
      this.pending.push({ kind: 'extend', activationId: a.id, at90k: this.now, end90k: endAfter });
      return { accepted: true, activationId: a.id, effect: 'extended' };
    }
    return { accepted: true, activationId: a.id, effect: 'none' };
  }

  /** Media time has progressed to mediaNow90k (newest pts of the media input). Returns the decisions
   * taken since the last call, in order. A mediaNow90k behind media already seen changes nothing. */
  advance(mediaNow90k: number): GateDecision[] {
    if (isMediaTime(mediaNow90k)) this.step(mediaNow90k);
    return this.drain();
  }

  /**
   * End of stream at mediaNow90k: an activation still evaluating is opened now, and one still open is
   * closed at mediaNow90k with `truncated: true` (the clip is shorter than planned).
   */
  finish(mediaNow90k: number): GateDecision[] {
    if (isMediaTime(mediaNow90k)) this.step(mediaNow90k);
    const a = this.activation;
    if (a !== null && this.gateState === 'evaluating') this.open(a);
    if (a !== null && this.gateState === 'open') {
      const end = this.endOf(a);
      // step() already closed it when end ≤ now; otherwise the clip is cut at the newest media.
      if (end <= this.now) this.close(a, end, false);
      else this.close(a, this.now, true);
    }
    return this.drain();
  }

  /**
   * Discontinuity (the source reconnected and its timestamps may restart): finish any activation at
   * the newest media time, then forget the media clock and the previous end, so the new timeline is
   * neither clamped against nor ignored because of the old one. Activation ids keep counting.
   */
  reset(): GateDecision[] {
    const decisions = this.now === Number.NEGATIVE_INFINITY ? this.drain() : this.finish(this.now);
    this.now = Number.NEGATIVE_INFINITY;
    this.previousEnd = null;
    return decisions;
  }

  /** Whether a live sample at pts90k belongs to the open activation: start ≤ pts < end. */
  shouldForward(pts90k: number): boolean {
    const a = this.activation;
    if (a === null || this.gateState !== 'open') return false;
    return pts90k >= this.startOf(a) && pts90k < this.endOf(a);
  }

  private step(mediaNow: number): void {
    if (mediaNow > this.now) this.now = mediaNow;
    const a = this.activation;
    if (a === null) return;
    if (this.gateState === 'evaluating' && this.now >= a.decideAt90k) this.open(a);
    // Also covers Tmax: end ≤ tFirst + Tmax, so reaching the cap closes the activation for good.
    if (this.gateState === 'open') {
      const end = this.endOf(a);
      if (this.now >= end) this.close(a, end, false);
    }
  }

  private open(a: Activation): void {
    this.gateState = 'open';
    const requestedStart = this.requestedStartOf(a);
    const start = this.startOf(a);
    this.pending.push({
      kind: 'open',
      activationId: a.id,
      at90k: this.now,
      firstEvent90k: a.tFirst90k,
      requestedStart90k: requestedStart,
      start90k: start,
      clamped: start > requestedStart,
      end90k: this.endOf(a),
    });
  }

  private close(a: Activation, end: number, truncated: boolean): void {
    const start = this.startOf(a);
    this.pending.push({
      kind: 'close',
      activationId: a.id,
      at90k: this.now,
      start90k: start,
      end90k: end,
      truncated,
      empty: end <= start,
      eventCount: a.eventCount,
      lateDropped: a.lateDropped,
    });
    this.previousEnd = end;
    this.activation = null;
    this.gateState = 'closed';
  }

  private requestedStartOf(a: Activation): number {
    return a.tFirst90k + this.params.offsetTicks;
  }

  /** Clip start after the overlap clamp: with negative O a new activation would otherwise reach back
   * into media the previous clip already holds. */
  private startOf(a: Activation): number {
    const requested = this.requestedStartOf(a);
    return this.previousEnd !== null && this.previousEnd > requested ? this.previousEnd : requested;
  }

  private endOf(a: Activation): number {
    return Math.min(a.tLast90k + this.params.minTicks, a.tFirst90k + this.params.maxTicks);
  }

  private coveredByPrevious(te: number): boolean {
    return this.previousEnd !== null && te + this.minSpanTicks <= this.previousEnd;
  }

  private reject(reason: TriggerRejectReason, activationId?: number): TriggerResult {
    this.rejected[reason]++;
    return activationId === undefined ? { accepted: false, reason } : { accepted: false, reason, activationId };
  }

  private drain(): GateDecision[] {
    const out = this.pending;
    this.pending = [];
    return out;
  }
}
