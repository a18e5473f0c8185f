import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Daemon } from '../../src/daemon.js';
import { HubModule } from '../../src/hub/hub-module.js';
import type { EventLine } from '../../src/runtime/events.js';
import { createLogger } from '../../src/util/logger.js';
import { startHubEnv, type HubEnv, type MethodResponse } from '../helpers/hub-sim.js';
import { startRtspServer, type RtspTestServer } from '../helpers/rtsp-server.js';
import { readSample } from '../helpers/samples.js';
import { probeClip } from '../helpers/clip-check.js';
import { assertNoLeftoverFfmpeg } from '../helpers/processes.js';

// End to end through IoT Edge: evr-hubMessage-files (unchanged) driven by direct methods over MQTT, an
// input message on `recordingTrigger` opens the signal gate, a clip is written, and every event the
// daemon produced for an output reaches the hub simulator with its output name, properties and body.
describe('evr-hubMessage-files driven through the IoT Edge hub', () => {
  let env: HubEnv;
  let rtsp: RtspTestServer;
  let hub: HubModule;
  let daemon: Daemon;
  let dir: string;
  const lines: EventLine[] = [];
  const topology = readSample('topologies/2.0/evr-hubMessage-files.topology.json');
  const sampleUrl = topology.properties.sources[0].endpoint.url as string;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lva-hub-rec-'));
    rtsp = await startRtspServer();
    env = await startHubEnv({
      applicationDataDirectory: path.join(dir, 'state'),
      outputRootDirectory: path.join(dir, 'media'),
      endpointAliases: { [sampleUrl]: rtsp.url('/test') },
      operationalEventsOutputName: 'AmsOperational',
      diagnosticsEventsOutputName: 'AmsDiagnostics',
    });
    const log = createLogger(process.stderr, (process.env.LVA_TEST_LOG as never) ?? 'silent');
    hub = new HubModule({ credentials: { kind: 'connectionString', connectionString: env.connectionString, ca: env.certs.ca }, log, maxRetryDelayMs: 500 });
    daemon = new Daemon({ settings: await hub.connect(), http: null, log });
    daemon.bus.subscribe((l) => lines.push(l));
    await hub.start(daemon);
  });

  after(async () => {
    await hub?.stop();
    await daemon?.stop();
    await env?.close();
    await rtsp?.stop();
    rmSync(dir, { recursive: true, force: true });
    await assertNoLeftoverFfmpeg();
  });

  const call = async (method: string, payload: Record<string, unknown>): Promise<MethodResponse> => {
    const r = await env.sim.invoke(method, { '@apiVersion': '2.0', ...payload });
    assert.notEqual(r, 'timeout', `${method}: no reply`);
    return r as MethodResponse;
  };
  const type = (suffix: string) => (e: { applicationProperties: Record<string, string> }) => e.applicationProperties.eventType?.endsWith(`.${suffix}`) ?? false;

  test('a trigger message on recordingTrigger records a clip; every output event reaches the hub intact', async () => {
    assert.equal((await call('GraphTopologySet', topology)).status, 201);
    const set = await call('GraphInstanceSet', {
      name: 'hub1', properties: { topologyName: topology.name, parameters: [{ name: 'rtspUrl', value: 'rtsp://unused.invalid/x' }] },
    });
    assert.equal(set.status, 201, JSON.stringify(set.payload));
    assert.deepEqual(await call('GraphInstanceActivate', { name: 'hub1' }), { status: 200, payload: null });
    const session = await env.sim.waitForEvent(type('MediaSessionEstablished'), 30_000, 'MediaSessionEstablished');
    assert.equal(session.output, 'AmsDiagnostics');
    assert.equal(session.applicationProperties.subject, '/graphInstances/hub1/sources/rtspSource');
    assert.match(String(session.body.sdp), /^SDP:\n/);
    // Let the pre-roll buffer fill, then trigger "now" through the hub.
    await new Promise((r) => setTimeout(r, 3000));
    env.sim.sendInput('recordingTrigger', { reason: 'doorbell' }, { eventTime: new Date().toISOString() });
    const started = await env.sim.waitForEvent(type('RecordingStarted'), 30_000, 'RecordingStarted');
    assert.equal(started.output, 'AmsOperational');
    assert.equal(started.applicationProperties.subject, '/graphInstances/hub1/sinks/fileSink');
    assert.equal(started.body.outputType, 'filePath');
    const avail = await env.sim.waitForEvent(type('RecordingAvailable'), 30_000, 'RecordingAvailable');
    const file = avail.body.outputLocation as string;
    assert.ok(file.startsWith(path.join(dir, 'media')), file);
    assert.ok(existsSync(file), file);
    assert.match(file, /sampleFilesFromEVR-\d{8}T\d{6}Z\.mp4$/);
    const probe = probeClip(file);
    assert.equal(probe.video.codec, 'h264');
    assert.ok(probe.videoPackets[0]!.keyframe, 'clip starts on a keyframe');
    assert.ok(probe.durationSeconds > 0);
    assert.deepEqual(await call('GraphInstanceDeactivate', { name: 'hub1' }), { status: 200, payload: null });

    // Every event the daemon routed to an output arrived, in order, with the same output, properties, body.
    const routed = () => lines.filter((l) => l.output !== null);
    await env.sim.waitUntil(() => env.sim.events.length >= routed().length, 30_000, 'all routed events at the hub');
    const expected = routed();
    assert.ok(expected.length >= 4, `events: ${expected.map((l) => l.applicationProperties.eventType).join(', ')}`);
    assert.equal(env.sim.events.length, expected.length);
    expected.forEach((l, i) => {
      const got = env.sim.events[i]!;
      assert.equal(got.output, l.output, `event ${i} output`);
      assert.deepEqual(got.applicationProperties, { ...l.applicationProperties }, `event ${i} application properties`);
      assert.deepEqual(got.body, JSON.parse(JSON.stringify(l.body)), `event ${i} body`);
      assert.equal(got.contentType, 'application/json');
      assert.equal(got.contentEncoding, 'utf-8');
      assert.ok(got.messageId.length > 0);
    });
    assert.equal(new Set(env.sim.events.map((e) => e.messageId)).size, env.sim.events.length, 'message ids are unique');
    assert.equal(env.sim.events.filter(type('RecordingStopped')).length, 1);
  });
});
