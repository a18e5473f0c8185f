import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Daemon } from '../../src/daemon.js';
import { HubModule } from '../../src/hub/hub-module.js';
import { createLogger } from '../../src/util/logger.js';
import { startHubEnv, type HubEnv, type MethodResponse } from '../helpers/hub-sim.js';

// edgeHub outages: the broker is stopped (every connection closed, port refused) while events are
// produced, then started again. The module must reconnect by itself, send what it buffered in order,
// and, with a small buffer, drop the oldest events and say so with a DataDropped diagnostics event.

/** The outage: edgeHub gone for 30 s mid-run. */
const OUTAGE_MS = 30_000;
/** The tiny-buffer case only needs the broker away long enough to overflow a 5-event buffer. */
const SHORT_OUTAGE_MS = 3000;

async function startModule(env: HubEnv, dir: string, outputBufferEvents?: number) {
  const log = createLogger(process.stderr, (process.env.LVA_TEST_LOG as never) ?? 'silent');
  const hub = new HubModule({
    credentials: { kind: 'connectionString', connectionString: env.connectionString, ca: env.certs.ca },
    log, maxRetryDelayMs: 500, outputBufferEvents,
  });
  const daemon = new Daemon({ settings: await hub.connect(), http: { host: '127.0.0.1', port: 0 }, log });
  await hub.start(daemon);
  return { hub, daemon };
}

function publishSeq(daemon: Daemon, seq: number): void {
  daemon.bus.publish({ eventClass: 'Operational', name: 'RecordingStarted', subject: '/graphInstances/g/sinks/s', body: { seq } });
}

const seqs = (env: HubEnv) => env.sim.events.filter((e) => typeof e.body?.seq === 'number').map((e) => e.body.seq as number);

describe('edgeHub outage with room in the buffer', () => {
  let env: HubEnv;
  let dir: string;
  let hub: HubModule;
  let daemon: Daemon;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lva-hub-out-'));
    env = await startHubEnv({ applicationDataDirectory: path.join(dir, 'state'), operationalEventsOutputName: 'ops', diagnosticsEventsOutputName: 'diag' });
    ({ hub, daemon } = await startModule(env, dir));
  });
  after(async () => {
    await hub?.stop();
    await daemon?.stop();
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('broker stopped for 30 s mid-run: events produced while it is down arrive in order after it comes back; methods keep working locally', async () => {
    for (let i = 1; i <= 3; i++) publishSeq(daemon, i);
    await env.sim.waitUntil(() => seqs(env).length === 3, 30_000, 'events before the outage');
    const connectsBefore = env.broker.connects.filter((id) => id === `${env.deviceId}/${env.moduleId}`).length;

    await env.broker.stop();
    for (let i = 4; i <= 40; i++) publishSeq(daemon, i);
    // The local API answers while edgeHub is unreachable.
    const res = await fetch(`http://127.0.0.1:${daemon.httpAddress!.port}/v1/methods/GraphTopologyList`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ '@apiVersion': '2.0' }),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 200, payload: { value: [] } });
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    for (let i = 41; i <= 45; i++) publishSeq(daemon, i);
    assert.ok(hub.stats.queued > 0, 'events are waiting for the hub');

    await env.broker.start();
    await env.sim.waitUntil(() => seqs(env).length >= 45, 60_000, 'all 45 events');
    assert.deepEqual(seqs(env), Array.from({ length: 45 }, (_, i) => i + 1), 'every event once, in order');
    assert.equal(hub.stats.dropped, 0);
    const connectsAfter = env.broker.connects.filter((id) => id === `${env.deviceId}/${env.moduleId}`).length;
    assert.ok(connectsAfter > connectsBefore, 'the module reconnected by itself');

    // Direct methods, input messages and desired patches work again after the broker lost every session
    // (once the module has renewed its subscriptions and re-read the twin).
    await env.sim.waitUntil(() => hub.connection.refreshes >= 1 || undefined, 60_000, 'subscriptions renewed');
    const r = (await env.sim.invoke('GraphTopologyList', { '@apiVersion': '2.0' })) as MethodResponse;
    assert.equal(r.status, 200);
    const inputs: unknown[] = [];
    const unlisten = daemon.inputs.listen('in1', (m) => inputs.push(m.body));
    env.sim.sendInput('in1', { after: 'reconnect' });
    await env.sim.waitUntil(() => inputs.length === 1 || undefined, 30_000, 'input message after reconnect');
    unlisten();
    assert.deepEqual(inputs, [{ after: 'reconnect' }]);
    env.sim.patchDesired({ operationalEventsOutputName: 'ops2' });
    await env.sim.waitUntil(() => daemon.currentSettings.operationalEventsOutputName === 'ops2' || undefined, 30_000, 'patch after reconnect');
    publishSeq(daemon, 46);
    const e46 = await env.sim.waitForEvent((e) => e.body?.seq === 46, 30_000, 'event 46');
    assert.equal(e46.output, 'ops2');
  });
});

describe('edgeHub outage with a tiny buffer', () => {
  let env: HubEnv;
  let dir: string;
  let hub: HubModule;
  let daemon: Daemon;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lva-hub-drop-'));
    env = await startHubEnv({ applicationDataDirectory: path.join(dir, 'state'), operationalEventsOutputName: 'ops', diagnosticsEventsOutputName: 'diag' });
    ({ hub, daemon } = await startModule(env, dir, 5));
  });
  after(async () => {
    await hub?.stop();
    await daemon?.stop();
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the oldest events are dropped, counted and reported with a DataDropped diagnostics event', async () => {
    publishSeq(daemon, 0);
    await env.sim.waitUntil(() => seqs(env).length === 1, 30_000, 'event 0');
    await env.broker.stop();
    for (let i = 1; i <= 20; i++) publishSeq(daemon, i);
    await new Promise((r) => setTimeout(r, SHORT_OUTAGE_MS));
    // Event 1 is in flight (the send is retried as it is), 5 wait, 2..15 were dropped.
    assert.equal(hub.stats.dropped, 14);
    await env.broker.start();
    await env.sim.waitUntil(() => seqs(env).includes(20), 60_000, 'event 20');
    assert.deepEqual(seqs(env), [0, 1, 16, 17, 18, 19, 20]);
    const dropped = env.sim.events.filter((e) => e.applicationProperties.eventType === 'Microsoft.Media.Edge.Diagnostics.DataDropped');
    assert.equal(dropped.length, 1);
    const notice = dropped[0]!;
    assert.equal(notice.output, 'diag');
    assert.equal(notice.body.droppedEventCount, 14);
    assert.equal(notice.body.totalDroppedEventCount, 14);
    assert.equal(notice.body.bufferLimit, 5);
    // The notice sits exactly where the gap is: after event 1, before event 16.
    const order = env.sim.events.map((e) => (e === notice ? 'DataDropped' : e.body.seq));
    assert.deepEqual(order, [0, 1, 'DataDropped', 16, 17, 18, 19, 20]);
    await env.sim.waitUntil(() => env.sim.twin.reported.droppedOutputEvents === 14, 30_000, 'drop count in reported properties');
  });
});

describe('edgeHub not up yet when the module starts', () => {
  let env: HubEnv;
  let dir: string;
  let hub: HubModule | undefined;
  let daemon: Daemon | undefined;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lva-hub-late-'));
    env = await startHubEnv({ applicationDataDirectory: path.join(dir, 'state'), operationalEventsOutputName: 'ops' });
  });
  after(async () => {
    await hub?.stop();
    await daemon?.stop();
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('connect() keeps retrying until the broker is there, then reads the twin', async () => {
    await env.broker.stop();
    const log = createLogger(process.stderr, (process.env.LVA_TEST_LOG as never) ?? 'silent');
    hub = new HubModule({ credentials: { kind: 'connectionString', connectionString: env.connectionString, ca: env.certs.ca }, log, maxRetryDelayMs: 500 });
    let connected = false;
    const settingsP = hub.connect().then((s) => {
      connected = true;
      return s;
    });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(connected, false, 'no twin without a broker');
    await env.broker.start();
    const settings = await settingsP;
    assert.equal(settings.applicationDataDirectory, path.join(dir, 'state'));
    daemon = new Daemon({ settings, http: null, log });
    await hub.start(daemon);
    const r = (await env.sim.invoke('GraphInstanceList', { '@apiVersion': '2.0' })) as MethodResponse;
    assert.deepEqual(r, { status: 200, payload: { value: [] } });
  });

  test('stop() while still connecting returns promptly', async () => {
    await env.broker.stop();
    const log = createLogger(undefined, 'silent');
    const late = new HubModule({ credentials: { kind: 'connectionString', connectionString: env.connectionString, ca: env.certs.ca }, log, maxRetryDelayMs: 500 });
    const pending = late.connect();
    await new Promise((r) => setTimeout(r, 500));
    await late.stop();
    await pending; // resolves (with the base settings) instead of waiting for a broker that never comes
    await env.broker.start();
  });
});
