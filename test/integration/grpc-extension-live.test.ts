import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRtspServer, type RtspTestServer } from '../helpers/rtsp-server.js';
import { startRecordingHarness, isType, type RecordingHarness } from '../helpers/recording.js';
import { readSample } from '../helpers/samples.js';
import { assertNoLeftoverFfmpeg } from '../helpers/processes.js';
import { makeSyntheticCamera } from '../../src/util/synthetic-camera.js';
import { findFfmpeg } from '../../src/util/executables.js';
import { startGrpcInferenceServer, type GrpcInferenceServer, type ReceivedSample } from '../../src/tools/grpc-inference-server.js';
import { liveFfmpegProcessCount } from '../../src/media/ffmpeg-process.js';

// The grpcExtensionOpenVINO sample, unchanged (raw bgr24 pictures through 5 MiB of shared memory,
// every frame), against a live RTSP camera (GStreamer fixture looping a scene in which a red object
// shows for 3 s of every 6 s) and the reference gRPC server.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dir = mkdtempSync(path.join(os.tmpdir(), 'lva-grpc-live-'));
const shmFiles = () => readdirSync('/dev/shm').filter((f) => f.startsWith('lva-edge-grpc1-'));

describe('gRPC extension sample against a live camera', () => {
  let rtsp: RtspTestServer;
  let h: RecordingHarness;
  let srv: GrpcInferenceServer;
  const samples: ReceivedSample[] = [];
  before(async () => {
    const mp4 = path.join(dir, 'scene.mp4');
    await makeSyntheticCamera({ seconds: 6, fps: 25, size: '640x360', gopSeconds: 1, background: 'gray', motion: [],
      objects: [{ from: 1, to: 4, color: 'red', box: { l: 0.25, t: 0.25, w: 0.2, h: 0.3 } }] }, mp4);
    const ts = path.join(dir, 'scene.ts');
    execFileSync(findFfmpeg(), ['-nostdin', '-loglevel', 'error', '-i', mp4, '-c', 'copy', '-f', 'mpegts', '-y', ts]);
    rtsp = await startRtspServer({ loopFile: ts });
    srv = await startGrpcInferenceServer({ auth: { username: 'dummyUserName', password: 'dummyPassword' }, onSample: (s) => samples.push(s) });
    h = await startRecordingHarness();
  });
  after(async () => {
    await h?.close();
    await rtsp?.stop();
    await srv?.close();
    rmSync(dir, { recursive: true, force: true });
    await assertNoLeftoverFfmpeg();
  });

  test('inference events with the object over shared memory; the /dev/shm file lives exactly as long as the instance', async () => {
    const topology = readSample('topologies/2.0/grpcExtensionOpenVINO.topology.json');
    assert.equal((await h.call('GraphTopologySet', topology)).status, 201);
    const set = await h.call('GraphInstanceSet', {
      name: 'grpc1', properties: { topologyName: topology.name, parameters: [
        { name: 'rtspUrl', value: rtsp.url('/loop') }, { name: 'grpcExtensionAddress', value: srv.url },
      ] },
    });
    assert.equal(set.status, 201, JSON.stringify(set.payload));
    assert.equal((await h.call('GraphInstanceActivate', { name: 'grpc1' })).status, 200);
    await h.waitFor(isType('Inference'), 30_000, 'a first inference');
    assert.equal(shmFiles().length, 1, 'one shared memory file while active');
    await sleep(3000);
    const inf = h.events.filter(isType('Inference'));
    assert.ok(inf.length >= 10, `${inf.length} inference events`);
    for (const e of inf) {
      const i = (e.body.inferences as any[])[0];
      assert.equal(i.entity.tag.value, 'red');
      assert.ok(Math.abs(i.entity.box.l - 0.25) < 0.02 && Math.abs(i.entity.box.t - 0.25) < 0.02, JSON.stringify(i.entity.box));
    }
    assert.ok(samples.length > 0 && samples.every((s) => s.transfer === 'sharedMemory' && s.body.length === 416 * 416 * 3));
    // Live timestamps: 90 kHz since the epoch, near now.
    assert.ok(Math.abs(samples.at(-1)!.timestamp / 90 - Date.now()) < 30_000);
    assert.equal(srv.sessions, 1);
    assert.equal((await h.call('GraphInstanceDeactivate', { name: 'grpc1' })).status, 200);
    assert.deepEqual(shmFiles(), [], 'removed on Deactivate');
    assert.equal(liveFfmpegProcessCount(), 0);
    assert.ok(!JSON.stringify(h.events).includes('dummyPassword'));
  });
});
