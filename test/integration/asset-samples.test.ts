import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ContainerSASPermissions, generateBlobSASQueryParameters, StorageSharedKeyCredential, type ContainerClient } from '@azure/storage-blob';
import { replay } from '../../src/replay.js';
import { LvaError } from '../../src/api/errors.js';
import { AssetSinkNode } from '../../src/nodes/sinks/asset-sink.js';
import type { SegmentMeta } from '../../src/storage/segment-cache.js';
import type { EventLine } from '../../src/runtime/events.js';
import { makeClip, type ClipSpec } from '../helpers/clips.js';
import { readSample } from '../helpers/samples.js';
import { probeClip, videoPacketHashes } from '../helpers/clip-check.js';
import { assertNoLeftoverFfmpeg } from '../helpers/processes.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, listBlobs, startAzurite, type Azurite } from '../helpers/azurite.js';
import { makeTestCa, startFakeAzure, trustCaInProcess, type FakeAzure, type TestCa } from '../helpers/fake-azure.js';

// The three asset-sink samples from lva-samples/topologies/2.0, unchanged, in replay over generated clips:
// against Azurite (direct Blob: connection string, container SAS URL) and against https fakes of Entra ID
// + ARM (Media Services path, whose listContainerSas hands out a real Azurite container SAS).

const START = '2021-03-04T05:06:07Z';
const SECRET = 'not-a-real-secret-0123456789';
const dirs: string[] = [];
const tmp = (p = 'lva-asset-') => {
  const d = mkdtempSync(path.join(os.tmpdir(), p));
  dirs.push(d);
  return d;
};

let azurite: Azurite;
let ca: TestCa;
let fake: FakeAzure;
let untrust: () => void;

/** Cache copies of every segment, captured when the sink finishes it (before upload deletes it). */
let kept: Array<{ copy: string; meta: SegmentMeta; cacheFile: string }> = [];
let keepDir = '';

before(async () => {
  process.env.LVA_ASSET_RETRY_BASE_MS = '100';
  process.env.LVA_ASSET_RETRY_MAX_MS = '500';
  azurite = await startAzurite();
  ca = makeTestCa();
  untrust = trustCaInProcess(ca.caPem);
  fake = await startFakeAzure(ca, {
    tenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47', clientId: '11111111-2222-3333-4444-555555555555', clientSecret: SECRET,
    subscriptionId: 'sub-0001', resourceGroup: 'rg-video', accountName: 'lvaams', azurite,
  });
  AssetSinkNode.hooks.onSegmentClosed = (file, meta) => {
    const copy = path.join(keepDir, `${kept.length}-${meta.name}`);
    copyFileSync(file, copy);
    kept.push({ copy, meta, cacheFile: file });
  };
});

after(async () => {
  AssetSinkNode.hooks.onSegmentClosed = undefined;
  await fake?.stop();
  untrust?.();
  ca?.remove();
  await azurite?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await assertNoLeftoverFfmpeg();
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const byType = (events: EventLine[], name: string) => events.filter((e) => e.applicationProperties.eventType.endsWith(`.${name}`));

async function run(sample: string, spec: ClipSpec, settings: Record<string, unknown>) {
  kept = [];
  keepDir = tmp('lva-asset-keep-');
  const input = await makeClip(spec);
  const out = tmp();
  const r = await replay({ topology: readSample(`topologies/2.0/${sample}.topology.json`), input, output: out, startTime: START, settings, params: { rtspUrl: 'rtsp://unused.invalid/' } });
  const text = readFileSync(r.eventsFile, 'utf8');
  const events = text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as EventLine);
  return { r, input, out, events, text, segments: [...kept] };
}

/**
 * Every segment the sink finished is in the container at `<prefix><name>`, byte-identical to its cache
 * copy (sha256 of the download = of the copy = blob metadata), starts on a keyframe, and nothing else is
 * there; the cache is empty afterwards. Returns the segments in name order.
 */
async function assertUploaded(container: ContainerClient, prefix: string, segments: typeof kept, asset: string) {
  const blobs = await listBlobs(container, prefix);
  const mine = segments.filter((s) => s.meta.asset === asset).sort((a, b) => (a.meta.name < b.meta.name ? -1 : 1));
  assert.ok(mine.length > 0, `segments of ${asset}`);
  assert.deepEqual(blobs.map((b) => b.name), mine.map((s) => `${prefix}${s.meta.name}`), 'blobs = segments, in name (= time) order');
  for (const [i, b] of blobs.entries()) {
    const s = mine[i]!;
    const local = readFileSync(s.copy);
    assert.equal(sha(b.data), sha(local), `${b.name}: byte-identical to the cache copy`);
    assert.equal(b.data.length, s.meta.sizeBytes);
    assert.equal(b.metadata.sha256, s.meta.sha256);
    assert.equal(b.metadata.starttime, s.meta.startTime);
    assert.equal(b.metadata.endtime, s.meta.endTime);
    assert.equal(b.contentType, 'video/mp4');
    const p = probeClip(s.copy);
    assert.ok(p.videoPackets[0]!.keyframe, `${b.name}: starts on a keyframe`);
    assert.match(s.meta.name, /^\d{8}T\d{6}\.\d{3}Z-\d{6}\.mp4$/);
    assert.equal(s.meta.name.slice(0, 20), s.meta.startTime.replace(/[-:]/g, ''), 'name starts with the segment start time');
  }
  for (const s of mine) assert.throws(() => readFileSync(s.cacheFile), /ENOENT/, 'deleted from the cache after upload');
  return mine;
}

function assertRecordingEvents(events: EventLine[], asset: string) {
  for (const name of ['RecordingStarted', 'RecordingStopped', 'RecordingAvailable']) {
    const e = byType(events, name).filter((x) => x.body.outputLocation === asset);
    assert.equal(e.length, 1, `${name} for ${asset}`);
    assert.equal(e[0]!.body.outputType, 'assetName');
    assert.match(e[0]!.applicationProperties.subject, /\/sinks\/assetSink$/);
  }
}

describe('asset sink samples in replay (Azurite + https fakes)', () => {
  test('cvr-asset, direct Blob by connection string: 30 s keyframe-aligned segments that stitch back to the whole stream', async () => {
    const settings = { assetStorageConnectionString: azurite.connectionString, assetStorageContainerName: 'cvr-recordings' };
    const { r, input, events, text, out } = await run('cvr-asset', { seconds: 65, fps: 25, gop: 50, size: '320x240' }, settings);
    assert.ok(r.ok, r.errors.join('; '));
    const asset = 'sampleAsset-CVRToAMSAsset-replay';
    const container = azurite.service().getContainerClient('cvr-recordings');
    const segs = await assertUploaded(container, `${asset}/`, kept, asset);
    assert.equal(segs.length, 3, '65 s in 30 s segments: 30 + 30 + 5');
    assert.deepEqual(segs.map((s) => s.meta.durationSeconds), [30, 30, 5]);
    assert.equal(segs[0]!.meta.startTime, '2021-03-04T05:06:07.000Z');
    assert.equal(segs[1]!.meta.startTime, '2021-03-04T05:06:37.000Z');
    // Stitched in name order the segments are exactly the source's packets: nothing lost, nothing doubled.
    const stitched = segs.flatMap((s) => videoPacketHashes(s.copy));
    assert.deepEqual(stitched, videoPacketHashes(input));
    assertRecordingEvents(events, asset);
    const avail = byType(events, 'RecordingAvailable')[0]!.body;
    assert.equal(avail.blobName, `${asset}/${segs[0]!.meta.name}`);
    assert.equal(avail.container, 'cvr-recordings');
    assert.equal(avail.sha256, segs[0]!.meta.sha256);
    // The cache was re-rooted under the output directory and is empty now.
    const cacheDir = path.join(out, 'var/lib/azuremediaservices/tmp', asset);
    assert.deepEqual(readdirSync(cacheDir), []);
    assert.ok(!text.includes('AccountKey') && !text.includes(AZURITE_KEY), 'no secret in events');
  });

  test('evr-motion-assets, Media Services path (Entra ID + ARM fakes): one asset per activation in its own container', async () => {
    const { r, events, text } = await run('evr-motion-assets', { seconds: 45, fps: 25, gop: 50, size: '320x240', motion: { start: 6, end: 8 } }, fake.settings());
    assert.ok(r.ok, r.errors.join('; '));
    const started = byType(events, 'RecordingStarted');
    assert.equal(started.length, 1);
    const asset = String(started[0]!.body.outputLocation);
    assert.match(asset, /^sampleAssetFromEVR-LVAEdge-20210304T0506(1[2-4])Z$/);
    const containerName = fake.assets.get(asset);
    assert.ok(containerName, `asset ${asset} created through ARM`);
    const segs = await assertUploaded(azurite.service().getContainerClient(containerName), '', kept, asset);
    assert.ok(segs.length >= 1 && segs.length <= 2, `${segs.length} segments`);
    const total = segs.reduce((n, s) => n + s.meta.durationSeconds, 0);
    assert.ok(total >= 30 && total <= 32 + 0.1, `recording spans the 30 s activation plus pre-roll (${total} s)`);
    assertRecordingEvents(events, asset);
    const stopped = byType(events, 'RecordingStopped')[0]!.body;
    assert.equal(stopped.segmentCount, segs.length);
    assert.ok(Number(stopped.preRollSeconds) >= 0);
    assert.equal(byType(events, 'RecordingAvailable')[0]!.body.storageAccountName, AZURITE_ACCOUNT);
    // The credential got a token with the client secret, and ARM saw the asset calls with it.
    assert.ok(fake.tokensIssued >= 1);
    assert.deepEqual([...new Set(fake.scopes)], ['https://management.core.windows.net/.default']);
    assert.ok(fake.requests.some((q) => q.startsWith('PUT ') && q.endsWith(`/assets/${asset}`)));
    assert.ok(fake.requests.some((q) => q.endsWith(`/assets/${asset}/listContainerSas`)));
    assert.ok(!text.includes(SECRET) && !text.includes('sig='), 'no secret or SAS in events');
  });

  test('evr-motion-assets-files, direct Blob by container SAS URL: asset segments hold exactly the file sink clip', async () => {
    const containerName = 'evr-sas';
    await azurite.service().getContainerClient(containerName).createIfNotExists();
    const sas = generateBlobSASQueryParameters({ containerName, permissions: ContainerSASPermissions.parse('racwl'), expiresOn: new Date(Date.now() + 3600_000) },
      new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY)).toString();
    const sasUrl = `${azurite.blobEndpoint}/${containerName}?${sas}`;
    const { r, events, text } = await run('evr-motion-assets-files', { seconds: 45, fps: 25, gop: 50, size: '320x240', motion: { start: 6, end: 8 } },
      { assetStorageContainerSasUrl: sasUrl });
    assert.ok(r.ok, r.errors.join('; '));
    const asset = String(byType(events, 'RecordingStarted').find((e) => e.body.outputType === 'assetName')!.body.outputLocation);
    const segs = await assertUploaded(azurite.service().getContainerClient(containerName), `${asset}/`, kept, asset);
    assertRecordingEvents(events, asset);
    const clip = byType(events, 'RecordingAvailable').find((e) => e.body.outputType === 'filePath');
    assert.ok(clip, 'the file sink recorded the same activation');
    assert.deepEqual(segs.flatMap((s) => videoPacketHashes(s.copy)), videoPacketHashes(String(clip.body.outputLocation)),
      'segments stitched = the file sink clip, packet for packet');
    assert.ok(!text.includes(sas) && !text.includes('sig='), 'no SAS in events');
  });

  test('without a storage target, a graph with an asset sink is refused: 400 ModuleValidationError naming the settings', async () => {
    const input = await makeClip({ seconds: 2, fps: 25, size: '320x240' });
    await assert.rejects(
      replay({ topology: readSample('topologies/2.0/cvr-asset.topology.json'), input, output: tmp(), params: { rtspUrl: 'rtsp://unused.invalid/' },
        settings: { azureMediaServicesArmId: fake.armId, aadServicePrincipalSecret: SECRET } }),
      (err: unknown) => {
        assert.ok(err instanceof LvaError);
        assert.equal(err.status, 400);
        assert.equal(err.detailCode, 'ModuleValidationError');
        for (const k of ['assetStorageConnectionString', 'assetStorageContainerSasUrl', 'aadTenantId', 'aadServicePrincipalAppId']) assert.match(err.message, new RegExp(k));
        assert.doesNotMatch(err.message, new RegExp(SECRET));
        return true;
      });
  });
});
