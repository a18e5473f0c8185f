import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { startRtspServer, type RtspTestServer } from '../helpers/rtsp-server.js';
import { startRecordingHarness, isType, type RecordingHarness } from '../helpers/recording.js';
import { readSample } from '../helpers/samples.js';
import { probeClip } from '../helpers/clip-check.js';
import { assertNoLeftoverFfmpeg } from '../helpers/processes.js';

// evr-hubMessage-files, unchanged: an IoT Hub message on input `recordingTrigger` opens a signal gate
// (W 1 s, O 0, Tmin = Tmax = 5 s) that records the live camera to an MP4 file.
describe('evr-hubMessage-files against a live RTSP camera', () => {
  let rtsp: RtspTestServer;
  let h: RecordingHarness;
  const topology = readSample('topologies/2.0/evr-hubMessage-files.topology.json');

  before(async () => {
    rtsp = await startRtspServer();
    // The sample names the LVA RTSP simulator; point that URL at our camera without editing the topology.
    const sampleUrl = topology.properties.sources[0].endpoint.url as string;
    h = await startRecordingHarness({ endpointAliases: { [sampleUrl]: rtsp.url('/test') } });
  });
  after(async () => {
    await h?.close();
    await rtsp?.stop();
    await assertNoLeftoverFfmpeg();
  });

  test('a trigger message records one clip: copied H.264, starts on a keyframe, lasts Tmin', async () => {
    assert.equal((await h.call('GraphTopologySet', topology)).status, 201);
    const set = await h.call('GraphInstanceSet', {
      name: 'hub1', properties: { topologyName: topology.name, parameters: [{ name: 'rtspUrl', value: 'rtsp://unused.invalid/x' }] },
    });
    assert.equal(set.status, 201, JSON.stringify(set.payload));
    assert.deepEqual(await h.call('GraphInstanceActivate', { name: 'hub1' }), { status: 200, payload: null });
    const session = await h.waitFor(isType('MediaSessionEstablished'), 20_000, 'MediaSessionEstablished');
    assert.match(String(session.body.sdp), /^SDP:\n/);
    assert.equal(session.applicationProperties.subject, '/graphInstances/hub1/sources/rtspSource');
    // Let the pre-roll buffer fill, then trigger "now".
    await new Promise((r) => setTimeout(r, 3000));
    const triggerAt = new Date();
    const delivered = h.daemon.inputs.deliver({
      inputName: 'recordingTrigger', body: { reason: 'doorbell' },
      applicationProperties: { eventTime: triggerAt.toISOString() }, receivedAt: triggerAt,
    });
    assert.equal(delivered, 1);
    const started = await h.waitFor(isType('RecordingStarted'), 15_000, 'RecordingStarted');
    assert.equal(started.body.outputType, 'filePath');
    assert.equal(started.applicationProperties.subject, '/graphInstances/hub1/sinks/fileSink');
    const avail = await h.waitFor(isType('RecordingAvailable'), 20_000, 'RecordingAvailable');
    const stopped = h.ofType('RecordingStopped');
    assert.equal(stopped.length, 1);
    const file = avail.body.outputLocation as string;
    assert.ok(existsSync(file), file);
    assert.match(file, /sampleFilesFromEVR-\d{8}T\d{6}Z\.mp4$/);
    const p = probeClip(file);
    assert.equal(p.video.codec, 'h264');
    assert.equal(p.video.width, 640);
    assert.ok(p.videoPackets[0]!.keyframe, 'clip starts on a keyframe');
    // O = 0: requested start = event time; the clip starts on the keyframe at or before it (GOP 2 s).
    const requested = Date.parse(String(avail.body.requestedStartTime));
    const actual = Date.parse(String(avail.body.startTime));
    assert.ok(actual <= requested + 1, `actual start ${actual} <= requested ${requested}`);
    assert.ok(requested - actual <= 2100, `within one GOP: ${requested - actual} ms`);
    // Tmin = Tmax = 5 s after the event: the end is event + 5 s (within one frame).
    const end = Date.parse(String(avail.body.endTime));
    assert.ok(Math.abs(end - (Date.parse(String(avail.body.requestedStartTime)) + 5000)) <= 70, `end ${end - requested} ms after the event`);
    assert.ok(Math.abs(p.durationSeconds - (end - actual) / 1000) < 0.1, `ffprobe duration ${p.durationSeconds}`);
    assert.equal(typeof avail.body.sha256, 'string');
    assert.ok(Number(avail.body.sizeBytes) > 0);
    assert.deepEqual(await h.call('GraphInstanceDeactivate', { name: 'hub1' }), { status: 200, payload: null });
  });
});
