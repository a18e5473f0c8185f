import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { startDaemon, stopAllDaemons, tempDir } from '../helpers/daemon.js';
import { startRtspServer, type RtspTestServer } from '../helpers/rtsp-server.js';
import { readSample } from '../helpers/samples.js';
import { probeClip } from '../helpers/clip-check.js';
import { assertNoLeftoverFfmpeg } from '../helpers/processes.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Collects the daemon's SSE event stream (GET /v1/events). */
function subscribe(url: string): { events: any[]; close(): void } {
  const events: any[] = [];
  const req = http.get(`${url}/v1/events`, (res) => {
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => {
      buf += c;
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const msg = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = msg.split('\n').find((l) => l.startsWith('data: '));
        if (data) events.push(JSON.parse(data.slice(6)));
      }
    });
  });
  req.on('error', () => {});
  return { events, close: () => req.destroy() };
}

async function until<T>(fn: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('daemon killed mid-recording (standalone, over the public interfaces)', () => {
  let rtsp: RtspTestServer | undefined;
  const dataDir = tempDir('lva-crash-');
  after(async () => {
    await stopAllDaemons();
    await rtsp?.stop();
    rmSync(dataDir, { recursive: true, force: true });
    await assertNoLeftoverFfmpeg();
  });

  test('the partial clip plays, is finished at restart, and the instance is Active again', async () => {
    rtsp = await startRtspServer();
    const topology = readSample('topologies/2.0/evr-hubMessage-files.topology.json');
    // Long clip so the kill lands mid-recording: Tmin = Tmax = 30 s.
    topology.properties.processors[0].minimumActivationTime = 'PT30S';
    topology.properties.processors[0].maximumActivationTime = 'PT30S';
    const media = path.join(dataDir, 'media');
    const config = {
      applicationDataDirectory: path.join(dataDir, 'state'),
      outputRootDirectory: media,
      endpointAliases: { [topology.properties.sources[0].endpoint.url]: rtsp.url('/test') },
    };
    let d = await startDaemon({ dataDir: path.join(dataDir, 'state'), config });
    const sse = subscribe(d.url);
    try {
      assert.equal((await d.call('GraphTopologySet', topology)).status, 201);
      assert.equal((await d.call('GraphInstanceSet', { '@apiVersion': '2.0', name: 'crash1', properties: { topologyName: topology.name, parameters: [{ name: 'rtspUrl', value: 'rtsp://x.invalid/' }] } })).status, 201);
      assert.equal((await d.call('GraphInstanceActivate', { '@apiVersion': '2.0', name: 'crash1' })).status, 200);
      await until(() => sse.events.find((e) => e.applicationProperties.eventType.endsWith('MediaSessionEstablished')), 20_000, 'the camera session');
      await sleep(2500);
      // The trigger goes through the local API, as a standalone user's script would send it.
      const r = await d.request('POST', '/v1/inputs/recordingTrigger', {
        body: JSON.stringify({ body: { door: 'front' }, applicationProperties: { eventTime: new Date().toISOString() } }),
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(r.status, 202);
      assert.deepEqual(JSON.parse(r.text), { delivered: 1 });
      const started = await until(() => sse.events.find((e) => e.applicationProperties.eventType.endsWith('RecordingStarted')), 15_000, 'RecordingStarted over SSE');
      assert.equal(started.output, null, 'no operational output configured: SSE still carries it, with output null');
      await sleep(4000);
      const metrics = (await d.request('GET', '/metrics')).text;
      assert.match(metrics, /^lva_active_graph_instances 1$/m);
      const bytes = /^lva_received_bytes_total\{graph_instance="crash1",graph_node="rtspSource"\} (\d+)$/m.exec(metrics);
      assert.ok(bytes && Number(bytes[1]) > 0, 'bytes received from the camera are counted');
      assert.match(metrics, /^lva_node_counter\{graph_instance="crash1",graph_node="signalGateProcessor",counter="activations"\} 1$/m);
    } finally {
      sse.close();
    }
    await d.kill('SIGKILL');
    const dir = path.join(media, 'var', 'media');
    const partials = readdirSync(dir).filter((f) => f.endsWith('.mp4.partial'));
    assert.equal(partials.length, 1, `files: ${readdirSync(dir).join(', ')}`);
    const partial = path.join(dir, partials[0]!);
    const p = probeClip(partial);
    assert.ok(p.videoPackets[0]!.keyframe);
    assert.ok(p.durationSeconds >= 2, `the crash kept ${p.durationSeconds} s of the clip`);

    // Restart on the same state: the instance comes back Active and the clip is finished.
    d = await startDaemon({ dataDir: path.join(dataDir, 'state'), config });
    // Instances that were Active are re-activated before the daemon reports ready.
    const get = await d.call('GraphInstanceGet', { '@apiVersion': '2.0', name: 'crash1' });
    assert.equal(get.payload.properties.state, 'Active');
    const finished = partial.slice(0, -'.partial'.length);
    await until(() => existsSync(finished) || undefined, 10_000, 'the recovered clip');
    assert.ok(!existsSync(partial), 'the .partial is gone');
    const q = probeClip(finished);
    assert.ok(q.videoPackets[0]!.keyframe);
    assert.ok(Math.abs(q.durationSeconds - p.durationSeconds) < 1.5, `recovered ${q.durationSeconds} s vs partial ${p.durationSeconds} s`);
    assert.equal((await d.call('GraphInstanceDeactivate', { '@apiVersion': '2.0', name: 'crash1' })).status, 200);
    assert.equal(await d.stop(), 0);
  });
});
