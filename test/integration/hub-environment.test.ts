import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Daemon } from '../../src/daemon.js';
import { hubCredentialsFrom } from '../../src/hub/hub-connection.js';
import { HubModule } from '../../src/hub/hub-module.js';
import { createLogger } from '../../src/util/logger.js';
import { startHubEnv, type HubEnv, type MethodResponse } from '../helpers/hub-sim.js';

// The real IoT Edge path: `ModuleClient.fromEnvironment(Mqtt)` with IOTEDGE_* variables, against a fake
// IoT Edge workload API on a unix socket (trust bundle + HMAC signing), as iotedged provides it.
// This file sets process.env, so it runs in its own process (node --test runs one process per file).

describe('IoT Edge environment (fromEnvironment + fake workload API)', () => {
  let env: HubEnv;
  let dir: string;
  let workload: http.Server;
  let hub: HubModule;
  let daemon: Daemon;
  const requests: Array<{ method: string; url: string; body: any }> = [];
  const key = Buffer.from('0123456789abcdef0123456789abcdef');

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lva-hub-env-'));
    env = await startHubEnv({ applicationDataDirectory: path.join(dir, 'state'), operationalEventsOutputName: 'ops' });
    const socket = path.join(dir, 'workload.sock');
    workload = http.createServer((req, res) => {
      let text = '';
      req.on('data', (c) => (text += c));
      req.on('end', () => {
        const body = text ? JSON.parse(text) : undefined;
        requests.push({ method: req.method!, url: req.url!, body });
        // The SDK needs Content-Type: application/json on every workload API response.
        res.setHeader('content-type', 'application/json');
        if (req.method === 'GET' && req.url!.startsWith('/trust-bundle?')) {
          res.end(JSON.stringify({ certificate: env.certs.ca }));
        } else if (req.method === 'POST' && req.url!.startsWith(`/modules/${env.moduleId}/genid/gen1/sign?`)) {
          const digest = createHmac('sha256', key).update(Buffer.from(body.data, 'base64')).digest('base64');
          res.end(JSON.stringify({ digest }));
        } else {
          res.statusCode = 404;
          res.end(JSON.stringify({ message: 'not found' }));
        }
      });
    });
    await new Promise<void>((resolve) => workload.listen(socket, resolve));
    for (const k of Object.keys(process.env)) if (k.startsWith('IOTEDGE_') || k === 'EdgeHubConnectionString') delete process.env[k];
    Object.assign(process.env, {
      IOTEDGE_WORKLOADURI: `unix://${socket}`,
      IOTEDGE_DEVICEID: env.deviceId,
      IOTEDGE_MODULEID: env.moduleId,
      IOTEDGE_IOTHUBHOSTNAME: 'lva-test-hub.azure-devices.net',
      IOTEDGE_GATEWAYHOSTNAME: env.broker.host,
      IOTEDGE_AUTHSCHEME: 'sasToken',
      IOTEDGE_MODULEGENERATIONID: 'gen1',
    });
  });

  after(async () => {
    await hub?.stop();
    await daemon?.stop();
    await env?.close();
    await new Promise<void>((resolve) => workload?.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  test('connects with the workload API\'s trust bundle and signatures, then serves methods and events', async () => {
    const credentials = hubCredentialsFrom({ env: process.env });
    assert.deepEqual(credentials, { kind: 'environment' });
    hub = new HubModule({ credentials: credentials!, log: createLogger(undefined, 'silent'), maxRetryDelayMs: 500 });
    const settings = await hub.connect();
    assert.equal(settings.applicationDataDirectory, path.join(dir, 'state'));
    daemon = new Daemon({ settings, http: null, log: createLogger(undefined, 'silent') });
    await hub.start(daemon);

    assert.ok(requests.some((r) => r.method === 'GET' && r.url === '/trust-bundle?api-version=2018-06-28'), 'trust bundle fetched');
    const sign = requests.find((r) => r.method === 'POST' && r.url.includes('/sign?'));
    assert.ok(sign, 'SAS token signed by the workload API');
    assert.equal(sign.body.keyId, 'primary');
    assert.equal(sign.body.algo, 'HMACSHA256');
    assert.ok(env.broker.connects.includes(`${env.deviceId}/${env.moduleId}`));

    const r = (await env.sim.invoke('GraphTopologyList', { '@apiVersion': '2.0' })) as MethodResponse;
    assert.deepEqual(r, { status: 200, payload: { value: [] } });
    daemon.bus.publish({ eventClass: 'Operational', name: 'RecordingStarted', subject: '/graphInstances/g/sinks/s', body: { n: 1 } });
    const e = await env.sim.waitForEvent((x) => x.body?.n === 1, 30_000, 'event');
    assert.equal(e.output, 'ops');
  });

  test('credential selection: flag, then EdgeHubConnectionString, then the IoT Edge environment', () => {
    assert.equal(hubCredentialsFrom({ env: {} }), null);
    assert.deepEqual(hubCredentialsFrom({ connectionString: 'HostName=h;DeviceId=d;ModuleId=m;SharedAccessKey=k', env: { IOTEDGE_WORKLOADURI: 'unix:///x', IOTEDGE_DEVICEID: 'd', IOTEDGE_MODULEID: 'm' } }),
      { kind: 'connectionString', connectionString: 'HostName=h;DeviceId=d;ModuleId=m;SharedAccessKey=k' });
    assert.deepEqual(hubCredentialsFrom({ env: { EdgeHubConnectionString: 'cs', EdgeModuleCACertificateFile: env.certs.caFile } }),
      { kind: 'connectionString', connectionString: 'cs', ca: env.certs.ca });
  });
});
