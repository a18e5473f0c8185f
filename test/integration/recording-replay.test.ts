import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { replay } from '../../src/replay.js';
import { makeClip, type ClipSpec } from '../helpers/clips.js';
import { readSample } from '../helpers/samples.js';
import { assertGoodClip } from '../helpers/clip-assert.js';
import { assertNoLeftoverFfmpeg } from '../helpers/processes.js';
import type { EventLine } from '../../src/runtime/events.js';

// evr-motion-files (unchanged) over files: W = 1 s, O = 0, Tmin = Tmax = 5 s → one clip per motion
// burst, [tFirst, tFirst + 5 s], starting on the keyframe at or before tFirst.
const START = '2021-03-04T05:06:07Z';
const ZERO = Date.parse(START);
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'lva-replay-'));
  dirs.push(d);
  return d;
};
after(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await assertNoLeftoverFfmpeg();
});

const evr = () => readSample('topologies/2.0/evr-motion-files.topology.json');

function recordings(events: EventLine[], kind: string) {
  return events.filter((e) => e.applicationProperties.eventType === `Microsoft.Media.Graph.Operational.${kind}`);
}

async function run(spec: ClipSpec, topology = evr(), extra: Partial<Parameters<typeof replay>[0]> = {}) {
  const input = await makeClip(spec);
  const out = tmp();
  const r = await replay({ topology, input, output: out, startTime: START, ...extra });
  const events = readFileSync(r.eventsFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as EventLine);
  return { r, input, out, events };
}

describe('replay: evr-motion-files over recorded video', () => {
  const cases: Array<{ name: string; spec: ClipSpec; gop: number; codec?: string }> = [
    { name: 'H.264, 2 s GOP', spec: { seconds: 16, fps: 25, gop: 50, motion: { start: 6, end: 8 } }, gop: 2 },
    { name: 'H.264 with B-frames', spec: { seconds: 16, fps: 25, gop: 50, bframes: 2, motion: { start: 6, end: 8 } }, gop: 2 },
    { name: 'H.264, 4 s GOP', spec: { seconds: 16, fps: 25, gop: 100, motion: { start: 6, end: 8 } }, gop: 4 },
    { name: 'H.265', spec: { seconds: 16, fps: 25, gop: 50, codec: 'hevc', motion: { start: 6, end: 8 } }, gop: 2, codec: 'hevc' },
  ];
  for (const c of cases) {
    test(`${c.name}: one clip [tFirst, tFirst + 5 s], keyframe-aligned, stream-copied, bit-identical`, async () => {
      const { r, input, events } = await run(c.spec);
      assert.ok(r.ok, r.errors.join('; '));
      const avail = recordings(events, 'RecordingAvailable');
      assert.equal(avail.length, 1, `clips: ${JSON.stringify(avail.map((e) => e.body))}`);
      const started = recordings(events, 'RecordingStarted');
      assert.equal(started.length, 1);
      assert.equal(recordings(events, 'RecordingStopped').length, 1);
      const body = avail[0]!.body;
      const requested = Date.parse(String(body.requestedStartTime));
      // Motion starts at 6 s: the first motion event is within a second of it (detector onset).
      assert.ok(requested - ZERO >= 6000 && requested - ZERO <= 7000, `first event at ${(requested - ZERO) / 1000} s`);
      assertGoodClip(String(body.outputLocation), {
        event: body, source: input, mediaZeroMs: ZERO, gopSeconds: c.gop, fps: 25, codec: c.codec ?? 'h264',
        expectedEndMs: requested + 5000,
      });
      assert.equal(typeof body.sha256, 'string');
      assert.ok(Number(body.preRollSeconds) >= 0);
      assert.match(String(body.outputLocation), /\/var\/media\/sampleFilesFromEVR-filesinkOutput-20210304T0506(1[1-5])Z\.mp4$/);
    });
  }

  test('the same input gives the same clips and events (deterministic)', async () => {
    const spec: ClipSpec = { seconds: 16, fps: 25, gop: 50, motion: { start: 6, end: 8 } };
    const a = await run(spec);
    const b = await run(spec);
    const strip = (events: EventLine[], out: string) => JSON.stringify(events).split(out).join('<out>');
    assert.equal(strip(a.events, a.out), strip(b.events, b.out));
    assert.ok(a.events.length > 0);
  });

  test('no motion → no clip', async () => {
    const { r, events } = await run({ seconds: 10, fps: 25, motion: 'none' });
    assert.ok(r.ok);
    assert.equal(recordings(events, 'RecordingStarted').length, 0);
  });

  test('audio + video: `isNot application` selectors keep the AAC track in the clip', async () => {
    const t = evr();
    t.name = 'EVRAudioVideo';
    for (const n of [...t.properties.processors, ...t.properties.sinks]) {
      for (const i of n.inputs) {
        if (n['@type'].endsWith('MotionDetectionProcessor')) continue;
        if (i.nodeName === 'rtspSource' || i.nodeName === 'signalGateProcessor') {
          i.outputSelectors = [{ property: 'mediaType', operator: 'isNot', value: 'application' }];
        }
      }
    }
    const { r, input, events } = await run({ seconds: 16, fps: 25, gop: 50, audio: true, motion: { start: 6, end: 8 } }, t);
    assert.ok(r.ok, r.errors.join('; '));
    const avail = recordings(events, 'RecordingAvailable');
    assert.equal(avail.length, 1);
    const body = avail[0]!.body;
    assertGoodClip(String(body.outputLocation), {
      event: body, source: input, mediaZeroMs: ZERO, gopSeconds: 2, fps: 25, audio: true,
      expectedEndMs: Date.parse(String(body.requestedStartTime)) + 5000,
    });
  });

  test('the sample as written (video only) drops the audio track', async () => {
    const { events, input } = await run({ seconds: 16, fps: 25, gop: 50, audio: true, motion: { start: 6, end: 8 } });
    const body = recordings(events, 'RecordingAvailable')[0]!.body;
    assertGoodClip(String(body.outputLocation), { event: body, source: input, mediaZeroMs: ZERO, gopSeconds: 2, fps: 25, audio: false });
  });
});

describe('replay: evr-hubMessage-files with timed hub messages', () => {
  test('each recordingTrigger message gives a clip [eventTime, eventTime + 5 s] on the keyframe at or before it', async () => {
    const topology = readSample('topologies/2.0/evr-hubMessage-files.topology.json');
    const at = (s: number) => new Date(ZERO + s * 1000).toISOString();
    const { r, input, events } = await run({ seconds: 20, fps: 25, gop: 50 }, topology, {
      params: { rtspUrl: 'rtsp://unused.invalid/' },
      messages: [
        { inputName: 'recordingTrigger', eventTime: at(5.3), body: { reason: 'doorbell' } },
        { inputName: 'recordingTrigger', eventTime: at(12.5) },
        { inputName: 'someOtherInput', eventTime: at(8) },
      ],
    });
    assert.ok(r.ok, r.errors.join('; '));
    const avail = recordings(events, 'RecordingAvailable');
    assert.equal(avail.length, 2, JSON.stringify(avail.map((e) => e.body)));
    const cache = new Map();
    for (const [i, t] of [5.3, 12.5].entries()) {
      const body = avail[i]!.body;
      assert.equal(Date.parse(String(body.requestedStartTime)), ZERO + t * 1000);
      assertGoodClip(String(body.outputLocation), {
        event: body, source: input, mediaZeroMs: ZERO, gopSeconds: 2, fps: 25, cache,
        expectedEndMs: ZERO + t * 1000 + 5000,
      });
    }
  });
});

describe('replay: motion-detection (hub sink) and file-sink retention', () => {
  test('motion-detection publishes Analytics.Inference events on inferenceOutput with LVA timestamps and boxes', async () => {
    const topology = readSample('topologies/2.0/motion-detection.topology.json');
    const { r, events } = await run({ seconds: 12, fps: 25, motion: { start: 4, end: 7 } }, topology, { params: { rtspUrl: 'rtsp://unused.invalid/' } });
    assert.ok(r.ok, r.errors.join('; '));
    const inf = events.filter((e) => e.applicationProperties.eventType === 'Microsoft.Media.Graph.Analytics.Inference');
    assert.ok(inf.length >= 2, `${inf.length} inference events`);
    for (const e of inf) {
      assert.equal(e.output, 'inferenceOutput');
      assert.equal(e.applicationProperties.subject, '/graphInstances/replay/processors/motionDetection');
      assert.equal(e.applicationProperties.dataVersion, '1.0');
      const ts = e.body.timestamp as number;
      assert.ok(Number.isInteger(ts));
      // 90 kHz ticks since the Unix epoch, the same instant as eventTime (lva-spec §4.4)
      assert.equal(new Date(Math.round(ts / 90)).toISOString(), e.applicationProperties.eventTime);
      const sec = (ts / 90 - ZERO) / 1000;
      assert.ok(sec >= 4 && sec <= 8, `motion event at ${sec} s lies in the motion interval`);
      const infs = e.body.inferences as Array<{ type: string; motion: { box: { l: number; t: number; w: number; h: number } } }>;
      assert.ok(infs.length >= 1);
      for (const i of infs) {
        assert.equal(i.type, 'motion');
        const b = i.motion.box;
        for (const v of [b.l, b.t, b.w, b.h]) assert.ok(v >= 0 && v <= 1);
        // The box crosses the middle row of the frame: its vertical centre is near 0.5.
        assert.ok(Math.abs(b.t + b.h / 2 - 0.5) < 0.2, `box ${JSON.stringify(b)}`);
      }
    }
    // eventAggregationWindow defaults to 1 s: events are at least ~1 s apart.
    const times = inf.map((e) => e.body.timestamp as number);
    for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! >= 90_000 - 1, 'aggregated per second');
  });

  test('maximumSizeMiB: the oldest clips of the sink are deleted once the quota is exceeded', async () => {
    const topology = readSample('topologies/2.0/evr-hubMessage-files.topology.json');
    topology.properties.sinks[0].maximumSizeMiB = '1';
    const at = (s: number) => new Date(ZERO + s * 1000).toISOString();
    const { r, out, events } = await run({ seconds: 40, fps: 25, gop: 50 }, topology, {
      params: { rtspUrl: 'rtsp://unused.invalid/' },
      messages: [2, 10, 18, 26, 34].map((s) => ({ inputName: 'recordingTrigger', eventTime: at(s) })),
    });
    assert.ok(r.ok, r.errors.join('; '));
    const avail = recordings(events, 'RecordingAvailable').map((e) => ({ file: String(e.body.outputLocation), size: Number(e.body.sizeBytes) }));
    assert.equal(avail.length, 5);
    const { existsSync, readdirSync, statSync } = await import('node:fs');
    const dir = path.join(out, 'var', 'media');
    const left = readdirSync(dir).filter((f) => f.endsWith('.mp4'));
    const total = left.reduce((a, f) => a + statSync(path.join(dir, f)).size, 0);
    assert.ok(total <= Math.max(1024 * 1024, avail.at(-1)!.size), `${total} bytes left`);
    assert.ok(left.length < 5, 'something was deleted');
    assert.ok(existsSync(avail.at(-1)!.file), 'the newest clip is kept');
    assert.ok(!existsSync(avail[0]!.file), 'the oldest clip went first');
    assert.ok(avail.every((a) => a.size > 0));
  });
});
