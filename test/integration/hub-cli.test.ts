import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { startDaemon, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { startHubEnv, type HubEnv, type MethodResponse } from '../helpers/hub-sim.js';

// `lva-edge run --connection-string …` (the real CLI process): the twin is read at start and wins over
// --config, methods are served over MQTT and the local API alike, SIGTERM exits 0, no secret is printed.
describe('lva-edge run with a module connection string', () => {
  let env: HubEnv;
  let daemon: DaemonHandle;
  let dir: string;

  before(async () => {
    dir = tempDir('lva-hub-cli-');
    env = await startHubEnv({ applicationDataDirectory: path.join(dir, 'twin-state'), operationalEventsOutputName: 'fromTwin' });
    daemon = await startDaemon({
      args: ['--connection-string', env.connectionString],
      env: { EdgeModuleCACertificateFile: env.certs.caFile, LVA_LOG_LEVEL: 'info' },
      config: { operationalEventsOutputName: 'fromConfig', diagnosticsEventsOutputName: 'diagFromConfig', applicationDataDirectory: path.join(dir, 'config-state') },
    });
  });

  after(async () => {
    if (daemon) assert.equal(await daemon.stop(), 0, 'exit code 0 on SIGTERM');
    const output = `${daemon?.stdout() ?? ''}\n${daemon?.stderr() ?? ''}`;
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
    assert.ok(!output.includes(env.sharedAccessKey), 'the SAS key never appears in the output');
  });

  test('the twin wins over --config; methods answer over MQTT and locally', async () => {
    assert.match(daemon.stdout(), /"iotEdge":true/);
    const rep = await env.sim.waitUntil(() => (env.sim.twin.reported.configuration ? env.sim.twin.reported : undefined), 60_000, 'reported properties');
    const cfg = rep.configuration as Record<string, unknown>;
    assert.equal(cfg.operationalEventsOutputName, 'fromTwin');
    assert.equal(cfg.diagnosticsEventsOutputName, 'diagFromConfig');
    assert.equal(cfg.applicationDataDirectory, path.join(dir, 'twin-state'));
    const viaHub = (await env.sim.invoke('GraphTopologyList', { '@apiVersion': '2.0' })) as MethodResponse;
    assert.deepEqual(viaHub, { status: 200, payload: { value: [] } });
    const local = await daemon.call('GraphTopologyList', { '@apiVersion': '2.0' });
    assert.equal(local.status, 200);
    assert.deepEqual(local.payload, viaHub.payload);
  });
});
