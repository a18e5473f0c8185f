import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  SignalGate,
  signalGateParamsFromConfig,
  type GateClose,
  type GateDecision,
  type GateOpen,
  type SignalGateParams,
  type TriggerResult,
} from '../../src/media/signal-gate.js';
import { NodeTypes, type SignalGateConfig } from '../../src/graph/model.js';
import { prng } from '../helpers/prng.js';

/** Seconds → 90 kHz ticks. */
const s = (seconds: number): number => Math.round(seconds * 90_000);
/** 25 fps frame interval. */
const FRAME = 3600;

function params(W: number, O: number, Tmin: number, Tmax: number): SignalGateParams {
  return { windowTicks: s(W), offsetTicks: s(O), minTicks: s(Tmin), maxTicks: s(Tmax) };
}

/** The doc example of lva-spec §6.1: W=1 s, O=−5 s, Tmin=20 s, Tmax=40 s. */
const DOC = params(1, -5, 20, 40);

interface Clip {
  id: number;
  start: number;
  requestedStart: number;
  firstEvent: number;
  clamped: boolean;
  end: number;
  truncated: boolean;
  openedAt: number;
  closedAt: number;
}

/** Folds a decision list into one record per closed activation. */
function clipsOf(decisions: GateDecision[]): Clip[] {
  const opened = new Map<number, GateOpen>();
  const clips: Clip[] = [];
  for (const d of decisions) {
    if (d.kind === 'open') opened.set(d.activationId, d);
    if (d.kind === 'close') {
      const o = opened.get(d.activationId);
      assert.ok(o, `close without open for activation ${d.activationId}`);
      clips.push({
        id: d.activationId,
        start: d.start90k,
        requestedStart: o.requestedStart90k,
        firstEvent: o.firstEvent90k,
        clamped: o.clamped,
        end: d.end90k,
        truncated: d.truncated,
        openedAt: o.at90k,
        closedAt: d.at90k,
      });
    }
  }
  return clips;
}

interface Arrival {
  /** Event media time, ticks. */
  te: number;
  /** Arrival on the media clock, ticks. */
  at: number;
}

interface Run {
  decisions: GateDecision[];
  results: TriggerResult[];
  /** Live frames for which shouldForward was true. */
  forwarded: number[];
}

/**
 * Replays a 25 fps media timeline from `from` to `until` (ticks) and delivers events at their arrival
 * time; on equal times the frame comes first, as when the node sees a sample then an event stamped
 * with that sample's pts. Ends with finish(until) when asked.
 */
function drive(gate: SignalGate, events: Arrival[], until: number, opts: { from?: number; finish?: boolean } = {}): Run {
  const queue = [...events].sort((a, b) => a.at - b.at);
  const run: Run = { decisions: [], results: [], forwarded: [] };
  let k = 0;
  for (let t = opts.from ?? 0; t <= until; t += FRAME) {
    run.decisions.push(...gate.advance(t));
    if (gate.shouldForward(t)) run.forwarded.push(t);
    while (k < queue.length && queue[k]!.at < t + FRAME) {
      const e = queue[k++]!;
      run.results.push(gate.trigger(e.te, e.at));
    }
  }
  if (opts.finish) run.decisions.push(...gate.finish(until));
  return run;
}

/** Replay: events reach the gate at their own media time. */
const onTime = (...seconds: number[]): Arrival[] => seconds.map((x) => ({ te: s(x), at: s(x) }));

function only<T>(xs: T[]): T {
  assert.equal(xs.length, 1, `expected exactly one element, got ${JSON.stringify(xs)}`);
  return xs[0]!;
}

describe('signal gate §6.1 worked example (W=1 s, O=−5 s, Tmin=20 s, Tmax=40 s)', () => {
  test('§6.1 only E1=100 → clip [95, 120] (25 s = −O + Tmin)', () => {
    const gate = new SignalGate(DOC);
    const run = drive(gate, onTime(100), s(200));
    const clip = only(clipsOf(run.decisions));
    assert.equal(clip.start, s(95));
    assert.equal(clip.end, s(120));
    assert.equal(clip.end - clip.start, s(25));
    assert.equal(clip.firstEvent, s(100));
    assert.equal(clip.truncated, false);
    assert.equal(gate.state, 'closed');
  });

  test('§6.1 two events E1=100, E2=105 → clip [95, 125]: E2 restarts Tmin', () => {
    const run = drive(new SignalGate(DOC), onTime(100, 105), s(200));
    const clip = only(clipsOf(run.decisions));
    assert.equal(clip.start, s(95));
    assert.equal(clip.end, s(125));
    const extend = run.decisions.filter((d) => d.kind === 'extend');
    assert.deepEqual(extend.map((d) => d.end90k), [s(125)]);
  });

  test('§6.1 events at 100, 110, 120, 130, … → clip [95, 140]: closes at E1+Tmax although events keep coming', () => {
    const times = [100, 110, 120, 130];
    const gate = new SignalGate(DOC);
    const run = drive(gate, onTime(...times), s(139));
    assert.equal(gate.state, 'open');
    // 140 is the cap; at media 140 the gate closes even though another event is due.
    run.decisions.push(...gate.advance(s(140)));
    const clip = only(clipsOf(run.decisions));
    assert.deepEqual([clip.start, clip.end], [s(95), s(140)]);
    assert.equal(clip.closedAt, s(140));
    assert.equal(gate.state, 'closed');
    // The next event at 140 starts a brand-new activation (§6.1 rule 4).
    const next = gate.trigger(s(140), s(140));
    assert.deepEqual(next, { accepted: true, activationId: 2, effect: 'started' });
  });

  test('§6.2 open decision comes W after the first arrival, not earlier', () => {
    const gate = new SignalGate(DOC);
    gate.advance(s(100));
    gate.trigger(s(100), s(100));
    assert.equal(gate.state, 'evaluating');
    assert.deepEqual(gate.advance(s(101) - 1), []);
    assert.equal(gate.state, 'evaluating');
    assert.equal(gate.shouldForward(s(100)), false, 'nothing is forwarded while evaluating');
    const open = only(gate.advance(s(101))) as GateOpen;
    assert.equal(open.kind, 'open');
    assert.equal(open.at90k, s(101));
    assert.equal(open.requestedStart90k, s(95));
    assert.equal(open.start90k, s(95));
    assert.equal(open.end90k, s(120));
    assert.equal(open.clamped, false);
  });

  test('§6.1 rule 1: the gate is closed by default and forwards nothing', () => {
    const gate = new SignalGate(DOC);
    assert.equal(gate.state, 'closed');
    assert.equal(gate.currentActivation, null);
    for (let t = 0; t < s(60); t += FRAME) {
      assert.deepEqual(gate.advance(t), []);
      assert.equal(gate.shouldForward(t), false);
    }
  });
});

describe('signal gate §6.1 documented duration formulas with other values', () => {
  const configs: Array<[string, SignalGateParams]> = [
    ['W=0.5 s, O=−3 s, Tmin=7 s, Tmax=12 s', params(0.5, -3, 7, 12)],
    ['W=0, O=0, Tmin=5 s, Tmax=30 s', params(0, 0, 5, 30)],
    ['W=10 s, O=−60 s, Tmin=30 s, Tmax=300 s', params(10, -60, 30, 300)],
    ['W=2 s, O=+1 s, Tmin=4 s, Tmax=9 s', params(2, 1, 4, 9)],
  ];
  for (const [name, p] of configs) {
    const O = p.offsetTicks;
    const E1 = s(500);

    test(`§6.1 one event: clip [E1+O, E1+Tmin], length −O+Tmin (${name})`, () => {
      const clip = only(clipsOf(drive(new SignalGate(p), [{ te: E1, at: E1 }], E1 + s(700)).decisions));
      assert.deepEqual([clip.start, clip.end], [E1 + O, E1 + p.minTicks]);
      assert.equal(clip.end - clip.start, -O + p.minTicks);
    });

    test(`§6.1 two events, E2 < E1+Tmin: clip [E1+O, E2+Tmin], length −O+(E2−E1)+Tmin (${name})`, () => {
      const E2 = E1 + Math.floor(p.minTicks / 2 / FRAME) * FRAME;
      const clip = only(clipsOf(drive(new SignalGate(p), [{ te: E1, at: E1 }, { te: E2, at: E2 }], E1 + s(700)).decisions));
      assert.deepEqual([clip.start, clip.end], [E1 + O, E2 + p.minTicks]);
      assert.equal(clip.end - clip.start, -O + (E2 - E1) + p.minTicks);
    });

    test(`§6.1 N events keeping it open: clip [E1+O, E1+Tmax], length −O+Tmax (${name})`, () => {
      // An event every Tmin/2 until well past the cap.
      const step = Math.max(FRAME, Math.floor(p.minTicks / 2 / FRAME) * FRAME);
      const events: Arrival[] = [];
      for (let t = E1; t < E1 + p.maxTicks + s(5); t += step) events.push({ te: t, at: t });
      const clips = clipsOf(drive(new SignalGate(p), events, E1 + s(700)).decisions);
      const first = clips[0]!;
      assert.deepEqual([first.start, first.end], [E1 + O, E1 + p.maxTicks]);
      assert.equal(first.end - first.start, -O + p.maxTicks);
    });
  }
});

describe('signal gate §6.1 rule 5: late arrivals', () => {
  test('§6.1 rule 5: an earlier event arriving within W becomes E1 and moves the start earlier', () => {
    const gate = new SignalGate(DOC);
    const run = drive(gate, [
      { te: s(100), at: s(100) },
      { te: s(98), at: s(100.6) }, // dated 2 s earlier, arrives 0.6 s after E1: inside W = 1 s
    ], s(200));
    assert.deepEqual(run.results[1], { accepted: true, activationId: 1, effect: 'moved-start' });
    const clip = only(clipsOf(run.decisions));
    assert.equal(clip.firstEvent, s(98));
    assert.equal(clip.start, s(93));
    // Tmin counts from the latest event, Tmax from the new earliest one.
    assert.equal(clip.end, s(120));
  });

  test('§6.1 rule 5: the new E1 also moves the Tmax cap earlier', () => {
    const gate = new SignalGate(params(1, -5, 20, 40));
    const events: Arrival[] = [{ te: s(100), at: s(100) }, { te: s(97), at: s(100.5) }];
    for (let t = 110; t <= 200; t += 10) events.push({ te: s(t), at: s(t) });
    const clips = clipsOf(drive(gate, events, s(300)).decisions);
    assert.equal(clips[0]!.end, s(137), 'capped at 97 + 40');
  });

  test('§6.1 rule 5: an earlier event arriving after W is a late arrival: dropped and counted', () => {
    const gate = new SignalGate(DOC);
    const run = drive(gate, [
      { te: s(100), at: s(100) },
      { te: s(99), at: s(101.5) }, // arrives 1.5 s after E1: the decision was taken at 101
    ], s(105));
    assert.deepEqual(run.results[1], { accepted: false, reason: 'late-arrival', activationId: 1 });
    const cur = gate.currentActivation!;
    assert.equal(cur.lateDropped, 1);
    assert.equal(cur.eventCount, 1);
    assert.equal(cur.start90k, s(95), 'start unchanged');
    run.decisions.push(...gate.advance(s(200)));
    const close = run.decisions.find((d): d is GateClose => d.kind === 'close')!;
    assert.equal(close.lateDropped, 1);
    assert.equal(gate.rejections['late-arrival'], 1);
  });

  test('§6.2 [I] the window is half-open: an earlier event arriving exactly at decideAt is late, whatever the call order', () => {
    for (const advanceFirst of [true, false]) {
      const gate = new SignalGate(DOC);
      gate.advance(s(100));
      gate.trigger(s(100), s(100));
      const decisions = advanceFirst ? gate.advance(s(101)) : [];
      const r = gate.trigger(s(99), s(101));
      assert.deepEqual(r, { accepted: false, reason: 'late-arrival', activationId: 1 }, `advanceFirst=${advanceFirst}`);
      decisions.push(...gate.advance(s(101)));
      assert.equal((only(decisions) as GateOpen).requestedStart90k, s(95));
    }
  });

  test('§6.1 rule 5: a later-dated event arriving late still extends (late means earlier than E1)', () => {
    const gate = new SignalGate(DOC);
    const run = drive(gate, [{ te: s(100), at: s(100) }, { te: s(104), at: s(108) }], s(200));
    assert.deepEqual(run.results[1], { accepted: true, activationId: 1, effect: 'extended' });
    assert.equal(only(clipsOf(run.decisions)).end, s(124));
  });

  test('§6.2 events while evaluating adjust tFirst and tLast', () => {
    const gate = new SignalGate(params(2, -5, 20, 40));
    gate.advance(s(100));
    gate.trigger(s(100), s(100));
    assert.deepEqual(gate.trigger(s(101), s(100.5)), { accepted: true, activationId: 1, effect: 'extended' });
    assert.deepEqual(gate.trigger(s(99), s(101)), { accepted: true, activationId: 1, effect: 'moved-start' });
    assert.deepEqual(gate.trigger(s(100.5), s(101.5)), { accepted: true, activationId: 1, effect: 'none' });
    const cur = gate.currentActivation!;
    assert.equal(cur.state, 'evaluating');
    assert.equal(cur.tFirst90k, s(99));
    assert.equal(cur.tLast90k, s(101));
    assert.equal(cur.eventCount, 4);
    assert.equal(cur.decideAt90k, s(102));
    assert.equal(cur.firstArrival90k, s(100));
    const open = only(gate.advance(s(102))) as GateOpen;
    assert.deepEqual([open.firstEvent90k, open.start90k, open.end90k], [s(99), s(94), s(121)]);
  });
});

describe('signal gate §6.1 rule 3–4: extension, boundaries, Tmax', () => {
  test('§6.1 rule 3: an event while open restarts Tmin; extend decision; closes at the new end', () => {
    const gate = new SignalGate(DOC);
    drive(gate, onTime(100), s(110));
    assert.deepEqual(gate.trigger(s(110), s(110)), { accepted: true, activationId: 1, effect: 'extended' });
    const ext = only(gate.advance(s(110)));
    assert.deepEqual(ext, { kind: 'extend', activationId: 1, at90k: s(110), end90k: s(130) });
    assert.deepEqual(gate.advance(s(130) - 1), []);
    assert.equal(gate.shouldForward(s(130) - 1), true);
    const close = only(gate.advance(s(130))) as GateClose;
    assert.equal(close.end90k, s(130));
    assert.equal(gate.shouldForward(s(130)), false);
  });

  test('§6.1 rule 3: an event that does not move the end emits no extend', () => {
    const gate = new SignalGate(DOC);
    drive(gate, onTime(100, 110), s(112));
    // Dated before tLast (late, but not earlier than E1): tLast stays 110.
    assert.deepEqual(gate.trigger(s(105), s(112)), { accepted: true, activationId: 1, effect: 'none' });
    assert.deepEqual(gate.advance(s(112)), []);
  });

  test('§6.2 [I] end boundary: an event arriving at end − 1 tick extends, one arriving at end starts a new, contiguous activation', () => {
    const extendGate = new SignalGate(DOC);
    drive(extendGate, onTime(100), s(119));
    assert.equal(extendGate.trigger(s(120) - 1, s(120) - 1).accepted, true);
    assert.equal(extendGate.currentActivation!.id, 1);
    assert.equal(extendGate.currentActivation!.end90k, s(140) - 1);

    const newGate = new SignalGate(DOC);
    drive(newGate, onTime(100), s(119));
    // No advance to 120 yet: the trigger itself catches the gate up and finds the activation over.
    const r = newGate.trigger(s(120), s(120));
    assert.deepEqual(r, { accepted: true, activationId: 2, effect: 'started' });
    const decisions = newGate.advance(s(121));
    assert.deepEqual(decisions.map((d) => `${d.kind}#${d.activationId}`), ['close#1', 'open#2']);
    const [close, open] = decisions as [GateClose, GateOpen];
    assert.equal(close.end90k, s(120));
    assert.equal(open.requestedStart90k, s(115));
    assert.equal(open.start90k, s(120), 'clamped to the previous end: the clips are contiguous');
    assert.equal(open.clamped, true);
  });

  test('§6.1 rule 4: Tmax reached while events keep coming → close at E1+Tmax, later events form a new activation', () => {
    const gate = new SignalGate(DOC);
    const events = onTime(...Array.from({ length: 20 }, (_, i) => 100 + 5 * i)); // 100 … 195
    const run = drive(gate, events, s(300));
    const clips = clipsOf(run.decisions);
    assert.equal(clips.length, 3);
    assert.deepEqual([clips[0]!.start, clips[0]!.end], [s(95), s(140)]);
    // 140 arrives at the cap: new activation; its start 135 is clamped to 140.
    assert.equal(clips[1]!.firstEvent, s(140));
    assert.deepEqual([clips[1]!.start, clips[1]!.end, clips[1]!.clamped], [s(140), s(180), true]);
    assert.equal(clips[2]!.firstEvent, s(180));
    assert.deepEqual([clips[2]!.start, clips[2]!.end], [s(180), s(215)]);
    assert.ok(run.results.every((r) => r.accepted));
  });

  test('§6.1 rule 4: an event dated at/after tFirst+Tmax cannot join the activation (rejected)', () => {
    const gate = new SignalGate(DOC);
    drive(gate, onTime(100), s(110));
    // Future-dated by 30 s (within the lead limit) but beyond the cap 140.
    assert.deepEqual(gate.trigger(s(140), s(110)), { accepted: false, reason: 'beyond-maximum-activation-time', activationId: 1 });
    assert.deepEqual(gate.trigger(s(139), s(110)), { accepted: true, activationId: 1, effect: 'extended' });
    assert.equal(gate.currentActivation!.end90k, s(140));
  });

  test('§6.1 Tmin > Tmax (rejected by validation, still handled): end = tFirst + Tmax', () => {
    const clip = only(clipsOf(drive(new SignalGate(params(1, 0, 30, 10)), onTime(100), s(200)).decisions));
    assert.deepEqual([clip.start, clip.end], [s(100), s(110)]);
  });
});

describe('signal gate §6.2 [I] consecutive activations: overlap clamp', () => {
  test('§6.2 [I] negative O reaching into the previous clip is clamped to its end and reported', () => {
    const gate = new SignalGate(DOC);
    const run = drive(gate, onTime(100, 122), s(200));
    const [a, b] = clipsOf(run.decisions) as [Clip, Clip];
    assert.deepEqual([a.start, a.end], [s(95), s(120)]);
    assert.equal(b.requestedStart, s(117));
    assert.equal(b.start, s(120));
    assert.equal(b.clamped, true);
    assert.ok(b.start >= a.end);
    // shouldForward agrees with the clamped start.
    const gate2 = new SignalGate(DOC);
    drive(gate2, onTime(100, 122), s(123));
    assert.equal(gate2.shouldForward(s(120) - 1), false);
    assert.equal(gate2.shouldForward(s(120)), true);
    assert.equal(gate2.currentActivation!.clamped, true);
    assert.equal(gate2.previousEnd90k, s(120));
  });

  test('§6.2 [I] no clamp when the previous clip ended before the new requested start', () => {
    const [a, b] = clipsOf(drive(new SignalGate(DOC), onTime(100, 130), s(200)).decisions) as [Clip, Clip];
    assert.equal(a.end, s(120));
    assert.deepEqual([b.start, b.clamped], [s(125), false]);
  });

  test('§6.2 [I] an event arriving after the close but dated inside the old clip extends recording past it in a new activation', () => {
    const gate = new SignalGate(DOC);
    const run = drive(gate, [{ te: s(100), at: s(100) }, { te: s(119), at: s(121) }], s(200));
    assert.equal(run.results[1]!.accepted, true);
    const [, b] = clipsOf(run.decisions) as [Clip, Clip];
    assert.deepEqual([b.start, b.end], [s(120), s(139)]);
  });

  test('§6.2 [I] an event whose whole clip would lie inside the previous one is rejected (no empty clip)', () => {
    const gate = new SignalGate(DOC);
    const run = drive(gate, [{ te: s(100), at: s(100) }, { te: s(99), at: s(121) }], s(200));
    assert.deepEqual(run.results[1], { accepted: false, reason: 'covered-by-previous-activation' });
    assert.equal(clipsOf(run.decisions).length, 1);
  });
});

describe('signal gate parameters at their limits', () => {
  test('§6.1 W=0: the activation opens on the very advance that sees the event; no late event is honoured', () => {
    const gate = new SignalGate(params(0, -5, 20, 40));
    assert.deepEqual(gate.advance(s(100)), []);
    assert.deepEqual(gate.trigger(s(100), s(100)), { accepted: true, activationId: 1, effect: 'started' });
    // Same instant, earlier date: the decision at decideAt = arrival is already due.
    assert.deepEqual(gate.trigger(s(99), s(100)), { accepted: false, reason: 'late-arrival', activationId: 1 });
    const open = only(gate.advance(s(100))) as GateOpen;
    assert.equal(open.at90k, s(100));
    assert.equal(open.start90k, s(95));
    assert.equal(gate.shouldForward(s(100)), true);
  });

  test('§6.1 rule 2 positive O: start = tFirst + O, media before the start is not forwarded', () => {
    const gate = new SignalGate(params(1, 2, 5, 10));
    const run = drive(gate, onTime(100), s(200));
    const clip = only(clipsOf(run.decisions));
    assert.deepEqual([clip.start, clip.end], [s(102), s(105)]);
    assert.equal(run.forwarded[0], s(102));
    assert.equal(run.forwarded.at(-1), s(105) - FRAME);
    assert.ok(run.forwarded.every((t) => t >= s(102) && t < s(105)));
  });

  test('§6.2 [I] positive O ≥ Tmin (rejected by validation) gives an empty activation, flagged', () => {
    const run = drive(new SignalGate(params(1, 5, 5, 10)), onTime(100), s(200));
    const close = run.decisions.find((d): d is GateClose => d.kind === 'close')!;
    assert.equal(close.empty, true);
    assert.deepEqual(run.forwarded, []);
  });

  test('§6.1 rule 7 offset −60 s: start 60 s before E1; clips follow the formulas', () => {
    const gate = new SignalGate(params(1, -60, 20, 40));
    const clip = only(clipsOf(drive(gate, onTime(100), s(200)).decisions));
    assert.deepEqual([clip.start, clip.end], [s(40), s(120)]);
  });

  test('§6.1 rule 7 extremes: W=10 s, O=+60 s, Tmin=Tmax=1 h', () => {
    const gate = new SignalGate(params(10, 60, 3600, 3600));
    const clip = only(clipsOf(drive(gate, onTime(100), s(3800)).decisions));
    assert.equal(clip.openedAt, s(110));
    assert.deepEqual([clip.start, clip.end], [s(160), s(3700)]);
  });

  test('§6.1 rule 7 extremes: Tmin=Tmax=1 s, W=10 s: opens after the planned end and closes at once', () => {
    const gate = new SignalGate(params(10, -1, 1, 1));
    const run = drive(gate, onTime(100), s(200));
    const opening = run.decisions.map((d) => d.kind);
    assert.deepEqual(opening, ['open', 'close']);
    const clip = only(clipsOf(run.decisions));
    assert.deepEqual([clip.start, clip.end, clip.openedAt, clip.closedAt], [s(99), s(101), s(110), s(110)]);
  });

  test('SignalGate.fromConfig converts the ms durations of SignalGateConfig into 90 kHz ticks', () => {
    const cfg: SignalGateConfig = {
      type: NodeTypes.SignalGate,
      name: 'signalGateProcessor',
      activationEvaluationWindowMs: 1000,
      activationSignalOffsetMs: -5000,
      minimumActivationTimeMs: 20000,
      maximumActivationTimeMs: 40000,
    };
    assert.deepEqual(signalGateParamsFromConfig(cfg), DOC);
    assert.deepEqual(SignalGate.fromConfig(cfg).params, DOC);
  });

  test('constructor rejects parameters no configuration can produce', () => {
    assert.throws(() => new SignalGate({ ...DOC, windowTicks: -1 }), RangeError);
    assert.throws(() => new SignalGate({ ...DOC, windowTicks: Number.NaN }), RangeError);
    assert.throws(() => new SignalGate({ ...DOC, offsetTicks: Number.POSITIVE_INFINITY }), RangeError);
    assert.throws(() => new SignalGate({ ...DOC, minTicks: 0 }), RangeError);
    assert.throws(() => new SignalGate({ ...DOC, maxTicks: -s(1) }), RangeError);
  });
});

describe('signal gate peers.md §3 item 11: absurd event times are rejected with a reason', () => {
  const cases: Array<[string, number, number, string]> = [
    ['NaN event time', Number.NaN, s(100), 'invalid-event-time'],
    ['infinite event time', Number.POSITIVE_INFINITY, s(100), 'invalid-event-time'],
    ['negative event time', -1, s(100), 'invalid-event-time'],
    ['NaN arrival', s(100), Number.NaN, 'invalid-arrival-time'],
    ['negative arrival', s(100), -s(1), 'invalid-arrival-time'],
    ['event more than Tmax in the future', s(100) + s(40) + 1, s(100), 'event-in-future'],
    ['event a day in the future', s(100 + 86400), s(100), 'event-in-future'],
    ['event older than Tmax at arrival', s(100) - s(40) - 1, s(100), 'event-too-old'],
  ];
  for (const [name, te, at, reason] of cases) {
    test(`rejects ${name} → ${reason}, gate stays closed`, () => {
      const gate = new SignalGate(DOC);
      gate.advance(s(100));
      const r = gate.trigger(te, at);
      assert.deepEqual(r, { accepted: false, reason });
      assert.equal(gate.state, 'closed');
      assert.equal(gate.rejections[reason as keyof typeof gate.rejections], 1);
      assert.equal(gate.acceptedEvents, 0);
      assert.deepEqual(gate.advance(s(200)), []);
    });
  }

  test('events exactly at the lead and age limits are accepted', () => {
    const a = new SignalGate(DOC);
    assert.equal(a.trigger(s(140), s(100)).accepted, true);
    const b = new SignalGate(DOC);
    assert.equal(b.trigger(s(60), s(100)).accepted, true);
  });

  test('limits are configurable', () => {
    const gate = new SignalGate(DOC, { maxEventLeadTicks: s(1), maxEventAgeTicks: s(2) });
    assert.deepEqual(gate.trigger(s(102), s(100)), { accepted: false, reason: 'event-in-future' });
    assert.deepEqual(gate.trigger(s(97), s(100)), { accepted: false, reason: 'event-too-old' });
    assert.equal(gate.trigger(s(98), s(100)).accepted, true);
  });
});

describe('signal gate clock handling', () => {
  test('an arrival stamped before media already seen counts as now (time never runs backwards)', () => {
    const gate = new SignalGate(DOC);
    gate.advance(s(100));
    gate.trigger(s(99), s(90));
    assert.equal(gate.currentActivation!.firstArrival90k, s(100));
    assert.equal(gate.currentActivation!.decideAt90k, s(101));
  });

  test('advance with a regressing media time changes nothing', () => {
    const gate = new SignalGate(DOC);
    drive(gate, onTime(100), s(105));
    assert.deepEqual(gate.advance(s(50)), []);
    assert.equal(gate.state, 'open');
    assert.equal(gate.mediaNow90k, s(105));
    assert.deepEqual(gate.advance(Number.NaN), []);
  });

  test('decisions caused by a trigger catching up are returned in order by the next advance', () => {
    const gate = new SignalGate(DOC);
    gate.trigger(s(100), s(100));
    // The next thing the gate hears is an event at 130: it first opens and closes activation 1.
    gate.trigger(s(130), s(130));
    const kinds = gate.advance(s(131)).map((d) => `${d.kind}#${d.activationId}@${d.at90k / 90_000}`);
    assert.deepEqual(kinds, ['open#1@130', 'close#1@130', 'open#2@131']);
  });

  test('reset() after a discontinuity finishes the activation and forgets the old timeline', () => {
    const gate = new SignalGate(DOC);
    drive(gate, onTime(1000), s(1010));
    const decisions = gate.reset();
    assert.deepEqual(decisions.map((d) => d.kind), ['close']);
    assert.equal((decisions[0] as GateClose).truncated, true);
    assert.equal(gate.mediaNow90k, null);
    assert.equal(gate.previousEnd90k, null);
    // New timeline restarting near zero: neither ignored nor clamped to the old end.
    const run = drive(gate, onTime(10), s(100));
    const clip = only(clipsOf(run.decisions));
    assert.deepEqual([clip.id, clip.start, clip.end, clip.clamped], [2, s(5), s(30), false]);
  });
});

describe('signal gate finish() on end of stream', () => {
  test('finish() while open closes at media now with truncated: true', () => {
    const gate = new SignalGate(DOC);
    drive(gate, onTime(100), s(110));
    const close = only(gate.finish(s(110))) as GateClose;
    assert.equal(close.truncated, true);
    assert.equal(close.end90k, s(110));
    assert.equal(close.start90k, s(95));
    assert.equal(close.empty, false);
    assert.equal(gate.state, 'closed');
  });

  test('finish() while evaluating opens now and closes truncated', () => {
    const gate = new SignalGate(DOC);
    gate.advance(s(100));
    gate.trigger(s(100), s(100));
    const [open, close] = gate.finish(s(100.5)) as [GateOpen, GateClose];
    assert.equal(open.kind, 'open');
    assert.equal(open.at90k, s(100.5));
    assert.equal(open.start90k, s(95));
    assert.equal(close.kind, 'close');
    assert.equal(close.truncated, true);
    assert.equal(close.end90k, s(100.5));
  });

  test('finish() at or after the planned end closes normally (not truncated)', () => {
    const gate = new SignalGate(DOC);
    drive(gate, onTime(100), s(110));
    const close = only(gate.finish(s(125))) as GateClose;
    assert.deepEqual([close.end90k, close.truncated], [s(120), false]);
  });

  test('finish() with the gate closed returns nothing', () => {
    const gate = new SignalGate(DOC);
    drive(gate, onTime(100), s(130));
    assert.deepEqual(gate.finish(s(130)), []);
  });
});

describe('signal gate scale', () => {
  test('10k events: linear work, no per-event storage (no O(n) array operations during the run)', () => {
    const gate = new SignalGate(DOC);
    const names = ['shift', 'unshift', 'splice', 'indexOf', 'includes', 'slice', 'filter', 'concat', 'sort', 'find', 'findIndex'] as const;
    const proto = Array.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
    const originals = names.map((n) => proto[n]!);
    let calls = 0;
    names.forEach((n, i) => {
      const orig = originals[i]!;
      proto[n] = function (this: unknown, ...args: unknown[]) {
        calls++;
        return orig.apply(this, args);
      };
    });
    let opens = 0;
    let closes = 0;
    let extends_ = 0;
    let accepted = 0;
    try {
      // One event per second for 10 000 s: each Tmax = 40 s run is one activation.
      for (let i = 0; i < 10_000; i++) {
        const t = s(100 + i);
        for (const d of gate.advance(t)) {
          if (d.kind === 'open') opens++;
          else if (d.kind === 'close') closes++;
          else extends_++;
        }
        if (gate.trigger(t, t).accepted) accepted++;
      }
      for (const d of gate.finish(s(100 + 10_000))) if (d.kind === 'close') closes++;
    } finally {
      names.forEach((n, i) => {
        proto[n] = originals[i]!;
      });
    }
    assert.equal(calls, 0);
    assert.equal(accepted, 10_000);
    assert.equal(opens, 250);
    assert.equal(closes, 250);
    assert.equal(gate.acceptedEvents, 10_000);
    // 40 events per activation: E1 starts it, E1+1 … E1+20 each move the end (tLast+Tmin), after that
    // the end sits at the cap E1+Tmax and the remaining 19 events change nothing.
    assert.equal(extends_, 250 * 20);
  });
});


describe('signal gate property: random event sequences keep the §6 invariants', () => {
  test('§6.1/§6.2 invariants over 300 seeded random scenarios', () => {
    let totalClips = 0;
    let totalLate = 0;
    let totalClamped = 0;
    let totalTruncated = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const rnd = prng(seed);
      const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
      const p: SignalGateParams = {
        windowTicks: int(0, 10) * s(0.5) * (rnd() < 0.2 ? 0 : 1),
        offsetTicks: s(int(-60, 10)),
        minTicks: s(int(1, 30)),
        maxTicks: s(int(1, 60)),
      };
      const gate = new SignalGate(p);
      const ctx = `seed ${seed} ${JSON.stringify(p)}`;
      const decisions: GateDecision[] = [];
      const acceptedBy = new Map<number, number[]>();
      const decideAt = new Map<number, number>();
      const forwarded = new Map<number, number[]>();
      const until = s(int(60, 400));
      const rate = rnd() * 0.05; // events per frame
      let t = 0;
      for (; t <= until; t += FRAME) {
        decisions.push(...gate.advance(t));
        const cur = gate.currentActivation;
        if (gate.shouldForward(t) && cur) {
          assert.ok(t >= cur.start90k && t < cur.end90k, ctx);
          forwarded.set(cur.id, [...(forwarded.get(cur.id) ?? []), t]);
        }
        while (rnd() < rate) {
          // Mostly small lags, sometimes long ones (late arrivals), sometimes future-dated or absurd.
          const roll = rnd();
          let te: number;
          if (roll < 0.6) te = t - int(0, s(0.5));
          else if (roll < 0.85) te = t - int(0, s(12));
          else if (roll < 0.95) te = t + int(0, s(3));
          else if (roll < 0.98) te = t - s(int(20, 120));
          else te = [Number.NaN, -5, t + s(7200)][int(0, 2)]!;
          const at = t + int(0, FRAME - 1);
          const before = gate.currentActivation;
          const r = gate.trigger(te, at);
          if (r.accepted) {
            acceptedBy.set(r.activationId, [...(acceptedBy.get(r.activationId) ?? []), te]);
            const now = gate.currentActivation!;
            if (r.effect === 'started') decideAt.set(r.activationId, now.decideAt90k);
          } else if (r.reason === 'late-arrival') {
            const a = gate.currentActivation!;
            assert.equal(a.state, 'open', ctx);
            assert.ok(te < a.tFirst90k, ctx);
            assert.ok(Math.max(at, before?.firstArrival90k ?? 0) >= a.decideAt90k, ctx);
          }
        }
      }
      decisions.push(...gate.finish(t));
      assert.equal(gate.state, 'closed', ctx);

      // Decisions are ordered: media time never goes back, ids run 1, 2, 3 …, each activation is
      // open → extend* → close, and the next opens only after the previous closed.
      let lastAt = Number.NEGATIVE_INFINITY;
      let expectId = 1;
      let phase: 'idle' | 'open' = 'idle';
      let plannedEnd = 0;
      for (const d of decisions) {
        assert.ok(d.at90k >= lastAt, `${ctx}: decisions out of media-time order`);
        lastAt = d.at90k;
        if (d.kind === 'open') {
          assert.equal(phase, 'idle', ctx);
          assert.equal(d.activationId, expectId, ctx);
          // Only finish() may open before decideAt (forced at the end of the stream).
          assert.ok(d.at90k >= decideAt.get(d.activationId)! || d.at90k === t, `${ctx}: opened before decideAt`);
          phase = 'open';
          plannedEnd = d.end90k;
        } else {
          assert.equal(phase, 'open', ctx);
          assert.equal(d.activationId, expectId, ctx);
          if (d.kind === 'extend') {
            assert.ok(d.end90k > plannedEnd, `${ctx}: extend must move the end later`);
            plannedEnd = d.end90k;
          } else {
            if (d.truncated) assert.ok(d.end90k <= plannedEnd && d.end90k === d.at90k, ctx);
            else assert.equal(d.end90k, plannedEnd, ctx);
            phase = 'idle';
            expectId++;
          }
        }
      }
      assert.equal(phase, 'idle', ctx);

      const clips = clipsOf(decisions);
      assert.equal(clips.length, decideAt.size, `${ctx}: every started activation opens and closes`);
      let previousEnd: number | null = null;
      for (const c of clips) {
        const tes = acceptedBy.get(c.id)!;
        const tFirst = Math.min(...tes);
        const tLast = Math.max(...tes);
        assert.equal(c.firstEvent, tFirst, `${ctx}: E1 is the earliest accepted event`);
        assert.equal(c.requestedStart, tFirst + p.offsetTicks, ctx);
        const expectedStart: number = previousEnd !== null && previousEnd > c.requestedStart ? previousEnd : c.requestedStart;
        assert.equal(c.start, expectedStart, `${ctx}: start = tFirst + O, clamped to the previous end`);
        assert.equal(c.clamped, expectedStart > c.requestedStart, ctx);
        if (previousEnd !== null) assert.ok(c.start >= previousEnd, `${ctx}: activations overlap`);
        assert.ok(c.end <= tFirst + p.maxTicks, `${ctx}: end ≤ tFirst + Tmax`);
        if (!c.truncated) {
          assert.equal(c.end, Math.min(tLast + p.minTicks, tFirst + p.maxTicks), `${ctx}: end formula`);
          assert.ok(c.end >= tFirst + Math.min(p.minTicks, p.maxTicks), ctx);
          assert.ok(c.closedAt >= c.end, `${ctx}: closed before its end`);
        }
        for (const te of tes) {
          assert.ok(te >= tFirst, ctx);
          const covered = te < c.end || c.end === tFirst + p.maxTicks || c.truncated;
          assert.ok(covered, `${ctx}: accepted event ${te} outside clip [${tFirst}, ${c.end})`);
        }
        for (const f of forwarded.get(c.id) ?? []) assert.ok(f >= c.start && f < c.end, ctx);
        previousEnd = c.end;
        totalClips++;
        if (c.clamped) totalClamped++;
        if (c.truncated) totalTruncated++;
      }
      totalLate += gate.rejections['late-arrival'];
    }
    // The generator must actually exercise the interesting paths.
    assert.ok(totalClips > 500, `only ${totalClips} clips`);
    assert.ok(totalLate > 20, `only ${totalLate} late arrivals`);
    assert.ok(totalClamped > 20, `only ${totalClamped} clamps`);
    assert.ok(totalTruncated > 20, `only ${totalTruncated} truncated clips`);
  });
});
