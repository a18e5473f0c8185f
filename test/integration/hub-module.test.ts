import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Daemon } from '../../src/daemon.js';
import { HubModule } from '../../src/hub/hub-module.js';
import { createLogger } from '../../src/util/logger.js';
import { startHubEnv, type HubEnv, type MethodResponse } from '../helpers/hub-sim.js';
import { readSample } from '../helpers/samples.js';
import { assertNoLeftoverFfmpeg } from '../helpers/processes.js';

// The IoT Edge transport against the real azure-iot-device SDK over MQTT/TLS to a real broker (aedes),
// with a hub simulator playing IoT Hub: direct methods, module twin, input messages, output events.

const SECRET = 'sp-secret-value-that-must-not-leak';

function stripSystemData(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v ?? null, (k, val) => (k === 'systemData' ? undefined : val)));
}

describe('IoT Edge module over MQTT (real SDK, aedes, hub simulator)', () => {
  let env: HubEnv;
  let hub: HubModule;
  let daemon: Daemon;
  let reference: Daemon;
  let dir: string;
  let logText = '';
  const topology = readSample('topologies/2.0/evr-hubMessage-files.topology.json');
  const sampleUrl = topology.properties.sources[0].endpoint.url as string;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lva-hub-mod-'));
    env = await startHubEnv({
      applicationDataDirectory: path.join(dir, 'state'),
      operationalEventsOutputName: 'AmsOperational',
      diagnosticsEventsOutputName: 'AmsDiagnostics',
      aadServicePrincipalSecret: SECRET,
      AllowUnsecuredEndpoints: 'true',
      endpointAliases: { [sampleUrl]: 'rtsp://127.0.0.1:1/nothing-listens-here' },
      outputRootDirectory: path.join(dir, 'media'),
    });
    const sink = new Writable({
      write(chunk, _enc, cb) {
        logText += chunk.toString();
        cb();
      },
    });
    const log = createLogger(sink, 'debug');
    hub = new HubModule({
      credentials: { kind: 'connectionString', connectionString: env.connectionString, ca: env.certs.ca },
      log, maxRetryDelayMs: 500, reportIntervalMs: 1000,
    });
    const settings = await hub.connect();
    assert.equal(settings.applicationDataDirectory, path.join(dir, 'state'), 'the twin decides the data directory at start');
    daemon = new Daemon({ settings, http: null, log });
    await hub.start(daemon);
    reference = new Daemon({
      settings: { ...settings, applicationDataDirectory: path.join(dir, 'ref-state') }, http: null, log: createLogger(undefined, 'silent'),
    });
    await reference.start();
  });

  after(async () => {
    if (process.env.LVA_HUB_TEST_LOG_FILE) (await import('node:fs')).writeFileSync(process.env.LVA_HUB_TEST_LOG_FILE, logText);
    await hub?.stop();
    await daemon?.stop();
    await reference?.stop();
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
    await assertNoLeftoverFfmpeg();
  });

  async function both(method: string, payload: unknown): Promise<MethodResponse> {
    const viaHub = await env.sim.invoke(method, payload);
    assert.notEqual(viaHub, 'timeout', `${method} got no reply`);
    const local = await reference.control.invoke(method, payload);
    const r = viaHub as MethodResponse;
    assert.equal(r.status, local.status, `${method}: status over MQTT ${r.status} vs local ${local.status}: ${JSON.stringify(r.payload)}`);
    assert.deepEqual(stripSystemData(r.payload), stripSystemData(local.payload), `${method}: same body as the local API`);
    return r;
  }

  test('reported properties: module version, effective config without secrets, counts', async () => {
    const rep = await env.sim.waitUntil(() => (env.sim.twin.reported.moduleVersion ? env.sim.twin.reported : undefined), 30_000, 'reported properties');
    assert.equal(rep.moduleVersion, '0.1.0');
    const cfg = rep.configuration as Record<string, unknown>;
    assert.equal(cfg.operationalEventsOutputName, 'AmsOperational');
    assert.equal(cfg.allowUnsecuredEndpoints, 'true');
    assert.equal(cfg.aadServicePrincipalSecret, undefined);
    assert.deepEqual(cfg.endpointAliases, { alias1: { from: sampleUrl, to: 'rtsp://127.0.0.1:1/nothing-listens-here' } });
    assert.ok(!JSON.stringify(rep).includes('['), 'no arrays in reported properties (IoT Hub twin rule)');
    assert.equal(rep.graphTopologies, 0);
    assert.equal(rep.graphInstances, 0);
    assert.equal(rep.desiredVersion, 1);
    assert.equal(rep.lastError, undefined);
  });

  test('all ten direct methods over MQTT answer exactly like the local API', async () => {
    const v = { '@apiVersion': '2.0' };
    assert.deepEqual((await both('GraphTopologyList', v)).payload, { value: [] });
    assert.equal((await both('GraphTopologySet', topology)).status, 201);
    assert.equal((await both('GraphTopologySet', topology)).status, 200);
    const got = await both('GraphTopologyGet', { ...v, name: topology.name });
    assert.equal(got.status, 200);
    assert.equal(got.payload.name, topology.name);
    assert.equal((await both('GraphTopologyGet', { ...v, name: 'nope' })).status, 404);
    assert.equal((await both('GraphTopologyList', v)).payload.value.length, 1);
    const instance = { ...v, name: 'hub1', properties: { topologyName: topology.name, parameters: [{ name: 'rtspUrl', value: 'rtsp://unused.invalid/x' }] } };
    const set = await both('GraphInstanceSet', instance);
    assert.equal(set.status, 201);
    assert.equal(set.payload.properties.state, 'Inactive');
    assert.equal((await both('GraphInstanceGet', { ...v, name: 'hub1' })).payload.properties.state, 'Inactive');
    assert.equal((await both('GraphInstanceList', v)).payload.value.length, 1);
    assert.equal((await both('GraphTopologyDelete', { ...v, name: topology.name })).status, 409, 'topology in use');
    assert.deepEqual(await both('GraphInstanceActivate', { ...v, name: 'hub1' }), { status: 200, payload: null });
    assert.equal((await both('GraphInstanceGet', { ...v, name: 'hub1' })).payload.properties.state, 'Active');
    assert.equal((await both('GraphInstanceDelete', { ...v, name: 'hub1' })).status, 409, 'cannot delete an active instance');
    const rep = await env.sim.waitUntil(() => (env.sim.twin.reported.activeGraphInstances === 1 ? env.sim.twin.reported : undefined), 30_000, 'counts in reported properties');
    assert.equal(rep.graphTopologies, 1);
    assert.equal(rep.graphInstances, 1);
    assert.deepEqual(await both('GraphInstanceDeactivate', { ...v, name: 'hub1' }), { status: 200, payload: null });
    assert.deepEqual(await both('GraphInstanceDelete', { ...v, name: 'hub1' }), { status: 200, payload: null });
    assert.equal((await both('GraphInstanceDelete', { ...v, name: 'hub1' })).status, 204);
    assert.equal((await both('GraphTopologyDelete', { ...v, name: topology.name })).status, 200);
    assert.equal((await both('GraphTopologyDelete', { ...v, name: topology.name })).status, 204);
    assert.equal((await both('GraphTopologySet', { '@apiVersion': '9.9', name: 'x', properties: {} })).status, 400);
    await env.sim.waitUntil(() => env.sim.twin.reported.graphTopologies === 0 && env.sim.twin.reported.graphInstances === 0, 30_000, 'counts back to 0');
  });

  test('a method the module does not implement gets no reply (IoT Hub reports a timeout, as with LVA)', async () => {
    assert.equal(await env.sim.invoke('pipelineTopologyList', { '@apiVersion': '2.0' }, 3000), 'timeout');
  });

  test('a payload over IoT Hub\'s 128 KB limit is answered with a clear LVA error', async () => {
    const big = structuredClone(topology);
    big.name = 'big';
    big.properties.description = 'x'.repeat(140 * 1024);
    const r = await env.sim.invoke('GraphTopologySet', big);
    assert.notEqual(r, 'timeout');
    const reply = r as MethodResponse;
    assert.equal(reply.status, 413);
    assert.equal(reply.payload.error.code, 'BadRequest');
    assert.equal(reply.payload.error.details[0].code, 'PayloadTooLarge');
    assert.match(reply.payload.error.message, /limited to 131072 bytes/);
    const get = (await env.sim.invoke('GraphTopologyGet', { '@apiVersion': '2.0', name: 'big' })) as MethodResponse;
    assert.equal(get.status, 404, 'nothing was stored');
  });

  test('input messages reach the graph inputs with body and application properties', async () => {
    const got: Array<{ body: unknown; applicationProperties: Record<string, string> }> = [];
    const unlisten = daemon.inputs.listen('recordingTrigger', (m) => got.push(m));
    try {
      env.sim.sendInput('recordingTrigger', { reason: 'doorbell' }, { eventTime: '2026-01-01T00:00:00.000Z', custom: 'a b&c' });
      env.sim.sendInput('recordingTrigger', 'plain text', {}, 'text/plain');
      await env.sim.waitUntil(() => got.length === 2, 30_000, 'two input messages');
      assert.deepEqual(got[0]!.body, { reason: 'doorbell' });
      assert.deepEqual(got[0]!.applicationProperties, { eventTime: '2026-01-01T00:00:00.000Z', custom: 'a b&c' });
      assert.equal(got[1]!.body, 'plain text');
    } finally {
      unlisten();
    }
  });

  test('desired patches apply live: output names and log level', async () => {
    const publish = (n: number) => daemon.bus.publish({
      eventClass: 'Operational', name: 'RecordingStarted', subject: '/graphInstances/g1/sinks/fileSink',
      body: { outputType: 'filePath', outputLocation: `/var/media/clip-${n}.mp4` },
    });
    publish(1);
    await env.sim.waitForEvent((e) => e.body.outputLocation === '/var/media/clip-1.mp4', 30_000, 'event 1');
    env.sim.patchDesired({ operationalEventsOutputName: 'opsV2', logLevel: 'Verbose' });
    await env.sim.waitUntil(() => (env.sim.twin.reported.configuration as any)?.operationalEventsOutputName === 'opsV2', 30_000, 'config reported');
    assert.equal(daemon.currentSettings.operationalEventsOutputName, 'opsV2');
    assert.equal(daemon.log.level, 'debug');
    assert.equal(env.sim.twin.reported.desiredVersion, env.sim.twin.desired.$version);
    publish(2);
    const e2 = await env.sim.waitForEvent((e) => e.body.outputLocation === '/var/media/clip-2.mp4', 30_000, 'event 2');
    assert.equal(env.sim.events.find((e) => e.body.outputLocation === '/var/media/clip-1.mp4')!.output, 'AmsOperational');
    assert.equal(e2.output, 'opsV2');
    assert.equal(e2.contentType, 'application/json');
    assert.equal(e2.contentEncoding, 'utf-8');
    assert.match(e2.messageId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(e2.applicationProperties.eventType, 'Microsoft.Media.Graph.Operational.RecordingStarted');
    assert.equal(e2.applicationProperties.subject, '/graphInstances/g1/sinks/fileSink');
    assert.equal(e2.applicationProperties.dataVersion, '1.0');
    assert.match(e2.applicationProperties.eventTime!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(e2.applicationProperties.topic);
  });

  test('an invalid patch is rejected whole: last good config stays, reported lastError, RuntimeError event', async () => {
    const before = daemon.currentSettings.operationalEventsOutputName;
    env.sim.patchDesired({ operationalEventsOutputName: 'shouldNotApply', logLevel: 'Loud' });
    const badVersion = env.sim.twin.desired.$version;
    const rep = await env.sim.waitUntil(() => (env.sim.twin.reported.lastError ? env.sim.twin.reported : undefined), 30_000, 'lastError reported');
    const lastError = rep.lastError as any;
    assert.equal(lastError.code, 'InvalidResource');
    assert.match(lastError.message, /Loud/);
    assert.equal(lastError.target, '$.LogLevel');
    assert.equal(lastError.detailCode, 'PropertyValueInvalid');
    assert.equal(lastError.desiredVersion, badVersion);
    assert.equal(daemon.currentSettings.operationalEventsOutputName, before, 'old config stays');
    assert.equal((rep.configuration as any).operationalEventsOutputName, before);
    const err = await env.sim.waitForEvent((e) => e.applicationProperties.eventType === 'Microsoft.Media.Edge.Diagnostics.RuntimeError', 30_000, 'RuntimeError');
    assert.equal(err.output, 'AmsDiagnostics');
    assert.equal(err.body.code, 'InvalidDesiredProperties');
    // Fixing the bad value applies the whole document and clears the error.
    env.sim.patchDesired({ logLevel: 'Warning' });
    await env.sim.waitUntil(() => !('lastError' in env.sim.twin.reported) && (env.sim.twin.reported.configuration as any).logLevel === 'Warning', 30_000, 'error cleared');
    assert.equal(daemon.currentSettings.operationalEventsOutputName, 'shouldNotApply');
    assert.equal(daemon.log.level, 'warn');
  });

  test('secrets appear in no log line, reported property or event', () => {
    const everything = [logText, JSON.stringify(env.sim.twin.reported), JSON.stringify(env.sim.reportedPatches), JSON.stringify(env.sim.events)].join('\n');
    assert.ok(logText.length > 0, 'logs were captured');
    assert.ok(!everything.includes(SECRET), 'service principal secret leaked');
    assert.ok(!everything.includes(env.sharedAccessKey), 'SAS key leaked');
    assert.ok(!everything.includes('SharedAccessKey='), 'connection string leaked');
  });
});
