import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { startDaemon, stopAllDaemons, tempDir } from '../helpers/daemon.js';
import { startRtspServer, type RtspTestServer } from '../helpers/rtsp-server.js';
import { startAzurite, listBlobs, type Azurite } from '../helpers/azurite.js';
import { readSample } from '../helpers/samples.js';
import { assertNoLeftoverFfmpeg } from '../helpers/processes.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(p);
    }
  };
  try {
    walk(dir);
  } catch {
    /* not created yet */
  }
  return out;
}

// cvr-asset (unchanged) records continuously in 30 s segments. Storage is down, the daemon is
// SIGKILLed with a finished segment and a half-written one in the cache; after storage and the daemon
// come back, both are uploaded byte-identical.
describe('asset sink: daemon SIGKILLed with segments pending', () => {
  let rtsp: RtspTestServer | undefined;
  let azurite: Azurite | undefined;
  const dir = tempDir('lva-asset-crash-');
  after(async () => {
    await stopAllDaemons();
    await rtsp?.stop();
    await azurite?.stop();
    rmSync(dir, { recursive: true, force: true });
    await assertNoLeftoverFfmpeg();
  });

  test('pending segments (finished and partial) are uploaded after the restart', async () => {
    rtsp = await startRtspServer();
    azurite = await startAzurite();
    await azurite.stop(); // storage is unreachable from the start
    const topology = readSample('topologies/2.0/cvr-asset.topology.json');
    const state = path.join(dir, 'state');
    const media = path.join(dir, 'media');
    const config = { applicationDataDirectory: state, outputRootDirectory: media, assetStorageConnectionString: azurite.connectionString };
    let d = await startDaemon({ dataDir: state, config });
    assert.equal((await d.call('GraphTopologySet', topology)).status, 201);
    const set = await d.call('GraphInstanceSet', { '@apiVersion': '2.0', name: 'cvr1', properties: { topologyName: topology.name, parameters: [{ name: 'rtspUrl', value: rtsp.url('/test') }] } });
    assert.equal(set.status, 201, JSON.stringify(set.payload));
    assert.equal((await d.call('GraphInstanceActivate', { '@apiVersion': '2.0', name: 'cvr1' })).status, 200);
    // Wait for the first 30 s segment to be finished in the cache, then a little into the next one.
    const cache = path.join(media, 'var', 'lib', 'azuremediaservices', 'tmp');
    const deadline = Date.now() + 60_000;
    while (!filesUnder(cache).some((f) => f.endsWith('.mp4')) && Date.now() < deadline) await sleep(500);
    assert.ok(filesUnder(cache).some((f) => f.endsWith('.mp4')), `a finished segment in ${cache}: ${filesUnder(cache).join(', ')}`);
    await sleep(3000);
    const pending = filesUnder(cache).filter((f) => /\.mp4(\.partial)?$/.test(f));
    assert.ok(pending.some((f) => f.endsWith('.partial')), `a segment being written: ${pending.join(', ')}`);
    await d.kill('SIGKILL');

    await azurite.restart();
    d = await startDaemon({ dataDir: state, config });
    // The instance comes back Active and the leftovers go up first.
    assert.equal((await d.call('GraphInstanceGet', { '@apiVersion': '2.0', name: 'cvr1' })).payload.properties.state, 'Active');
    const containers = async () => {
      const out: string[] = [];
      for await (const c of azurite!.service().listContainers()) out.push(c.name);
      return out;
    };
    let blobs: Awaited<ReturnType<typeof listBlobs>> = [];
    const until = Date.now() + 60_000;
    while (Date.now() < until) {
      const names = await containers().catch(() => [] as string[]);
      blobs = [];
      for (const c of names) blobs.push(...(await listBlobs(azurite.service().getContainerClient(c))));
      if (blobs.length >= 2) break;
      await sleep(1000);
    }
    assert.ok(blobs.length >= 2, `both pending segments uploaded (got ${blobs.map((b) => b.name).join(', ')})`);
    for (const b of blobs) {
      assert.equal(createHash('sha256').update(b.data).digest('hex'), b.metadata.sha256, `${b.name} is byte-identical to the cached segment`);
      assert.ok(b.name.startsWith('sampleAsset-CVRToAMSAsset-cvr1/'), b.name);
    }
    // Nothing uploaded is left in the cache; what remains there is the segment being recorded now.
    const left = filesUnder(cache).filter((f) => f.endsWith('.mp4') && statSync(f).size > 0);
    assert.ok(left.length <= 1, `cache holds only the current segment: ${left.join(', ')}`);
    assert.equal((await d.call('GraphInstanceDeactivate', { '@apiVersion': '2.0', name: 'cvr1' })).status, 200);
    assert.equal(await d.stop(), 0);
  });
});
