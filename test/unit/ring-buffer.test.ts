import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { RingBuffer, retentionFor } from '../../src/media/ring-buffer.js';
import { NodeTypes, type SignalGateConfig } from '../../src/graph/model.js';
import type { Sample, TrackInfo } from '../../src/media/sample.js';

/** Seconds → 90 kHz ticks. */
const s = (seconds: number): number => Math.round(seconds * 90_000);
/** 25 fps. */
const FRAME = 3600;
/** One AAC frame at 48 kHz (1024 samples) in 90 kHz ticks. */
const AAC_FRAME = 1920;

const VIDEO: TrackInfo = { id: 1, kind: 'video', codec: 'h264', codecString: 'avc1.64001f', timescale: 90_000, width: 640, height: 360, sampleEntry: Buffer.alloc(0) };
const AUDIO: TrackInfo = { id: 2, kind: 'audio', codec: 'aac', codecString: 'mp4a.40.2', timescale: 48_000, sampleRate: 48_000, channels: 1, sampleEntry: Buffer.alloc(0) };

const payloads = new Map<number, Buffer>();
/** Shared payloads: the buffer stores references, so tests need not allocate real bytes per sample. */
function payload(bytes: number): Buffer {
  let b = payloads.get(bytes);
  if (!b) payloads.set(bytes, (b = Buffer.alloc(bytes)));
  return b;
}

function video(pts90k: number, keyframe: boolean, opts: { dts90k?: number; bytes?: number; discont?: boolean } = {}): Sample {
  return {
    track: VIDEO,
    dts: opts.dts90k ?? pts90k,
    pts: pts90k,
    duration: FRAME,
    keyframe,
    pts90k,
    data: payload(opts.bytes ?? (keyframe ? 5000 : 1000)),
    ...(opts.discont ? { discont: true } : {}),
  };
}

function audio(pts90k: number, opts: { discont?: boolean } = {}): Sample {
  const pts48k = Math.round((pts90k * 48_000) / 90_000);
  return { track: AUDIO, dts: pts48k, pts: pts48k, duration: 1024, keyframe: true, pts90k, data: payload(300), ...(opts.discont ? { discont: true } : {}) };
}

interface StreamOptions {
  seconds: number;
  /** Keyframe every gopFrames video frames. */
  gopFrames: number;
  /** First frame's pts. */
  from?: number;
  withAudio?: boolean;
  /** Closed GOPs with B-frames: decode order I P B B P B B …, pts = dts + 2 frames. */
  bFrames?: boolean;
}

/**
 * A synthetic source in push order: video at 25 fps, optionally AAC audio, interleaved by dts as
 * ffmpeg's muxers do (so audio whose pts lies between a keyframe's dts and pts follows that keyframe).
 */
function stream(o: StreamOptions): Sample[] {
  const from = o.from ?? 0;
  const frames = Math.round(o.seconds * 25);
  const vids: Array<{ dts: number; sample: Sample }> = [];
  for (let i = 0; i < frames; i++) {
    const dts = from + i * FRAME;
    if (!o.bFrames) {
      vids.push({ dts, sample: video(dts, i % o.gopFrames === 0) });
      continue;
    }
    // Decode index i within a GOP → display index: 0 → 0 (I), then P at +2, B, B … (groups of three).
    const g = i % o.gopFrames;
    const gopStart = i - g;
    let display: number;
    if (g === 0) display = 0;
    else {
      const k = (g - 1) % 3;
      const base = Math.floor((g - 1) / 3) * 3;
      display = k === 0 ? Math.min(base + 3, o.gopFrames - 1) : base + k;
    }
    const pts = from + (gopStart + display) * FRAME + 2 * FRAME;
    vids.push({ dts, sample: video(pts, g === 0, { dts90k: dts }) });
  }
  const auds: Array<{ dts: number; sample: Sample }> = [];
  if (o.withAudio) {
    for (let t = from; t < from + frames * FRAME; t += AAC_FRAME) auds.push({ dts: t, sample: audio(t) });
  }
  const out: Sample[] = [];
  let i = 0;
  let j = 0;
  while (i < vids.length || j < auds.length) {
    if (j >= auds.length || (i < vids.length && vids[i]!.dts <= auds[j]!.dts)) out.push(vids[i++]!.sample);
    else out.push(auds[j++]!.sample);
  }
  return out;
}

const isVideoKey = (x: Sample) => x.track.kind === 'video' && x.keyframe;

describe('ring buffer: GOP-aligned retention (lva-spec §6.2 pre-roll)', () => {
  test('§6.2 a keyframe at/before any start inside the retention window is always present', () => {
    const retain = s(5);
    const gop = 50; // 2 s
    const rb = new RingBuffer({ retainTicks: retain });
    let pushed = 0;
    for (const x of stream({ seconds: 40, gopFrames: gop, withAudio: true })) {
      rb.push(x);
      pushed++;
      if (pushed % 7 !== 0) continue;
      const newest = rb.newest90k!;
      for (let req = Math.max(0, newest - retain); req <= newest; req += 1234) {
        const r = rb.readFrom(req);
        assert.equal(r.keyframeFound, true);
        assert.ok(r.actualStart90k <= req, `start ${req}: keyframe ${r.actualStart90k} is after it`);
        assert.ok(isVideoKey(r.samples[0]!), 'clip begins with a video keyframe');
      }
    }
    // Memory: never more than retention + one GOP (+ the frame being pushed) of video.
    const r = rb.readFrom(0);
    assert.ok(rb.newest90k! - r.actualStart90k <= retain + gop * FRAME, 'holds at most retention + one GOP');
    assert.ok(rb.evictedSamples > 0);
    assert.equal(rb.droppedSamples, 0, 'retention eviction is not a drop');
  });

  test('§6.2 keyframe alignment: actualStart ≤ requested < actualStart + GOP, and the GOP is measured', () => {
    const rb = new RingBuffer({ retainTicks: s(10) });
    for (const x of stream({ seconds: 30, gopFrames: 50 })) rb.push(x);
    assert.equal(rb.gopTicks, s(2));
    const newest = rb.newest90k!;
    for (let req = newest - s(10); req <= newest; req += 900) {
      const r = rb.readFrom(req);
      assert.ok(r.actualStart90k <= req && req < r.actualStart90k + rb.gopTicks, `req ${req} → ${r.actualStart90k}`);
      // Everything from the keyframe through the newest sample, in push order.
      assert.equal(r.samples.at(-1)!.pts90k, newest);
      for (let i = 1; i < r.samples.length; i++) assert.equal(r.samples[i]!.pts90k - r.samples[i - 1]!.pts90k, FRAME);
    }
  });

  test('§6.2 a start older than the buffer gets the oldest keyframe: actualStart > requested, reported', () => {
    const rb = new RingBuffer({ retainTicks: s(4) });
    for (const x of stream({ seconds: 30, gopFrames: 25 })) rb.push(x);
    const oldest = rb.oldestKeyframe90k!;
    const r = rb.readFrom(oldest - s(10));
    assert.equal(r.keyframeFound, true);
    assert.equal(r.actualStart90k, oldest);
    assert.ok(r.actualStart90k > oldest - s(10));
    assert.equal(r.samples.length, rb.size);
  });

  test('peers.md §3 item 1: long GOP (4 s) vs short retention (1 s) keeps the whole GOP, pre-roll is longer not missing', () => {
    const rb = new RingBuffer({ retainTicks: s(1) });
    for (const x of stream({ seconds: 21, gopFrames: 100 })) rb.push(x);
    assert.equal(rb.gopTicks, s(4));
    const newest = rb.newest90k!; // 20.96 s; keyframes at 0, 4, 8, 12, 16, 20
    // Requested start 19.96 s: the keyframe at/before it is 16 s, so 16 s must still be there.
    const r = rb.readFrom(newest - s(1));
    assert.equal(r.keyframeFound, true);
    assert.equal(r.actualStart90k, s(16));
    assert.equal(rb.oldestKeyframe90k, s(16));
    // The buffer therefore holds ~5 s although retention is 1 s: that is the price of starting on IDR.
    assert.ok(rb.newest90k! - rb.oldestKeyframe90k! > s(4.9));
  });

  test('retentionFor: max(0, −O) + W + GOP in ticks', () => {
    const cfg = (W: number, O: number): SignalGateConfig => ({
      type: NodeTypes.SignalGate,
      name: 'gate',
      activationEvaluationWindowMs: W,
      activationSignalOffsetMs: O,
      minimumActivationTimeMs: 20000,
      maximumActivationTimeMs: 40000,
    });
    assert.equal(retentionFor(cfg(1000, -5000), s(2)), s(8));
    assert.equal(retentionFor(cfg(1000, 5000), s(2)), s(3), 'positive O needs no history behind the event');
    assert.equal(retentionFor(cfg(10000, -60000), s(4)), s(74));
    assert.equal(retentionFor(cfg(0, 0), 0), 0);
    assert.equal(retentionFor(cfg(1000, -5000), Number.NaN), s(6), 'an unknown GOP counts as 0');
  });

  test('§6.2 a keyframe exactly at the horizon (newest − retainTicks) is enough: the GOP before it goes', () => {
    const rb = new RingBuffer({ retainTicks: s(5) });
    for (const x of stream({ seconds: 11, gopFrames: 50 })) rb.push(x);
    assert.equal(rb.oldestKeyframe90k, s(4)); // newest 10.96 → horizon 5.96 → keyframe 4
    rb.push(video(s(11), false)); // newest 11 → horizon 6 = a keyframe
    assert.equal(rb.oldestKeyframe90k, s(6));
    assert.equal(rb.readFrom(s(6)).actualStart90k, s(6));
  });

  test('setRetention shrinking evicts at once, still GOP-aligned', () => {
    const rb = new RingBuffer({ retainTicks: s(20) });
    for (const x of stream({ seconds: 30, gopFrames: 50 })) rb.push(x);
    assert.equal(rb.oldestKeyframe90k, s(8)); // newest 29.96 → horizon 9.96 → keyframe 8
    rb.setRetention(s(3));
    assert.equal(rb.retainTicks, s(3));
    assert.equal(rb.oldestKeyframe90k, s(26)); // horizon 26.96 → keyframe 26
    assert.ok(isVideoKey(rb.readFrom(0).samples[0]!));
  });

  test('gopTicks: the largest of the last 8 keyframe distances, following a GOP change', () => {
    const rb = new RingBuffer({ retainTicks: s(5) });
    assert.equal(rb.gopTicks, 0, 'unknown before two keyframes');
    for (const x of stream({ seconds: 20, gopFrames: 100 })) rb.push(x); // 4 s GOP
    assert.equal(rb.gopTicks, s(4));
    let t = s(20);
    for (let k = 0; k < 7; k++, t += s(1)) rb.push(video(t, true)); // 1 s GOP
    assert.equal(rb.gopTicks, s(4), 'still remembered: 4 s distance is among the last 8');
    rb.push(video(t, true));
    rb.push(video(t + s(1), true));
    assert.equal(rb.gopTicks, s(1));
  });

  test('constructor rejects negative retention and byte caps', () => {
    assert.throws(() => new RingBuffer({ retainTicks: -1 }), RangeError);
    assert.throws(() => new RingBuffer({ retainTicks: Number.NaN }), RangeError);
    assert.throws(() => new RingBuffer({ retainTicks: 0, maxBytes: -1 }), RangeError);
  });
});

describe('ring buffer: tracks and ordering', () => {
  test('audio interleaving: audio from the keyframe on, none earlier than the keyframe pts, push order kept', () => {
    const rb = new RingBuffer({ retainTicks: s(10) });
    const all = stream({ seconds: 12, gopFrames: 50, withAudio: true, bFrames: true });
    for (const x of all) rb.push(x);
    const r = rb.readFrom(s(7));
    // B-frames: keyframe pts = dts + 2 frames; keyframes at dts 0, 2, 4 … s, pts 2 frames later.
    assert.equal(r.actualStart90k, s(6) + 2 * FRAME);
    assert.ok(isVideoKey(r.samples[0]!));
    const aud = r.samples.filter((x) => x.track.kind === 'audio');
    assert.ok(aud.length > 0);
    assert.ok(aud.every((x) => x.pts90k >= r.actualStart90k), 'no audio before the keyframe');
    // Every audio sample of the stream at/after the keyframe pts is there (none lost to interleaving).
    const expectedAudio = all.filter((x) => x.track.kind === 'audio' && x.pts90k >= r.actualStart90k);
    assert.equal(aud.length, expectedAudio.length);
    // The keyframe was pushed before some audio with smaller pts (between its dts and pts): left out.
    const keyPos = all.indexOf(r.samples[0]!);
    assert.ok(all.slice(keyPos).some((x) => x.track.kind === 'audio' && x.pts90k < r.actualStart90k), 'fixture exercises the case');
    // Returned in push order: a subsequence of what was pushed.
    let pos = keyPos;
    for (const x of r.samples) {
      const at = all.indexOf(x, pos);
      assert.ok(at >= pos, 'order preserved');
      pos = at;
    }
  });

  test('B-frames: samples come back in dts (push) order, the keyframe is chosen by pts', () => {
    const rb = new RingBuffer({ retainTicks: s(10) });
    for (const x of stream({ seconds: 8, gopFrames: 25, bFrames: true })) rb.push(x);
    // Keyframe of the GOP decoded at 3 s has pts 3 s + 2 frames. A start between its dts and pts
    // must pick the previous keyframe (pts ≤ start), not this one.
    const between = s(3) + FRAME;
    const r = rb.readFrom(between);
    assert.equal(r.actualStart90k, s(2) + 2 * FRAME);
    const vid = r.samples.filter((x) => x.track.kind === 'video');
    for (let i = 1; i < vid.length; i++) assert.ok(vid[i]!.dts > vid[i - 1]!.dts, 'dts order');
    assert.ok(vid.some((x, i) => i > 0 && x.pts90k < vid[i - 1]!.pts90k), 'pts are reordered (B-frames present)');
    const exact = rb.readFrom(s(3) + 2 * FRAME);
    assert.equal(exact.actualStart90k, s(3) + 2 * FRAME);
  });

  test('open GOP: leading pictures decoded after the keyframe but displayed before it are left out', () => {
    const rb = new RingBuffer({ retainTicks: s(10) });
    // I(0) P(3) B(1) B(2) | I(6) B(4) B(5) P(9) B(7) B(8): B4, B5 reference the previous GOP.
    const seq: Array<[number, boolean]> = [[0, true], [3, false], [1, false], [2, false], [6, true], [4, false], [5, false], [9, false], [7, false], [8, false]];
    seq.forEach(([n, key], i) => rb.push(video(n * FRAME, key, { dts90k: i * FRAME })));
    const r = rb.readFrom(6 * FRAME);
    assert.equal(r.actualStart90k, 6 * FRAME);
    assert.deepEqual(r.samples.map((x) => x.pts90k / FRAME), [6, 9, 7, 8]);
  });

  test('samples are stored and returned by reference, never copied', () => {
    const rb = new RingBuffer({ retainTicks: s(10) });
    const input = stream({ seconds: 3, gopFrames: 25, withAudio: true });
    for (const x of input) rb.push(x);
    const r = rb.readFrom(0);
    assert.equal(r.samples.length, input.length);
    r.samples.forEach((x, i) => assert.equal(x, input[i]));
  });

  test('no keyframe yet (joined mid-GOP): keyframeFound false, nothing returned, memory bounded by time', () => {
    const rb = new RingBuffer({ retainTicks: s(2) });
    for (let t = 0; t < s(10); t += FRAME) rb.push(video(t, false));
    const r = rb.readFrom(s(9));
    assert.deepEqual(r.samples, []);
    assert.equal(r.keyframeFound, false);
    assert.ok(Number.isNaN(r.actualStart90k));
    assert.ok(rb.size <= s(2) / FRAME + 1, `held ${rb.size}`);
    // Lead-in before the first keyframe is never returned and goes once the keyframe ages.
    rb.push(video(s(10), true));
    const after = rb.readFrom(s(9));
    assert.equal(after.actualStart90k, s(10));
    assert.equal(after.samples.length, 1);
    for (let t = s(10) + FRAME; t < s(13); t += FRAME) rb.push(video(t, false));
    assert.ok(isVideoKey(rb.readFrom(0).samples[0]!));
    assert.equal(rb.oldestKeyframe90k, s(10));
    assert.equal(rb.size, 75, 'the lead-in before the 10 s keyframe was evicted once that keyframe passed the horizon');
  });
});

describe('ring buffer: byte cap (peers.md §3 item 12, zoneminder#4860)', () => {
  test('over the cap the oldest whole GOP is dropped and counted; the buffer still starts on a keyframe', () => {
    // GOP = 1 s = 1 keyframe (5000 B) + 24 frames (1000 B) = 29 000 B.
    const rb = new RingBuffer({ retainTicks: s(3600), maxBytes: 100_000 });
    for (const x of stream({ seconds: 10, gopFrames: 25 })) {
      rb.push(x);
      assert.ok(rb.bytes <= 100_000);
    }
    assert.ok(rb.droppedSamples > 0);
    assert.equal(rb.droppedSamples % 25, 0, 'whole GOPs only');
    assert.equal(rb.droppedBytes % 29_000, 0, 'whole GOPs only');
    assert.equal(rb.droppedBytes, rb.droppedSamples / 25 * 29_000);
    assert.equal(rb.evictedSamples, 0);
    const r = rb.readFrom(0);
    assert.ok(isVideoKey(r.samples[0]!));
    assert.equal(r.samples.length, rb.size);
    // 100 000 B hold three full GOPs (87 000 B) but not four: of the 10 GOPs pushed, 7 were dropped.
    assert.equal(rb.droppedSamples, 7 * 25);
    assert.equal(rb.oldestKeyframe90k, s(7));
  });

  test('a single GOP larger than the cap is dropped too; memory stays ≤ cap until the next keyframe', () => {
    const rb = new RingBuffer({ retainTicks: s(3600), maxBytes: 20_000 });
    const input = stream({ seconds: 5, gopFrames: 50 }); // 2 s GOPs of 54 000 B
    for (const x of input) {
      rb.push(x);
      assert.ok(rb.bytes <= 20_000, `held ${rb.bytes}`);
    }
    assert.equal(rb.droppedSamples + rb.size, input.length);
    assert.equal(rb.droppedBytes + rb.bytes, input.reduce((n, x) => n + x.data.length, 0));
  });
});

describe('ring buffer: discontinuities and clear()', () => {
  test('clear() empties the buffer, keeps counters and the GOP estimate', () => {
    const rb = new RingBuffer({ retainTicks: s(5) });
    for (const x of stream({ seconds: 10, gopFrames: 50, withAudio: true })) rb.push(x);
    const evicted = rb.evictedSamples;
    rb.clear();
    assert.equal(rb.size, 0);
    assert.equal(rb.bytes, 0);
    assert.equal(rb.newest90k, null);
    assert.equal(rb.oldestKeyframe90k, null);
    assert.equal(rb.readFrom(0).keyframeFound, false);
    assert.equal(rb.gopTicks, s(2));
    assert.equal(rb.evictedSamples, evicted);
    // A new timeline starting at 0 again is buffered normally.
    for (const x of stream({ seconds: 3, gopFrames: 50 })) rb.push(x);
    assert.equal(rb.readFrom(s(1)).actualStart90k, 0);
  });

  test('[I] a video sample flagged discont clears the buffer (timestamps may restart after a reconnect)', () => {
    const rb = new RingBuffer({ retainTicks: s(5) });
    for (const x of stream({ seconds: 10, gopFrames: 50, from: s(1000) })) rb.push(x);
    rb.push(video(0, true, { discont: true }));
    assert.equal(rb.discontinuities, 1);
    assert.equal(rb.size, 1);
    assert.equal(rb.newest90k, 0);
    for (let t = FRAME; t < s(8); t += FRAME) rb.push(video(t, t % s(2) === 0));
    // Eviction works on the new timeline (the old 1010 s newest would have kept everything).
    assert.equal(rb.oldestKeyframe90k, s(2));
    assert.equal(rb.readFrom(s(3)).actualStart90k, s(2));
  });

  test('[I] an audio sample flagged discont does not clear (an audio gap does not break video decoding)', () => {
    const rb = new RingBuffer({ retainTicks: s(5) });
    for (const x of stream({ seconds: 4, gopFrames: 50 })) rb.push(x);
    const before = rb.size;
    rb.push(audio(s(4), { discont: true }));
    assert.equal(rb.discontinuities, 0);
    assert.equal(rb.size, before + 1);
    assert.equal(rb.readFrom(s(1)).actualStart90k, 0);
  });
});

describe('ring buffer: scale', () => {
  test('100k pushes: no Array#shift/splice, compaction copies O(n) elements in total, size bounded', () => {
    const input = stream({ seconds: 1400, gopFrames: 50, withAudio: true }).slice(0, 100_000);
    assert.equal(input.length, 100_000);
    const rb = new RingBuffer({ retainTicks: s(6) });
    const proto = Array.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
    const origSlice = proto.slice!;
    const origShift = proto.shift!;
    const origSplice = proto.splice!;
    const origUnshift = proto.unshift!;
    let copied = 0;
    let linearCalls = 0;
    let maxSize = 0;
    proto.slice = function (this: unknown[], ...args: unknown[]) {
      const r = origSlice.apply(this, args) as unknown[];
      copied += r.length;
      return r;
    };
    for (const [name, orig] of [['shift', origShift], ['splice', origSplice], ['unshift', origUnshift]] as const) {
      proto[name] = function (this: unknown, ...args: unknown[]) {
        linearCalls++;
        return orig.apply(this, args);
      };
    }
    try {
      for (const x of input) {
        rb.push(x);
        if (rb.size > maxSize) maxSize = rb.size;
      }
    } finally {
      proto.slice = origSlice;
      proto.shift = origShift;
      proto.splice = origSplice;
      proto.unshift = origUnshift;
    }
    assert.equal(linearCalls, 0, 'Array#shift/splice/unshift used');
    assert.ok(copied <= input.length, `compaction copied ${copied} elements for ${input.length} pushes`);
    // 6 s retention + one 2 s GOP of 25 fps video and ~47 audio frames/s, plus the sample in flight.
    assert.ok(maxSize <= 8 * (25 + 47) + 2, `buffer grew to ${maxSize}`);
    assert.equal(rb.evictedSamples + rb.size, input.length);
    assert.ok(isVideoKey(rb.readFrom(rb.newest90k! - s(6)).samples[0]!));
  });
});
