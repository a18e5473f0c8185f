import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { startRtspServer, type RtspTestServer } from '../helpers/rtsp-server.js';
import { startRecordingHarness, isType, type RecordingHarness } from '../helpers/recording.js';
import { readSample } from '../helpers/samples.js';
import { probeClip } from '../helpers/clip-check.js';
import { makeClip } from '../helpers/clips.js';
import { assertNoLeftoverFfmpeg, listFfmpegPids } from '../helpers/processes.js';
import { liveFfmpegProcessCount } from '../../src/media/ffmpeg-process.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function assertPlayable(file: string): void {
  assert.ok(existsSync(file), file);
  const p = probeClip(file);
  assert.equal(p.video.codec, 'h264');
  assert.ok(p.videoPackets.length > 0 && p.videoPackets[0]!.keyframe, `${file} starts on a keyframe`);
  assert.ok(p.durationSeconds > 0);
}

describe('evr-motion-files against a live camera with motion', () => {
  let rtsp: RtspTestServer;
  let h: RecordingHarness;
  before(async () => {
    // A 12 s scene looped forever: a box crosses it between 3 s and 6 s of every loop.
    const loop = await makeClip({ seconds: 12, fps: 25, gop: 50, motion: { start: 3, end: 6 }, container: 'ts' });
    rtsp = await startRtspServer({ loopFile: loop });
    h = await startRecordingHarness();
  });
  after(async () => {
    await h?.close();
    await rtsp?.stop();
    await assertNoLeftoverFfmpeg();
  });

  test('motion opens the gate and a clip of [tFirst, tFirst + 5 s] is written from the live stream', async () => {
    const topology = readSample('topologies/2.0/evr-motion-files.topology.json');
    assert.equal((await h.call('GraphTopologySet', topology)).status, 201);
    const set = await h.call('GraphInstanceSet', {
      name: 'motion1', properties: { topologyName: topology.name, parameters: [{ name: 'rtspUrl', value: rtsp.url('/loop') }] },
    });
    assert.equal(set.status, 201, JSON.stringify(set.payload));
    assert.equal((await h.call('GraphInstanceActivate', { name: 'motion1' })).status, 200);
    const avail = await h.waitFor(isType('RecordingAvailable'), 40_000, 'a motion clip');
    const file = String(avail.body.outputLocation);
    assertPlayable(file);
    const requested = Date.parse(String(avail.body.requestedStartTime));
    const start = Date.parse(String(avail.body.startTime));
    const end = Date.parse(String(avail.body.endTime));
    assert.ok(start <= requested && requested - start <= 2040, `keyframe at or before the requested start, within one GOP (${requested - start} ms)`);
    // The clip ends with the last frame before tFirst + 5 s: its end lies within one frame interval
    // of the formula (live RTP timestamps jitter by a few ms around 40 ms).
    assert.ok(end >= requested + 5000 - 1 && end - (requested + 5000) <= 60, `end = tFirst + 5 s within one frame (${end - requested} ms)`);
    assert.equal((await h.call('GraphInstanceDeactivate', { name: 'motion1' })).status, 200);
    assert.equal(liveFfmpegProcessCount(), 0);
  });
});

describe('camera drops and returns (evr-hubMessage-files)', () => {
  let rtsp: RtspTestServer;
  let h: RecordingHarness;
  const topology = readSample('topologies/2.0/evr-hubMessage-files.topology.json');
  before(async () => {
    rtsp = await startRtspServer();
    h = await startRecordingHarness({ endpointAliases: { [topology.properties.sources[0].endpoint.url]: rtsp.url('/test') } });
  });
  after(async () => {
    await h?.close();
    await rtsp?.stop();
    await assertNoLeftoverFfmpeg();
  });

  const trigger = () => {
    const now = new Date();
    return h.daemon.inputs.deliver({ inputName: 'recordingTrigger', body: {}, applicationProperties: { eventTime: now.toISOString() }, receivedAt: now });
  };

  test('a clip cut by the outage is closed, valid and reported; the graph reconnects and records the next event', async () => {
    assert.equal((await h.call('GraphTopologySet', topology)).status, 201);
    await h.call('GraphInstanceSet', { name: 'drop1', properties: { topologyName: topology.name, parameters: [{ name: 'rtspUrl', value: 'rtsp://x.invalid/' }] } });
    assert.equal((await h.call('GraphInstanceActivate', { name: 'drop1' })).status, 200);
    await h.waitFor(isType('MediaSessionEstablished'), 20_000, 'first session');
    await sleep(2500);
    const ffmpegBefore = listFfmpegPids().length;
    assert.equal(trigger(), 1);
    await h.waitFor(isType('RecordingStarted'), 10_000, 'RecordingStarted');
    await sleep(1500);
    await rtsp.kill(); // the camera disappears mid-clip
    const cut = await h.waitFor(isType('RecordingAvailable'), 30_000, 'the cut clip to be finalised');
    assertPlayable(String(cut.body.outputLocation));
    assert.equal(cut.body.truncated, true, 'the cut clip is reported as truncated');
    const lost = await h.waitFor((e) => /Diagnostics\.(NetworkError|ProtocolError)$/.test(e.applicationProperties.eventType), 30_000, 'a diagnostics event for the outage');
    assert.doesNotMatch(JSON.stringify(lost.body), /test:test@/, 'credentials are not in events');
    // The instance stays Active while the camera is away (lva-spec §1.5).
    assert.equal((await h.call('GraphInstanceGet', { name: 'drop1' })).payload.properties.state, 'Active');
    await sleep(2000);
    await rtsp.restart();
    const sessions = () => h.ofType('MediaSessionEstablished').length;
    const deadline = Date.now() + 40_000;
    while (sessions() < 2 && Date.now() < deadline) await sleep(200);
    assert.ok(sessions() >= 2, 'reconnected');
    await sleep(2500);
    const before = h.ofType('RecordingAvailable').length;
    assert.equal(trigger(), 1);
    await h.waitFor(() => h.ofType('RecordingAvailable').length > before, 20_000, 'a clip after the reconnect');
    const second = h.ofType('RecordingAvailable').at(-1)!;
    assertPlayable(String(second.body.outputLocation));
    assert.notEqual(second.body.truncated, true);
    assert.equal(listFfmpegPids().length, ffmpegBefore, 'the same number of ffmpeg processes as before the outage');
    assert.equal((await h.call('GraphInstanceDeactivate', { name: 'drop1' })).status, 200);
  });
});

describe('live H.265 with B-frames, AAC audio and a 4 s GOP', () => {
  let rtsp: RtspTestServer;
  let h: RecordingHarness;
  before(async () => {
    const file = await makeClip({ seconds: 30, fps: 25, gop: 100, bframes: 2, codec: 'hevc', audio: true, container: 'mkv' });
    rtsp = await startRtspServer({ file });
    h = await startRecordingHarness();
  });
  after(async () => {
    await h?.close();
    await rtsp?.stop();
    await assertNoLeftoverFfmpeg();
  });

  test('a hub trigger records an H.265 + AAC clip (isNot application) that starts on a keyframe within one 4 s GOP', async () => {
    const topology = readSample('topologies/2.0/evr-hubMessage-files.topology.json');
    topology.name = 'EVRAudioVideoH265';
    topology.properties.sources[0].endpoint.url = '${rtspUrl}';
    for (const n of [...topology.properties.processors, ...topology.properties.sinks]) {
      for (const i of n.inputs) {
        if (i.nodeName === 'rtspSource' || i.nodeName === 'signalGateProcessor') {
          i.outputSelectors = [{ property: 'mediaType', operator: 'isNot', value: 'application' }];
        }
      }
    }
    assert.equal((await h.call('GraphTopologySet', topology)).status, 201);
    await h.call('GraphInstanceSet', { name: 'h265', properties: { topologyName: topology.name, parameters: [{ name: 'rtspUrl', value: rtsp.url('/file') }] } });
    assert.equal((await h.call('GraphInstanceActivate', { name: 'h265' })).status, 200);
    await h.waitFor(isType('MediaSessionEstablished'), 20_000, 'session');
    await sleep(9000); // past two keyframes, so the pre-roll buffer has learnt the 4 s GOP
    const now = new Date();
    assert.equal(h.daemon.inputs.deliver({ inputName: 'recordingTrigger', body: {}, applicationProperties: { eventTime: now.toISOString() }, receivedAt: now }), 1);
    const avail = await h.waitFor(isType('RecordingAvailable'), 25_000, 'RecordingAvailable');
    const file = String(avail.body.outputLocation);
    const p = probeClip(file);
    assert.equal(p.video.codec, 'hevc');
    assert.equal(p.audio?.codec, 'aac');
    assert.ok(p.videoPackets[0]!.keyframe);
    const requested = Date.parse(String(avail.body.requestedStartTime));
    const start = Date.parse(String(avail.body.startTime));
    assert.ok(start <= requested && requested - start <= 4100, `starts on the keyframe at or before the event, within one GOP (${requested - start} ms)`);
    assert.equal((await h.call('GraphInstanceDeactivate', { name: 'h265' })).status, 200);
  });
});
