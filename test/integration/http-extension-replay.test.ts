import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { replay } from '../../src/replay.js';
import { makeSyntheticCamera, type SyntheticObject } from '../../src/util/synthetic-camera.js';
import { startInferenceServer, type ReceivedImage } from '../../src/tools/inference-server.js';
import { readSample } from '../helpers/samples.js';
import { assertNoLeftoverFfmpeg } from '../helpers/processes.js';
import { startLoopbackServer } from '../helpers/extension-servers.js';
import { freePort } from '../helpers/ports.js';
import { startAzurite, type Azurite } from '../helpers/azurite.js';
import { makeTestPki } from '../helpers/extension-servers.js';
import type { EventLine } from '../../src/runtime/events.js';

// HTTP extension samples over recorded video against the reference inference server (which really
// finds the coloured objects of the synthetic camera). Replay is deterministic: media time drives
// sampling, every sampled frame waits for its answer.

const START = '2021-03-04T05:06:07Z';
const ZERO = Date.parse(START);
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'lva-ext-'));
  dirs.push(d);
  return d;
};
after(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await assertNoLeftoverFfmpeg();
});

const RED: SyntheticObject = { from: 2, to: 5, color: 'red', box: { l: 0.25, t: 0.25, w: 0.2, h: 0.3 } };
const BLUE: SyntheticObject = { from: 7, to: 9, color: 'blue', box: { l: 0.6, t: 0.5, w: 0.15, h: 0.25 } };
let camera: string;
before(async () => {
  camera = path.join(tmp(), 'camera.mp4');
  await makeSyntheticCamera({ seconds: 10, fps: 25, size: '640x360', gopSeconds: 1, background: 'gray', motion: [], objects: [RED, BLUE] }, camera);
});

const events = (file: string) => readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as EventLine);
const ofType = (ev: EventLine[], suffix: string) => ev.filter((e) => e.applicationProperties.eventType.endsWith(suffix));
const mediaSeconds = (e: EventLine) => (Date.parse(e.applicationProperties.eventTime) - ZERO) / 1000;
const boxOf = (e: EventLine, i = 0) => ((e.body.inferences as any[])[i].entity.box) as { l: number; t: number; w: number; h: number };

/** Width and height written in the image's own header. */
function imageSize(r: ReceivedImage): { width: number; height: number } {
  const b = r.body;
  if (r.contentType === 'image/png') return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
  if (r.contentType === 'image/bmp') return { width: b.readInt32LE(18), height: Math.abs(b.readInt32LE(22)) };
  if (r.contentType === 'image/jpeg') {
    for (let i = 2; i < b.length;) {
      const marker = b[i + 1]!;
      if (marker >= 0xc0 && marker <= 0xc3) return { height: b.readUInt16BE(i + 5), width: b.readUInt16BE(i + 7) };
      i += 2 + b.readUInt16BE(i + 2);
    }
    throw new Error('no SOF in JPEG');
  }
  return { width: Number(r.headers['x-ms-image-width']), height: Number(r.headers['x-ms-image-height']) };
}

/** Expected detections: the first 25 fps frame of every 1/rate-second slot (ffmpeg's select and the
 * extension's sampler) among those showing the object. */
function sampledTimes(rate: number, seconds: number, obj: SyntheticObject, fps = 25): number[] {
  const out: number[] = [];
  let lastSlot = -1;
  for (let n = 0; n < seconds * fps; n++) {
    const t = n / fps;
    const slot = Math.floor((t + 1e-5) * rate);
    if (slot <= lastSlot) continue;
    lastSlot = slot;
    if (t >= obj.from - 1e-9 && t < obj.to - 1e-9) out.push(Math.round(t * 1000) / 1000);
  }
  return out;
}

describe('httpExtension sample (unchanged) in replay', () => {
  test('BMP 416x234 (preserveAspectRatio), ≤ 5 requests per media second, Basic credentials, boxes where the objects are', async () => {
    const received: ReceivedImage[] = [];
    const srv = await startInferenceServer({ auth: { username: 'dummyUserName', password: 'dummyPassword' }, onRequest: (r) => received.push(r) });
    const out = tmp();
    const r = await replay({
      topology: readSample('topologies/2.0/httpExtension.topology.json'), input: camera, output: out, startTime: START,
      params: { rtspUrl: 'rtsp://camera.invalid/x', inferencingUrl: srv.url },
    });
    await srv.close();
    assert.ok(r.ok, r.errors.join('; '));
    // 10 s of media at ≤ 5/s: exactly 50 (replay drops nothing), each a 416x234 BMP with Basic auth.
    assert.equal(received.length, 50);
    for (const q of received) {
      assert.equal(q.contentType, 'image/bmp');
      assert.deepEqual(imageSize(q), { width: 416, height: 234 });
      assert.equal(q.headers.authorization, 'Basic ' + Buffer.from('dummyUserName:dummyPassword').toString('base64'));
      assert.equal(q.path, '/score');
    }
    const inf = ofType(events(r.eventsFile), 'Analytics.Inference');
    const times = inf.map(mediaSeconds);
    assert.deepEqual(times, [...sampledTimes(5, 10, RED), ...sampledTimes(5, 10, BLUE)]);
    for (let i = 1; i < times.length; i++) assert.ok(Math.floor(times[i]! * 5 + 1e-6) > Math.floor(times[i - 1]! * 5 + 1e-6), 'one request per 0.2 s of media time');
    for (const e of inf) {
      assert.equal(e.applicationProperties.subject, '/graphInstances/replay/processors/httpExtension');
      assert.equal(e.output, 'inferenceOutput');
      assert.equal(e.body.timestamp, Math.round((Date.parse(e.applicationProperties.eventTime) / 1000) * 90_000));
      const obj = mediaSeconds(e) < 6 ? RED : BLUE;
      const tag = (e.body.inferences as any[])[0].entity.tag.value;
      assert.equal(tag, obj.color);
      const b = boxOf(e);
      for (const k of ['l', 't', 'w', 'h'] as const) assert.ok(Math.abs(b[k] - obj.box[k]) <= 0.015, `${k}: ${b[k]} vs ${obj.box[k]}`);
    }
  });

  test('the 1.0 sample (frame-rate filter 2 fps → HTTP extension) runs unchanged', async () => {
    const received: ReceivedImage[] = [];
    const srv = await startInferenceServer({ onRequest: (r) => received.push(r) });
    const r = await replay({
      topology: readSample('topologies/1.0/httpExtension.topology.json'), input: camera, output: tmp(), startTime: START,
      params: { rtspUrl: 'rtsp://camera.invalid/x', inferencingUrl: srv.url },
    });
    await srv.close();
    assert.ok(r.ok, r.errors.join('; '));
    assert.equal(received.length, 20, '10 s at 2 fps');
    assert.deepEqual(ofType(events(r.eventsFile), 'Analytics.Inference').map(mediaSeconds), [...sampledTimes(2, 10, RED), ...sampledTimes(2, 10, BLUE)]);
  });
});

describe('endpoint security through the graph', () => {
  test('TlsEndpoint with trustedCertificates + HttpHeaderCredentials: verified and authenticated; a wrong CA is refused', async () => {
    const pki = makeTestPki();
    const received: ReceivedImage[] = [];
    const srv = await startInferenceServer({ tls: { cert: pki.serverCert, key: pki.serverKey }, auth: { headerName: 'x-api-key', headerValue: 'k3y-s3cret' }, onRequest: (q) => received.push(q) });
    const topology = (ca: string) => {
      const t = readSample('topologies/2.0/httpExtension.topology.json');
      const ext = t.properties.processors[0];
      ext.endpoint = {
        '@type': '#Microsoft.Media.MediaGraphTlsEndpoint', url: '${inferencingUrl}',
        credentials: { '@type': '#Microsoft.Media.MediaGraphHttpHeaderCredentials', headerName: 'x-api-key', headerValue: 'k3y-s3cret' },
        trustedCertificates: { '@type': '#Microsoft.Media.MediaGraphPemCertificateList', certificates: [ca] },
        validationOptions: { ignoreHostname: 'false', ignoreSignature: 'false' },
      };
      return t;
    };
    const params = { rtspUrl: 'rtsp://camera.invalid/x', inferencingUrl: srv.url };
    const good = await replay({ topology: topology(pki.caCert), input: camera, output: tmp(), startTime: START, params });
    const bad = await replay({ topology: topology(pki.otherCaCert), input: camera, output: tmp(), startTime: START, params });
    await srv.close();
    assert.ok(good.ok && bad.ok, [...good.errors, ...bad.errors].join('; '));
    assert.equal(received.length, 50);
    assert.ok(received.every((q) => q.headers['x-api-key'] === 'k3y-s3cret'));
    assert.equal(ofType(events(good.eventsFile), 'Analytics.Inference').length, 25);
    const refused = events(bad.eventsFile);
    assert.equal(ofType(refused, 'Analytics.Inference').length, 0);
    const tlsErrors = ofType(refused, 'Diagnostics.ProtocolError');
    assert.ok(tlsErrors.length >= 1 && tlsErrors.every((e) => e.body.protocol === 'tls'), JSON.stringify(tlsErrors.map((e) => e.body)));
    for (const f of [good.eventsFile, bad.eventsFile]) assert.ok(!readFileSync(f, 'utf8').includes('k3y-s3cret'), 'the header value never appears in events');
  });

  test('allowUnsecuredEndpoints false: an http:// extension endpoint is refused before anything runs', async () => {
    await assert.rejects(
      replay({ topology: readSample('topologies/2.0/httpExtension.topology.json'), input: camera, output: tmp(), startTime: START, settings: { allowUnsecuredEndpoints: false },
        params: { rtspUrl: 'rtsps://camera.invalid/x', inferencingUrl: 'http://127.0.0.1:9/score' } }),
      (err: Error & { code?: string }) => /unsecured/i.test(err.message),
    );
  });

  test('deterministic: the same input and extension give the same events', async () => {
    const srv = await startInferenceServer();
    const once = async () => {
      const out = tmp();
      const r = await replay({ topology: readSample('topologies/2.0/httpExtension.topology.json'), input: camera, output: out, startTime: START, params: { rtspUrl: 'rtsp://camera.invalid/x', inferencingUrl: srv.url } });
      return readFileSync(r.eventsFile, 'utf8').split(out).join('<out>');
    };
    const a = await once();
    const b = await once();
    await srv.close();
    assert.equal(a, b);
  });
});

describe('image scale and format produced by ffmpeg', () => {
  const ext = (name: string, image: unknown, url: string) => ({
    '@type': '#Microsoft.Media.MediaGraphHttpExtension', name,
    endpoint: { '@type': '#Microsoft.Media.MediaGraphUnsecuredEndpoint', url: `${url}?ext=${name}` },
    image, samplingOptions: { maximumSamplesPerSecond: '1' },
    inputs: [{ nodeName: 'rtspSource', outputSelectors: [{ property: 'mediaType', operator: 'is', value: 'video' }] }],
  });
  const topology = (url: string, images: Record<string, unknown>) => ({
    '@apiVersion': '2.0', name: 'Formats',
    properties: {
      sources: [{ '@type': '#Microsoft.Media.MediaGraphRtspSource', name: 'rtspSource', endpoint: { '@type': '#Microsoft.Media.MediaGraphUnsecuredEndpoint', url: 'rtsp://camera.invalid/x' } }],
      processors: Object.entries(images).map(([n, i]) => ext(n, i, url)),
      sinks: Object.keys(images).map((n) => ({ '@type': '#Microsoft.Media.MediaGraphIoTHubMessageSink', name: `sink-${n}`, hubOutputName: n, inputs: [{ nodeName: n }] })),
    },
  });
  const raw = (pixelFormat: string) => ({ format: { '@type': '#Microsoft.Media.MediaGraphImageFormatRaw', pixelFormat } });
  const BPP: Record<string, number> = { Rgb565be: 2, Rgb565le: 2, Rgb555be: 2, Rgb555le: 2, Rgb24: 3, Bgr24: 3, Argb: 4, Rgba: 4, Abgr: 4, Bgra: 4 };

  async function run(images: Record<string, unknown>) {
    const received: ReceivedImage[] = [];
    const srv = await startInferenceServer({ onRequest: (q) => received.push(q) });
    const r = await replay({ topology: topology(srv.url, images), input: camera, output: tmp(), startTime: START });
    await srv.close();
    assert.ok(r.ok, r.errors.join('; '));
    const by = new Map<string, ReceivedImage[]>();
    for (const q of received) {
      const n = new URL(q.path, 'http://x').searchParams.get('ext')!;
      by.set(n, [...(by.get(n) ?? []), q]);
    }
    const inf = ofType(events(r.eventsFile), 'Analytics.Inference');
    return { by, inf };
  }

  /** Every extension saw 10 images (1/s over 10 s) and reported RED/BLUE at the frame position. */
  function checkDetections(inf: EventLine[], names: string[]) {
    for (const n of names) {
      const mine = inf.filter((e) => e.output === n);
      assert.deepEqual(mine.map(mediaSeconds), [2, 3, 4, 7, 8], `${n}: detections`);
      for (const e of mine) {
        const obj = mediaSeconds(e) < 6 ? RED : BLUE;
        const b = boxOf(e);
        // Within 1/192 of the analysis grid plus the chroma bleed of small, low-quality JPEGs.
        for (const k of ['l', 't', 'w', 'h'] as const) assert.ok(Math.abs(b[k] - obj.box[k]) <= 0.03, `${n} ${k}: ${b[k]} vs ${obj.box[k]}`);
      }
    }
  }

  test('JPEG (quality, Pad with bars, boxes mapped back to the frame), PNG Stretch, BMP at source size, PreserveAspectRatio by one side', async () => {
    const { by, inf } = await run({
      jpegPad: { scale: { mode: 'Pad', width: '300', height: '300' }, format: { '@type': '#Microsoft.Media.MediaGraphImageFormatJpeg', quality: '30' } },
      jpegHigh: { scale: { mode: 'Pad', width: '300', height: '300' }, format: { '@type': '#Microsoft.Media.MediaGraphImageFormatJpeg', quality: '95' } },
      pngStretch: { scale: { mode: 'Stretch', width: '200', height: '100' }, format: { '@type': '#Microsoft.Media.MediaGraphImageFormatPng' } },
      bmpSource: { format: { '@type': '#Microsoft.Media.MediaGraphImageFormatBmp' } },
      bmpByHeight: { scale: { mode: 'PreserveAspectRatio', height: '90' }, format: { '@type': '#Microsoft.Media.MediaGraphImageFormatBmp' } },
      defaultFormat: { scale: { mode: 'Stretch', width: '64', height: '64' } },
    });
    const expect: Record<string, [string, number, number]> = {
      jpegPad: ['image/jpeg', 300, 300], jpegHigh: ['image/jpeg', 300, 300], pngStretch: ['image/png', 200, 100],
      bmpSource: ['image/bmp', 640, 360], bmpByHeight: ['image/bmp', 160, 90], defaultFormat: ['image/jpeg', 64, 64],
    };
    for (const [n, [type, w, h]] of Object.entries(expect)) {
      const got = by.get(n) ?? [];
      assert.equal(got.length, 10, `${n}: one image per media second`);
      for (const q of got) {
        assert.equal(q.contentType, type, n);
        assert.deepEqual(imageSize(q), { width: w, height: h }, n);
      }
    }
    // Pad: the server saw the object inside the letterboxed picture (y shrunk to 169/300 around the middle)…
    const padded = by.get('jpegPad')!.find((q) => q.inferences.length > 0)!;
    assert.ok(Math.abs(padded.inferences[0]!.entity.box.t - (65 + 0.25 * 169) / 300) < 0.02, JSON.stringify(padded.inferences[0]));
    // …and the published box is on the frame (checked for every extension).
    checkDetections(inf, Object.keys(expect));
    // Lower quality, smaller JPEG.
    const size = (n: string) => by.get(n)!.reduce((s, q) => s + q.body.length, 0);
    assert.ok(size('jpegPad') < size('jpegHigh'), `q30 ${size('jpegPad')} < q95 ${size('jpegHigh')}`);
  });

  test('RAW: all eleven pixel formats, exact buffer sizes, stride and pixel-format headers', async () => {
    const formats = ['Yuv420p', 'Rgb565be', 'Rgb565le', 'Rgb555be', 'Rgb555le', 'Rgb24', 'Bgr24', 'Argb', 'Rgba', 'Abgr', 'Bgra'];
    for (const group of [formats.slice(0, 6), formats.slice(6)]) {
      const images = Object.fromEntries(group.map((f) => [`raw${f}`, { scale: { mode: 'Stretch', width: '160', height: '90' }, ...raw(f) }]));
      const { by, inf } = await run(images);
      for (const f of group) {
        const got = by.get(`raw${f}`) ?? [];
        assert.equal(got.length, 10, f);
        for (const q of got) {
          assert.equal(q.contentType, 'image/x-raw');
          assert.equal(q.headers['x-ms-image-pixel-format'], f.toLowerCase());
          assert.deepEqual(imageSize(q), { width: 160, height: 90 });
          const expected = f === 'Yuv420p' ? 160 * 90 * 1.5 : 160 * 90 * BPP[f]!;
          assert.equal(q.body.length, expected, f);
          assert.equal(Number(q.headers['x-ms-image-stride']), f === 'Yuv420p' ? 160 : 160 * BPP[f]!);
        }
      }
      checkDetections(inf, group.map((f) => `raw${f}`));
    }
  });
});

describe('extension chains and triggers', () => {
  // Both samples record to an asset: a real Blob endpoint (Azurite) as its storage target.
  let azurite: Azurite;
  before(async () => {
    azurite = await startAzurite();
  });
  after(async () => {
    await azurite?.stop();
  });
  const storage = () => ({ assetStorageConnectionString: azurite.connectionString, assetStorageContainerName: 'extension-samples' });
  test('motion-with-httpExtension (unchanged): motion and the extension in parallel on the same decode', async () => {
    const received: ReceivedImage[] = [];
    const srv = await startInferenceServer({ onRequest: (q) => received.push(q) });
    const r = await replay({
      topology: readSample('topologies/2.0/motion-with-httpExtension.topology.json'), input: camera, output: tmp(), startTime: START, settings: storage(),
      params: { rtspUrl: 'rtsp://camera.invalid/x', httpAIServerAddress: srv.url },
    });
    await srv.close();
    assert.ok(r.ok, r.errors.join('; '));
    // ≤ 5/s from the same decode that feeds the motion detector (10/s).
    assert.equal(received.length, 50);
    const inf = ofType(events(r.eventsFile), 'Analytics.Inference');
    const ext = inf.filter((e) => e.applicationProperties.subject.endsWith('/processors/httpExtension'));
    assert.equal(ext.length, 25, '3 s of red + 2 s of blue at 5/s');
    for (const q of received) assert.deepEqual(imageSize(q), { width: 416, height: 234 });
  });

  test('ai-composition shape with HTTP extensions: motion → extension → extension(skipSamplesWithoutAnnotation) → gate + hub sink', async () => {
    // Red on mid-gray: luma differs by ~50, so the motion detector sees it move (green would not).
    const moving: SyntheticObject = { from: 2, to: 4, color: 'red', box: { l: 0.1, t: 0.4, w: 0.12, h: 0.2 }, speed: 0.15 };
    const clip = path.join(tmp(), 'moving.mp4');
    await makeSyntheticCamera({ seconds: 8, fps: 25, size: '640x360', gopSeconds: 1, background: 'gray', motion: [], objects: [moving] }, clip);
    const topology = readSample('topologies/2.0/ai-composition.topology.json');
    // The sample uses gRPC extensions; keep its graph and swap in HTTP extensions (gRPC is not implemented).
    for (const p of topology.properties.processors) {
      if (p['@type'] !== '#Microsoft.Media.MediaGraphGrpcExtension') continue;
      p['@type'] = '#Microsoft.Media.MediaGraphHttpExtension';
      delete p.dataTransfer;
      p.endpoint.url = p.name === 'grpcExtensionSource' ? '${first}' : '${second}';
      if (p.name === 'grpcExtension') p.samplingOptions = { skipSamplesWithoutAnnotation: 'true' };
      // BMP: the reference server reads it without an ffmpeg per request (keeps the test fast).
      p.image.format = { '@type': '#Microsoft.Media.MediaGraphImageFormatBmp' };
    }
    topology.properties.parameters.push({ name: 'first', type: 'String' }, { name: 'second', type: 'String' });
    const received: ReceivedImage[] = [];
    const srv = await startInferenceServer({ onRequest: (q) => received.push(q) });
    const r = await replay({
      topology, input: clip, output: tmp(), startTime: START, settings: storage(),
      params: { rtspUrl: 'rtsp://camera.invalid/x', first: `${srv.url}?stage=1`, second: `${srv.url}?stage=2` },
    });
    await srv.close();
    assert.ok(r.ok, r.errors.join('; '));
    const stage = (n: string) => received.filter((q) => q.path.endsWith(`stage=${n}`));
    // Stage 1 sees only frames with motion; stage 2 only frames stage 1 annotated — every one shows the object.
    // (The detector analyses 10 frames/s: 80 over the clip; motion is reported around the object's 2 s.)
    assert.ok(stage('1').length > 5 && stage('1').length < 80, `stage 1: ${stage('1').length}`);
    const stage1Hits = stage('1').filter((q) => q.inferences.length > 0).length;
    assert.equal(stage('2').length, stage1Hits);
    assert.ok(stage('2').every((q) => q.inferences.length > 0 && q.inferences[0]!.entity.tag.value === 'red'));
    const ev = events(r.eventsFile);
    const second = ofType(ev, 'Analytics.Inference').filter((e) => e.applicationProperties.subject.endsWith('/processors/grpcExtension'));
    assert.equal(second.length, stage1Hits);
    // The second extension's results trigger the gate: one recording starting at the first detection.
    assert.equal(ofType(ev, 'RecordingStarted').length, 1);
  });
});

describe('EVR: RTSP → frame-rate filter → HTTP extension → signal gate → file sink', () => {
  const topology = (url: string) => ({
    '@apiVersion': '1.0', name: 'EvrOnObjects',
    properties: {
      parameters: [{ name: 'inferencingUrl', type: 'String' }],
      sources: [{ '@type': '#Microsoft.Media.MediaGraphRtspSource', name: 'rtspSource', endpoint: { '@type': '#Microsoft.Media.MediaGraphUnsecuredEndpoint', url: 'rtsp://camera.invalid/x' } }],
      processors: [
        { '@type': '#Microsoft.Media.MediaGraphFrameRateFilterProcessor', name: 'frameRateFilter', maximumFps: '4', inputs: [{ nodeName: 'rtspSource' }] },
        {
          '@type': '#Microsoft.Media.MediaGraphHttpExtension', name: 'httpExtension',
          endpoint: { '@type': '#Microsoft.Media.MediaGraphUnsecuredEndpoint', url: '${inferencingUrl}' },
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
  });

  test('records exactly the periods the server reports objects in (first detection → last detection + Tmin)', async () => {
    const srv = await startInferenceServer();
    const r = await replay({ topology: topology(srv.url), input: camera, output: tmp(), startTime: START, params: { inferencingUrl: srv.url } });
    await srv.close();
    assert.ok(r.ok, r.errors.join('; '));
    const ev = events(r.eventsFile);
    const detections = ofType(ev, 'Analytics.Inference').map(mediaSeconds);
    assert.deepEqual(detections, [...sampledTimes(4, 10, RED), ...sampledTimes(4, 10, BLUE)]);
    const periods = [sampledTimes(4, 10, RED), sampledTimes(4, 10, BLUE)];
    const avail = ofType(ev, 'RecordingAvailable');
    assert.equal(avail.length, 2, JSON.stringify(avail.map((e) => e.body)));
    avail.forEach((e, i) => {
      const first = periods[i]![0]!;
      const last = periods[i]!.at(-1)!;
      const requested = (Date.parse(String(e.body.requestedStartTime)) - ZERO) / 1000;
      const start = (Date.parse(String(e.body.startTime)) - ZERO) / 1000;
      const end = (Date.parse(String(e.body.endTime)) - ZERO) / 1000;
      assert.equal(requested, first, 'clip requested from the first detection');
      assert.ok(start <= first && first - start <= 1.0 + 1e-6, `starts on the keyframe at/before it (${start})`);
      assert.ok(Math.abs(end - (last + 1)) <= 0.041, `ends at last detection + Tmin (${end} vs ${last + 1})`);
    });
  });
});

describe('a misbehaving extension never stops the graph', () => {
  const topology = () => readSample('topologies/2.0/httpExtension.topology.json');
  const diag = (ev: EventLine[]) => ofType(ev, 'Diagnostics.ProtocolError').concat(ofType(ev, 'Diagnostics.NetworkError'));

  test('down: NetworkError ConnectionRefused, no inference, replay completes', async () => {
    const r = await replay({ topology: topology(), input: camera, output: tmp(), startTime: START, params: { rtspUrl: 'rtsp://x.invalid/x', inferencingUrl: `http://127.0.0.1:${await freePort()}/score` } });
    assert.ok(r.ok, r.errors.join('; '));
    const ev = events(r.eventsFile);
    assert.equal(ofType(ev, 'Analytics.Inference').length, 0);
    const d = diag(ev);
    assert.ok(d.length >= 1 && d.every((e) => e.body.errorCode === 'ConnectionRefused'), JSON.stringify(d.map((e) => e.body)));
    assert.ok(!JSON.stringify(ev).includes('dummyPassword'), 'credentials never in events');
  });

  test('503 + Retry-After backs off on media time; garbage and slow replies are reported; good replies still flow', async () => {
    // Generous enough for a loaded CI machine; the slow reply takes twice as long.
    process.env.LVA_HTTP_EXTENSION_TIMEOUT_MS = '1500';
    const good = JSON.stringify({ inferences: [{ type: 'entity', entity: { tag: { value: 'thing', confidence: 0.5 }, box: { l: 0.1, t: 0.1, w: 0.1, h: 0.1 } } }] });
    // Request 0: 503 (Retry-After 2) → the next 2 s of media are skipped; 1: garbage; 2: too slow; then good.
    const s = await startLoopbackServer((_req, _b, res, n) => {
      if (n === 0) res.writeHead(503, { 'retry-after': '2' }).end();
      else if (n === 1) res.writeHead(200, { 'content-type': 'application/json' }).end('{"inferences": [{"type": "entity"');
      else if (n === 2) setTimeout(() => res.writeHead(204).end(), 3000);
      else res.writeHead(200, { 'content-type': 'application/json' }).end(good);
    });
    try {
      const r = await replay({ topology: topology(), input: camera, output: tmp(), startTime: START, params: { rtspUrl: 'rtsp://x.invalid/x', inferencingUrl: s.url } });
      assert.ok(r.ok, r.errors.join('; '));
      const ev = events(r.eventsFile);
      assert.deepEqual(diag(ev).map((e) => e.body.errorCode), ['503', 'InvalidJson', 'Timeout']);
      const inf = ofType(ev, 'Analytics.Inference').map(mediaSeconds);
      // 0.0 → 503; back-off until 2.0; 2.0 garbage; 2.2 timeout; 2.4 … 9.8 good.
      assert.equal(s.requests.length, 3 + inf.length);
      assert.deepEqual(inf.slice(0, 2), [2.4, 2.6]);
      assert.equal(inf.at(-1), 9.8);
    } finally {
      delete process.env.LVA_HTTP_EXTENSION_TIMEOUT_MS;
      await s.close();
    }
  });
});
