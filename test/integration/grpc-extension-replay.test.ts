import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { replay } from '../../src/replay.js';
import { makeSyntheticCamera, type SyntheticObject } from '../../src/util/synthetic-camera.js';
import { startGrpcInferenceServer, type ReceivedSample } from '../../src/tools/grpc-inference-server.js';
import type { PbMediaStreamDescriptor } from '../../src/extension/grpc/proto.js';
import { readSample } from '../helpers/samples.js';
import { assertNoLeftoverFfmpeg } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';
import { startAzurite, type Azurite } from '../helpers/azurite.js';
import type { EventLine } from '../../src/runtime/events.js';

// gRPC extension samples, unchanged, over recorded video against the reference gRPC inference
// server (the same blob finder as the HTTP one). Replay waits for every answer: deterministic.

const START = '2021-03-04T05:06:07Z';
const ZERO = Date.parse(START);
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'lva-grpc-'));
  dirs.push(d);
  return d;
};
const shmFiles = () => readdirSync('/dev/shm').filter((f) => f.startsWith('lva-edge-'));
let shmBefore: string[];
before(() => {
  shmBefore = shmFiles();
});
after(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await assertNoLeftoverFfmpeg();
  assert.deepEqual(shmFiles(), shmBefore, 'no shared memory file is left in /dev/shm');
});

const events = (file: string) => readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as EventLine);
const ofType = (ev: EventLine[], suffix: string) => ev.filter((e) => e.applicationProperties.eventType.endsWith(suffix));
const mediaSeconds = (e: EventLine) => (Date.parse(e.applicationProperties.eventTime) - ZERO) / 1000;
const BASIC = 'Basic ' + Buffer.from('dummyUserName:dummyPassword').toString('base64');

const RED: SyntheticObject = { from: 1, to: 2.5, color: 'red', box: { l: 0.25, t: 0.25, w: 0.2, h: 0.3 } };
const BLUE: SyntheticObject = { from: 3, to: 4, color: 'blue', box: { l: 0.6, t: 0.5, w: 0.15, h: 0.25 } };
let camera: string;
before(async () => {
  camera = path.join(tmp(), 'camera.mp4');
  await makeSyntheticCamera({ seconds: 5, fps: 25, size: '640x360', gopSeconds: 1, background: 'gray', motion: [], objects: [RED, BLUE] }, camera);
});

/** Frames (25 fps) at which the object is visible, in seconds. */
function visibleTimes(obj: SyntheticObject, seconds: number, fps = 25): number[] {
  const out: number[] = [];
  for (let n = 0; n < seconds * fps; n++) {
    const t = n / fps;
    if (t >= obj.from - 1e-9 && t < obj.to - 1e-9) out.push(Math.round(t * 1000) / 1000);
  }
  return out;
}

describe('grpcExtensionOpenVINO sample (unchanged): raw bgr24 through 5 MiB of shared memory', () => {
  test('every frame sent by reference, answered and acknowledged; entity inferences where the objects are', async () => {
    const samples: ReceivedSample[] = [];
    const descriptors: Array<{ d: PbMediaStreamDescriptor; auth: unknown }> = [];
    const srv = await startGrpcInferenceServer({
      auth: { username: 'dummyUserName', password: 'dummyPassword' },
      onSample: (s) => samples.push(s), onDescriptor: (d, md) => descriptors.push({ d, auth: md.get('x-ms-authentication')[0] }),
    });
    const r = await replay({
      topology: readSample('topologies/2.0/grpcExtensionOpenVINO.topology.json'), input: camera, output: tmp(), startTime: START,
      params: { rtspUrl: 'rtsp://camera.invalid/x', grpcExtensionAddress: srv.url },
    });
    await srv.close();
    assert.ok(r.ok, r.errors.join('; '));
    assert.equal(descriptors.length, 1, 'one session');
    const d = descriptors[0]!.d;
    assert.equal(descriptors[0]!.auth, BASIC);
    assert.equal(d.graph_identifier?.graph_instance_name, 'replay');
    assert.equal(d.graph_identifier?.graph_node_name, 'grpcExtension');
    assert.equal(d.media_descriptor?.timescale, 90_000);
    const f = d.media_descriptor?.video_frame_sample_format;
    assert.deepEqual({ e: f?.encoding, p: f?.pixel_format, w: f?.dimensions?.width, h: f?.dimensions?.height, s: f?.stride_bytes }, { e: 'RAW', p: 'BGR24', w: 416, h: 416, s: 416 * 3 });
    assert.equal(d.shared_memory_buffer_transfer_properties?.length_bytes, 5 * 1024 * 1024);
    assert.match(d.shared_memory_buffer_transfer_properties?.handle_name ?? '', /^lva-edge-/);
    // No sampling options: every one of the 125 frames, by reference, 416·416·3 bytes each, in order.
    assert.equal(samples.length, 125);
    assert.ok(samples.every((s) => s.transfer === 'sharedMemory' && s.body.length === 416 * 416 * 3));
    assert.deepEqual(samples.map((s) => s.sequenceNumber), samples.map((_, i) => i + 2), 'sequence numbers from 2 (the descriptor is 1)');
    // Timestamps: 90 kHz since the epoch, 3600 ticks apart at 25 fps.
    assert.equal(samples[0]!.timestamp, ZERO * 90);
    assert.equal(samples[10]!.timestamp - samples[9]!.timestamp, 3600);
    const inf = ofType(events(r.eventsFile), 'Analytics.Inference');
    assert.deepEqual(inf.map(mediaSeconds), [...visibleTimes(RED, 5), ...visibleTimes(BLUE, 5)]);
    for (const e of inf) {
      assert.equal(e.applicationProperties.subject, '/graphInstances/replay/processors/grpcExtension');
      assert.equal(e.output, 'iothubsinkoutput');
      const obj = mediaSeconds(e) < 2.75 ? RED : BLUE;
      const i = (e.body.inferences as any[])[0];
      assert.equal(i.type, 'entity');
      assert.equal(i.entity.tag.value, obj.color);
      // Pad: 640x360 letterboxed into 416x416, boxes mapped back to the frame.
      for (const k of ['l', 't', 'w', 'h'] as const) assert.ok(Math.abs(i.entity.box[k] - obj.box[k]) <= 0.02, `${k}: ${i.entity.box[k]} vs ${obj.box[k]}`);
    }
    assert.ok(!readFileSync(r.eventsFile, 'utf8').includes('dummyPassword'));
  });

  test('Embedded mode and extensionConfiguration: bytes inside the messages, the string in the descriptor', async () => {
    const samples: ReceivedSample[] = [];
    const descriptors: PbMediaStreamDescriptor[] = [];
    const srv = await startGrpcInferenceServer({ onSample: (s) => samples.push(s), onDescriptor: (d) => descriptors.push(d) });
    const topology = readSample('topologies/2.0/grpcExtensionOpenVINO.topology.json');
    const ext = topology.properties.processors[0];
    ext.dataTransfer = { mode: 'Embedded' };
    ext.extensionConfiguration = '{"model":"blobs","threshold":0.5}';
    ext.samplingOptions = { maximumSamplesPerSecond: '5' };
    const r = await replay({ topology, input: camera, output: tmp(), startTime: START, params: { rtspUrl: 'rtsp://camera.invalid/x', grpcExtensionAddress: srv.url } });
    await srv.close();
    assert.ok(r.ok, r.errors.join('; '));
    assert.equal(descriptors.length, 1);
    assert.equal(descriptors[0]!.extension_configuration, '{"model":"blobs","threshold":0.5}');
    assert.equal(descriptors[0]!.shared_memory_buffer_transfer_properties, undefined);
    assert.equal(samples.length, 25, '5 s at ≤ 5 samples per second');
    assert.ok(samples.every((s) => s.transfer === 'embedded' && s.body.length === 416 * 416 * 3));
    const inf = ofType(events(r.eventsFile), 'Analytics.Inference');
    assert.equal(inf.length, samples.filter((s) => s.inferences.length > 0).length);
    assert.ok(inf.length >= 10);
  });
});

describe('ai-composition sample (unchanged): motion → gRPC → gRPC → signal gate → asset sink', () => {
  let azurite: Azurite;
  before(async () => {
    azurite = await startAzurite();
  });
  after(async () => {
    await azurite?.stop();
  });

  test('stage 1 sees motion frames, stage 2 sees stage 1 results; inferences published, one recording starts at the first detection', async () => {
    // Red on mid-gray moves: the motion detector sees it.
    const moving: SyntheticObject = { from: 2, to: 4, color: 'red', box: { l: 0.1, t: 0.4, w: 0.12, h: 0.2 }, speed: 0.15 };
    const clip = path.join(tmp(), 'moving.mp4');
    await makeSyntheticCamera({ seconds: 6, fps: 25, size: '640x360', gopSeconds: 1, background: 'gray', motion: [], objects: [moving] }, clip);
    const samples: ReceivedSample[] = [];
    const srv = await startGrpcInferenceServer({ auth: { username: 'dummyUserName', password: 'dummyPassword' }, onSample: (s) => samples.push(s) });
    const r = await replay({
      topology: readSample('topologies/2.0/ai-composition.topology.json'), input: clip, output: tmp(), startTime: START,
      settings: { assetStorageConnectionString: azurite.connectionString, assetStorageContainerName: 'grpc-samples' },
      params: { rtspUrl: 'rtsp://camera.invalid/x', grpcExtensionAddressSource: srv.url, grpcExtensionAddress: srv.url },
    });
    await srv.close();
    assert.ok(r.ok, r.errors.join('; '));
    const stage = (node: string) => samples.filter((s) => s.descriptor.graph_identifier?.graph_node_name === node);
    const first = stage('grpcExtensionSource');
    const second = stage('grpcExtension');
    assert.ok(first.length > 5, `stage 1: ${first.length}`);
    for (const s of [...first, ...second]) {
      assert.equal(s.transfer, 'sharedMemory');
      assert.equal(s.contentType, 'image/jpeg');
      assert.equal(s.descriptor.shared_memory_buffer_transfer_properties?.length_bytes, 75 * 1024 * 1024);
    }
    // Stage 1 gets the motion detector's annotations along with each picture.
    assert.ok(first.every((s) => s.upstream.length > 0 && s.upstream.every((i) => i.type === 'MOTION')));
    // Stage 2 gets every frame stage 1 passed on: those it answered (with or without results).
    assert.equal(second.length, first.length);
    const firstHits = first.filter((s) => s.inferences.length > 0);
    assert.ok(firstHits.length > 0);
    // ... and with each, what stage 1 found (entities) — or nothing.
    for (const s of second) {
      const before = first.find((f) => f.timestamp === s.timestamp)!;
      assert.equal(s.upstream.length, before.inferences.length);
      assert.ok(s.upstream.every((i) => i.type === 'ENTITY' && i.entity?.tag?.value === 'red'));
    }
    const ev = events(r.eventsFile);
    const published = ofType(ev, 'Analytics.Inference').filter((e) => e.applicationProperties.subject.endsWith('/processors/grpcExtension'));
    assert.equal(published.length, second.filter((s) => s.inferences.length > 0).length);
    assert.ok(published.length > 0);
    const started = ofType(ev, 'RecordingStarted');
    assert.equal(started.length, 1, 'the gate opens once (minimum = maximum activation 30 s covers the clip)');
    assert.ok(ofType(ev, 'Diagnostics').length === 0, JSON.stringify(ofType(ev, 'Diagnostics').map((e) => e.body)));
  });
});

describe('a misbehaving gRPC extension never stops the graph', () => {
  test('down for the whole replay: NetworkError diagnostics, no inference, no shared memory left', async () => {
    const r = await replay({
      topology: readSample('topologies/2.0/grpcExtensionOpenVINO.topology.json'), input: camera, output: tmp(), startTime: START,
      params: { rtspUrl: 'rtsp://camera.invalid/x', grpcExtensionAddress: `tcp://127.0.0.1:${await freePort()}` },
    });
    assert.ok(r.ok, r.errors.join('; '));
    const ev = events(r.eventsFile);
    assert.equal(ofType(ev, 'Analytics.Inference').length, 0);
    const d = ofType(ev, 'Diagnostics.NetworkError');
    assert.ok(d.length >= 1, JSON.stringify(ofType(ev, 'Diagnostics').map((e) => e.body)));
    assert.ok(d.every((e) => ['ConnectionRefused', 'Unavailable'].includes(String(e.body.errorCode))), JSON.stringify(d.map((e) => e.body)));
    assert.ok(!JSON.stringify(ev).includes('dummyPassword'));
  });

  test('allowUnsecuredEndpoints false: an Unsecured gRPC endpoint is refused before anything runs', async () => {
    // The camera on a TlsEndpoint, so the refusal is about the extension's endpoint.
    const topology = readSample('topologies/2.0/grpcExtensionOpenVINO.topology.json');
    topology.properties.sources[0].endpoint['@type'] = '#Microsoft.Media.MediaGraphTlsEndpoint';
    await assert.rejects(
      replay({ topology, input: camera, output: tmp(), startTime: START, settings: { allowUnsecuredEndpoints: false },
        params: { rtspUrl: 'rtsps://camera.invalid/x', grpcExtensionAddress: 'tcp://127.0.0.1:9' } }),
      (err: Error) => /unsecured/i.test(err.message) && /grpcExtension/.test(err.message),
    );
  });
});
