import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRtspServer, type RtspTestServer } from '../helpers/rtsp-server.js';
import { startRecordingHarness, isType, type RecordingHarness } from '../helpers/recording.js';
import { readSample } from '../helpers/samples.js';
import { assertNoLeftoverFfmpeg } from '../helpers/processes.js';
import { startLoopbackServer } from '../helpers/extension-servers.js';
import { makeSyntheticCamera } from '../../src/util/synthetic-camera.js';
import { findFfmpeg } from '../../src/util/executables.js';
import { startInferenceServer, type InferenceServer, type ReceivedImage } from '../../src/tools/inference-server.js';
import { liveFfmpegProcessCount } from '../../src/media/ffmpeg-process.js';

// The httpExtension sample, unchanged, against a live RTSP camera (GStreamer fixture looping a
// synthetic scene in which a red object shows for 3 s of every 6 s) and the reference server.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dir = mkdtempSync(path.join(os.tmpdir(), 'lva-ext-live-'));

describe('httpExtension sample against a live camera', () => {
  let rtsp: RtspTestServer;
  let h: RecordingHarness;
  let srv: InferenceServer;
  const received: ReceivedImage[] = [];
  before(async () => {
    const mp4 = path.join(dir, 'scene.mp4');
    await makeSyntheticCamera({ seconds: 6, fps: 25, size: '640x360', gopSeconds: 1, background: 'gray', motion: [],
      objects: [{ from: 1, to: 4, color: 'red', box: { l: 0.25, t: 0.25, w: 0.2, h: 0.3 } }] }, mp4);
    const ts = path.join(dir, 'scene.ts');
    execFileSync(findFfmpeg(), ['-nostdin', '-loglevel', 'error', '-i', mp4, '-c', 'copy', '-f', 'mpegts', '-y', ts]);
    rtsp = await startRtspServer({ loopFile: ts });
    srv = await startInferenceServer({ auth: { username: 'dummyUserName', password: 'dummyPassword' }, onRequest: (r) => received.push(r) });
    h = await startRecordingHarness();
  });
  after(async () => {
    await h?.close();
    await rtsp?.stop();
    await srv?.close();
    rmSync(dir, { recursive: true, force: true });
    await assertNoLeftoverFfmpeg();
  });

  test('inference events with the object, ≤ 5 requests per second, BMP 416x234 with Basic auth; a slow extension drops frames instead of queueing', async () => {
    const topology = readSample('topologies/2.0/httpExtension.topology.json');
    assert.equal((await h.call('GraphTopologySet', topology)).status, 201);
    const set = await h.call('GraphInstanceSet', {
      name: 'ext1', properties: { topologyName: topology.name, parameters: [
        { name: 'rtspUrl', value: rtsp.url('/loop') }, { name: 'inferencingUrl', value: srv.url },
      ] },
    });
    assert.equal(set.status, 201, JSON.stringify(set.payload));
    assert.equal((await h.call('GraphInstanceActivate', { name: 'ext1' })).status, 200);
    await h.waitFor(isType('Inference'), 30_000, 'a first inference');
    const t0 = Date.now();
    const n0 = received.length;
    await sleep(6000);
    const rate = (received.length - n0) / ((Date.now() - t0) / 1000);
    assert.ok(rate <= 5.5 && rate >= 2, `request rate ${rate.toFixed(2)}/s`);
    const inf = h.events.filter(isType('Inference'));
    assert.ok(inf.length >= 5, `${inf.length} inference events`);
    const ts = inf.map((e) => Number(e.body.timestamp));
    // At most one request per 0.2 s slot of media time: never more than 5 in a media second.
    const perSecond = new Map<number, number>();
    for (const t of ts) perSecond.set(Math.floor(t / 90_000), (perSecond.get(Math.floor(t / 90_000)) ?? 0) + 1);
    for (const [sec, n] of perSecond) assert.ok(n <= 5, `${n} inferences in media second ${sec}`);
    for (const e of inf) {
      const b = (e.body.inferences as any[])[0].entity.box;
      assert.ok(Math.abs(b.l - 0.25) < 0.02 && Math.abs(b.t - 0.25) < 0.02, JSON.stringify(b));
    }
    for (const q of received) {
      assert.equal(q.contentType, 'image/bmp');
      assert.equal(q.body.readInt32LE(18), 416);
      assert.equal(Math.abs(q.body.readInt32LE(22)), 234);
      assert.equal(q.headers.authorization, 'Basic ' + Buffer.from('dummyUserName:dummyPassword').toString('base64'));
    }
    assert.equal((await h.call('GraphInstanceDeactivate', { name: 'ext1' })).status, 200);

    // The same graph against an extension that needs 1 s per answer: one request in flight, the
    // frames arriving meanwhile are dropped, so requests run at ~1/s and never pile up.
    let inFlight = 0;
    let maxInFlight = 0;
    const slow = await startLoopbackServer((_req, _b, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => {
        inFlight--;
        res.writeHead(204).end();
      }, 1000);
    });
    try {
      const set2 = await h.call('GraphInstanceSet', {
        name: 'ext1', properties: { topologyName: topology.name, parameters: [
          { name: 'rtspUrl', value: rtsp.url('/loop') }, { name: 'inferencingUrl', value: slow.url },
        ] },
      });
      assert.equal(set2.status, 200, JSON.stringify(set2.payload));
      assert.equal((await h.call('GraphInstanceActivate', { name: 'ext1' })).status, 200);
      await sleep(5000);
      assert.equal((await h.call('GraphInstanceDeactivate', { name: 'ext1' })).status, 200);
      assert.equal(maxInFlight, 1);
      assert.ok(slow.requests.length >= 2 && slow.requests.length <= 6, `${slow.requests.length} requests in ~5 s at 1 s each`);
    } finally {
      await slow.close();
    }
    assert.equal(liveFfmpegProcessCount(), 0);
  });

  test('EVR live: RTSP → frame-rate filter → HTTP extension → signal gate → file sink records the periods the server reports', async () => {
    const topology = {
      '@apiVersion': '1.0', name: 'EvrOnObjectsLive',
      properties: {
        parameters: [{ name: 'rtspUrl', type: 'String' }, { name: 'inferencingUrl', type: 'String' }],
        sources: [{ '@type': '#Microsoft.Media.MediaGraphRtspSource', name: 'rtspSource', endpoint: { '@type': '#Microsoft.Media.MediaGraphUnsecuredEndpoint', url: '${rtspUrl}' } }],
        processors: [
          { '@type': '#Microsoft.Media.MediaGraphFrameRateFilterProcessor', name: 'frameRateFilter', maximumFps: '4', inputs: [{ nodeName: 'rtspSource' }] },
          {
            '@type': '#Microsoft.Media.MediaGraphHttpExtension', name: 'httpExtension',
            endpoint: { '@type': '#Microsoft.Media.MediaGraphUnsecuredEndpoint', url: '${inferencingUrl}',
              credentials: { '@type': '#Microsoft.Media.MediaGraphUsernamePasswordCredentials', username: 'dummyUserName', password: 'dummyPassword' } },
            image: { scale: { mode: 'Pad', width: '320', height: '320' }, format: { '@type': '#Microsoft.Media.MediaGraphImageFormatEncoded', encoding: 'Bmp' } },
            inputs: [{ nodeName: 'frameRateFilter' }],
          },
          {
            '@type': '#Microsoft.Media.MediaGraphSignalGateProcessor', name: 'gate',
            activationEvaluationWindow: 'PT1S', activationSignalOffset: 'PT0S', minimumActivationTime: 'PT1S', maximumActivationTime: 'PT1M',
            inputs: [{ nodeName: 'httpExtension' }, { nodeName: 'rtspSource' }],
          },
        ],
        sinks: [
          { '@type': '#Microsoft.Media.MediaGraphFileSink', name: 'fileSink', filePathPattern: '/var/media/objects-${System.DateTime}', inputs: [{ nodeName: 'gate' }] },
          { '@type': '#Microsoft.Media.MediaGraphIoTHubMessageSink', name: 'hubSink', hubOutputName: 'inferenceOutput', inputs: [{ nodeName: 'httpExtension' }] },
        ],
      },
    };
    assert.equal((await h.call('GraphTopologySet', topology)).status, 201);
    const set = await h.call('GraphInstanceSet', {
      name: 'evr1', properties: { topologyName: topology.name, parameters: [
        { name: 'rtspUrl', value: rtsp.url('/loop') }, { name: 'inferencingUrl', value: srv.url },
      ] },
    });
    assert.equal(set.status, 201, JSON.stringify(set.payload));
    assert.equal((await h.call('GraphInstanceActivate', { name: 'evr1' })).status, 200);
    const avail = await h.waitFor((e) => isType('RecordingAvailable')(e) && e.applicationProperties.subject.includes('/evr1/'), 40_000, 'a clip');
    await sleep(500);
    assert.equal((await h.call('GraphInstanceDeactivate', { name: 'evr1' })).status, 200);
    const detections = h.events
      .filter((e) => isType('Inference')(e) && e.applicationProperties.subject === '/graphInstances/evr1/processors/httpExtension')
      .map((e) => Date.parse(e.applicationProperties.eventTime));
    const requested = Date.parse(String(avail.body.requestedStartTime));
    const end = Date.parse(String(avail.body.endTime));
    // The clip starts at a reported detection and ends Tmin after the last detection before its end:
    // the recorded period is the period the server reported objects in. (That it starts at the FIRST
    // detection of its period is asserted exactly in replay, http-extension-replay.test.ts: live, an
    // answer later than the gate's hold bound — window + 2 s, reached on a loaded CI machine — may
    // legitimately open the clip at the next detection instead.)
    assert.ok(detections.includes(requested), `clip start ${requested} is a detection time`);
    const lastInClip = Math.max(...detections.filter((t) => t >= requested && t < end));
    assert.ok(Math.abs(end - (lastInClip + 1000)) <= 80, `end ${end - requested} ms vs last detection + 1 s ${lastInClip + 1000 - requested} ms`);
    assert.ok(existsSync(String(avail.body.outputLocation)));
  });
});

describe('motion-with-httpExtension sample against a live camera', () => {
  let rtsp: RtspTestServer;
  let h: RecordingHarness;
  let srv: InferenceServer;
  let azurite: import('../helpers/azurite.js').Azurite;
  const received: ReceivedImage[] = [];
  const liveDir = mkdtempSync(path.join(os.tmpdir(), 'lva-ext-live2-'));
  before(async () => {
    const mp4 = path.join(liveDir, 'moving.mp4');
    // A red object crossing the scene for 3 s of every 8 s: motion (gate → asset) and the extension see it.
    await makeSyntheticCamera({ seconds: 8, fps: 25, size: '640x360', gopSeconds: 1, background: 'gray', motion: [],
      objects: [{ from: 2, to: 5, color: 'red', box: { l: 0.1, t: 0.3, w: 0.15, h: 0.25 }, speed: 0.2 }] }, mp4);
    const ts = path.join(liveDir, 'moving.ts');
    execFileSync(findFfmpeg(), ['-nostdin', '-loglevel', 'error', '-i', mp4, '-c', 'copy', '-f', 'mpegts', '-y', ts]);
    rtsp = await startRtspServer({ loopFile: ts });
    srv = await startInferenceServer({ onRequest: (r) => received.push(r) });
    const { startAzurite } = await import('../helpers/azurite.js');
    azurite = await startAzurite();
    h = await startRecordingHarness({ assetStorageConnectionString: azurite.connectionString, assetStorageContainerName: 'live-ext' });
  });
  after(async () => {
    await h?.close();
    await rtsp?.stop();
    await srv?.close();
    await azurite?.stop();
    rmSync(liveDir, { recursive: true, force: true });
    await assertNoLeftoverFfmpeg();
  });

  test('extension inferences on the hub sink and a motion-triggered recording from one camera connection', async () => {
    const topology = readSample('topologies/2.0/motion-with-httpExtension.topology.json');
    assert.equal((await h.call('GraphTopologySet', topology)).status, 201);
    const set = await h.call('GraphInstanceSet', {
      name: 'mx', properties: { topologyName: topology.name, parameters: [
        { name: 'rtspUrl', value: rtsp.url('/loop') }, { name: 'httpAIServerAddress', value: srv.url },
      ] },
    });
    assert.equal(set.status, 201, JSON.stringify(set.payload));
    assert.equal((await h.call('GraphInstanceActivate', { name: 'mx' })).status, 200);
    const first = await h.waitFor(isType('Inference'), 30_000, 'an extension inference');
    assert.equal(first.applicationProperties.subject, '/graphInstances/mx/processors/httpExtension');
    assert.equal((first.body.inferences as any[])[0].entity.tag.value, 'red');
    await h.waitFor(isType('RecordingStarted'), 30_000, 'a motion-triggered recording');
    assert.equal((await h.call('GraphInstanceDeactivate', { name: 'mx' })).status, 200);
    assert.ok(received.length > 0 && received.every((q) => q.contentType === 'image/bmp'));
    assert.equal(liveFfmpegProcessCount(), 0);
  });
});
