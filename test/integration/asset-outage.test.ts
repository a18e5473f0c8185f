import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, createReadStream, mkdtempSync, readdirSync, readFileSync, rmSync, copyFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveSettings } from '../../src/config/settings.js';
import { NodeTypes, type AssetSinkConfig, type ResolvedNode } from '../../src/graph/model.js';
import { parseFmp4Stream } from '../../src/media/fmp4-parser.js';
import { Fmp4Writer } from '../../src/media/fmp4-writer.js';
import type { Sample, TrackInfo } from '../../src/media/sample.js';
import type { NodeContext } from '../../src/nodes/node.js';
import { AssetSinkNode } from '../../src/nodes/sinks/asset-sink.js';
import { InputRouter } from '../../src/runtime/inputs.js';
import { MediaClock } from '../../src/runtime/media-clock.js';
import type { SegmentMeta } from '../../src/storage/segment-cache.js';
import { createLogger } from '../../src/util/logger.js';
import { findFfmpeg } from '../../src/util/executables.js';
import { makeClip } from '../helpers/clips.js';
import { probeClip } from '../helpers/clip-check.js';
import { assertNoLeftoverFfmpeg } from '../helpers/processes.js';
import { listBlobs, startAzurite, type Azurite } from '../helpers/azurite.js';

// The asset sink driven directly (the RTSP source's items, from a real clip) against Azurite that is
// stopped and restarted under it: outages shorter than the cache, longer than the cache, and segments a
// previous run left in the cache. Azurite keeps its data on disk here, so a restart loses nothing.

const START = '2021-03-04T05:06:07Z';
const ASSET = 'camera1';
const CONTAINER = 'outage-recordings';
const dirs: string[] = [];
const tmp = (p = 'lva-asset-outage-') => {
  const d = mkdtempSync(path.join(os.tmpdir(), p));
  dirs.push(d);
  return d;
};
let azurite: Azurite;
let tracks: TrackInfo[] = [];
/** One 30 s loop of the clip (keyframes every 2 s, so a loop is exactly one segment). */
let loop: Sample[] = [];
const LOOP_SECONDS = 30;

before(async () => {
  process.env.LVA_ASSET_RETRY_BASE_MS = '50';
  process.env.LVA_ASSET_RETRY_MAX_MS = '300';
  azurite = await startAzurite({ location: tmp('lva-azurite-data-') });
  const clip = await makeClip({ seconds: LOOP_SECONDS, fps: 25, gop: 50, size: '320x240' });
  const frag = path.join(tmp(), 'frag.mp4');
  const r = spawnSync(findFfmpeg(), ['-v', 'error', '-i', clip, '-c', 'copy', '-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-f', 'mp4', frag], { timeout: 60_000 });
  assert.equal(r.status, 0, String(r.stderr));
  for await (const it of parseFmp4Stream(createReadStream(frag) as AsyncIterable<Buffer>)) {
    if (it.kind === 'init') tracks = it.tracks;
    else loop.push(it.sample);
  }
  assert.equal(loop.filter((s) => s.keyframe).length, LOOP_SECONDS / 2);
});

after(async () => {
  AssetSinkNode.hooks.onSegmentClosed = undefined;
  await azurite?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await assertNoLeftoverFfmpeg();
});

interface Published { eventClass: string; name: string; body: Record<string, unknown> }

function makeSink(cachePath: string, limitMiB: number, extraSettings: Record<string, unknown> = {}) {
  const config: AssetSinkConfig = {
    type: NodeTypes.AssetSink, name: 'assetSink', assetNamePattern: ASSET, segmentLengthMs: 30_000,
    localMediaCachePath: cachePath, localMediaCacheMaximumSizeMiB: limitMiB,
  };
  const node: ResolvedNode = { role: 'sink', config, inputs: [{ nodeName: 'rtspSource', outputSelectors: [] }], target: '$.Properties.Sinks[0]' };
  const events: Published[] = [];
  const ctx: NodeContext = {
    instanceName: 'outage', topologyName: 'CVR', node, log: createLogger(undefined, 'silent'),
    clock: new MediaClock(Date.now, Date.parse(START)),
    settings: resolveSettings({ assetStorageConnectionString: azurite.connectionString, assetStorageContainerName: CONTAINER, ...extraSettings }),
    inputs: new InputRouter(), upstreamType: () => NodeTypes.RtspSource, wantsAudio: false, backlog: () => 0,
    publish: (eventClass, name, body) => events.push({ eventClass, name, body }),
    publishAs: () => {}, emit: () => {}, fail: (err) => { throw err; },
  };
  return { sink: new AssetSinkNode(config, ctx), events };
}

/** Loop `k` of the clip, shifted by k × 30 s on every timeline. */
function shifted(k: number): Sample[] {
  return loop.map((s) => {
    const d = k * LOOP_SECONDS * s.track.timescale;
    return { ...s, dts: s.dts + d, pts: s.pts + d, pts90k: s.pts90k + k * LOOP_SECONDS * 90_000 };
  });
}

async function feed(sink: AssetSinkNode, k: number, onSample?: (s: Sample) => void) {
  for (const s of shifted(k)) {
    onSample?.(s);
    await sink.handle(0, { kind: 'sample', sample: s });
  }
}

async function waitFor(cond: () => boolean | Promise<boolean>, what: string, guardMs = 60_000) {
  const end = Date.now() + guardMs; // a hang guard, not a timing requirement
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function capture() {
  const kept: Array<{ copy: string; meta: SegmentMeta }> = [];
  const dir = tmp('lva-asset-keep-');
  AssetSinkNode.hooks.onSegmentClosed = (file, meta) => {
    const copy = path.join(dir, meta.name);
    copyFileSync(file, copy);
    kept.push({ copy, meta });
  };
  return kept;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const container = () => azurite.service().getContainerClient(CONTAINER);
const cacheFiles = (cache: string) => readdirSync(path.join(cache, ASSET)).filter((f) => f.endsWith('.mp4')).sort();

async function assertInContainer(expected: Array<{ copy: string; meta: SegmentMeta }>, prefixFilter?: (name: string) => boolean) {
  const blobs = (await listBlobs(container(), `${ASSET}/`)).filter((b) => !prefixFilter || prefixFilter(b.name));
  assert.deepEqual(blobs.map((b) => b.name), expected.map((k) => `${ASSET}/${k.meta.name}`));
  for (const [i, b] of blobs.entries()) {
    assert.equal(sha(b.data), sha(readFileSync(expected[i]!.copy)), `${b.name} byte-identical to the cache copy`);
    assert.equal(b.metadata.sha256, expected[i]!.meta.sha256);
  }
}

describe('asset sink: storage outages and the local media cache', () => {
  test('storage down for 60 s: segments wait in the cache and are all uploaded when it returns', async () => {
    const cache = tmp();
    const kept = capture();
    // Retries back off up to 5 s here (default 30 s) so the test does not wait out a long backoff.
    process.env.LVA_ASSET_RETRY_MAX_MS = '5000';
    const { sink, events } = makeSink(cache, 2048);
    await sink.start();
    await sink.handle(0, { kind: 'init', tracks });
    await feed(sink, 0);
    await feed(sink, 1);
    await waitFor(() => sink.stats.uploadedSegments === 1, 'first segment uploaded');
    // The second segment is closed by the first keyframe of loop 2; storage goes away before that.
    await azurite.stop();
    const downAt = Date.now();
    for (const k of [2, 3, 4, 5]) await feed(sink, k);
    assert.equal(kept.length, 5);
    await waitFor(() => sink.stats.uploadFailures >= 2, 'uploads failing');
    assert.equal(sink.stats.uploadedSegments, 1);
    assert.deepEqual(cacheFiles(cache), kept.slice(1).map((k) => k.meta.name), 'un-uploaded segments are kept in the cache');
    const storageErrors = events.filter((e) => e.name === 'StorageError');
    assert.equal(storageErrors.length, 1, 'one StorageError per outage, not per retry');
    assert.equal(storageErrors[0]!.body.code, 'UploadFailed');
    assert.equal(storageErrors[0]!.body.storageAccountName, 'devstoreaccount1');
    assert.doesNotMatch(JSON.stringify(events), /AccountKey|Eby8vdM02/);
    await new Promise((r) => setTimeout(r, Math.max(0, 60_000 - (Date.now() - downAt))));
    assert.equal(sink.stats.uploadedSegments, 1, 'nothing uploaded while storage is down');
    await azurite.restart();
    delete process.env.LVA_ASSET_RETRY_MAX_MS;
    await feed(sink, 6);
    await sink.handle(0, { kind: 'eos' });
    assert.equal(kept.length, 7);
    assert.equal(sink.stats.uploadedSegments, 7);
    assert.equal(sink.stats.droppedSegments, 0);
    await assertInContainer(kept);
    assert.deepEqual(readdirSync(path.join(cache, ASSET)), [], 'cache empty (segments and sidecars)');
    assert.equal(events.filter((e) => e.name === 'DataDropped').length, 0);
    assert.equal(events.filter((e) => e.name === 'RecordingAvailable').length, 1);
    assert.equal(events.filter((e) => e.name === 'StorageError').length, 1, 'no UploadIncomplete');
  });

  test('storage down past the cache limit: exactly the oldest segments are dropped, each reported', async () => {
    const cache = tmp();
    const kept = capture();
    const segmentBytes = loop.reduce((n, x) => n + x.data.length, 0);
    const limitMiB = Math.max(1, Math.ceil((2.5 * segmentBytes) / 2 ** 20));
    const limit = limitMiB * 2 ** 20;
    await azurite.stop();
    const { sink, events } = makeSink(cache, limitMiB, { assetStorageContainerName: 'limit-recordings' });
    await sink.start();
    await sink.handle(0, { kind: 'init', tracks });
    // Model of the rule, fed the same operations in the same order: whenever a segment is finished and
    // after every sample written, the oldest pending segments go while pending + the open one > limit.
    const pending: Array<{ name: string; size: number }> = [];
    const expectDropped: string[] = [];
    let open = 0;
    const enforce = () => {
      while (pending.length > 0 && pending.reduce((a, b) => a + b.size, 0) + open > limit) expectDropped.push(pending.shift()!.name);
    };
    const inner = AssetSinkNode.hooks.onSegmentClosed!;
    AssetSinkNode.hooks.onSegmentClosed = (file, meta) => {
      inner(file, meta);
      pending.push({ name: meta.name, size: meta.sizeBytes });
      open = 0;
      enforce();
    };
    const LOOPS = 7;
    for (let k = 0; k < LOOPS; k++) {
      for (const x of shifted(k)) {
        await sink.handle(0, { kind: 'sample', sample: x });
        open += x.data.length;
        enforce();
      }
    }
    await sink.handle(0, { kind: 'discont', pts90k: LOOPS * LOOP_SECONDS * 90_000 }); // finishes the last segment, storage still down
    assert.equal(kept.length, LOOPS);
    assert.ok(expectDropped.length >= 1, 'the outage outlasted the cache');
    const dropped = events.filter((e) => e.name === 'DataDropped');
    assert.deepEqual(dropped.map((e) => e.body.segment), expectDropped, 'exactly the oldest segments, in order');
    assert.deepEqual(expectDropped, kept.slice(0, expectDropped.length).map((k) => k.meta.name), 'the oldest ones');
    for (const e of dropped) {
      assert.equal(e.body.dataType, 'video');
      assert.equal(e.body.code, 'LocalMediaCacheFull');
      assert.equal(e.body.outputLocation, ASSET);
    }
    assert.equal(sink.stats.droppedSegments, expectDropped.length);
    const survivors = kept.slice(expectDropped.length);
    assert.deepEqual(cacheFiles(cache), survivors.map((k) => k.meta.name));
    const cacheBytes = survivors.reduce((n, k) => n + k.meta.sizeBytes, 0);
    assert.ok(cacheBytes <= limit, `cache ${cacheBytes} ≤ limit ${limit}`);
    await azurite.restart();
    await sink.handle(0, { kind: 'eos' });
    assert.equal(sink.stats.uploadedSegments, survivors.length);
    const blobs = await listBlobs(azurite.service().getContainerClient('limit-recordings'), `${ASSET}/`);
    assert.deepEqual(blobs.map((b) => b.name), survivors.map((k) => `${ASSET}/${k.meta.name}`), 'the rest is uploaded, the dropped ones are not');
    for (const [i, b] of blobs.entries()) assert.equal(sha(b.data), sha(readFileSync(survivors[i]!.copy)));
    assert.deepEqual(cacheFiles(cache), []);
  });

  test('segments left in the cache by a stopped or crashed run are uploaded when a new graph starts', async () => {
    const cache = tmp();
    const kept = capture();
    const names = 'leftover-recordings';
    // Run 1: storage down for its whole life; at its end the segment stays in the cache (reported).
    await azurite.stop();
    process.env.LVA_ASSET_DRAIN_TIMEOUT_MS = '300';
    const first = makeSink(cache, 2048, { assetStorageContainerName: names });
    try {
      await first.sink.start();
      await first.sink.handle(0, { kind: 'init', tracks });
      await feed(first.sink, 0);
      await first.sink.handle(0, { kind: 'eos' });
    } finally {
      delete process.env.LVA_ASSET_DRAIN_TIMEOUT_MS;
    }
    const incomplete = first.events.filter((e) => e.name === 'StorageError' && e.body.code === 'UploadIncomplete');
    assert.equal(incomplete.length, 1);
    assert.equal(incomplete[0]!.body.pendingSegments, 1);
    assert.equal(kept.length, 1);
    // A crash: one finished segment whose sidecar was never written, one .partial cut mid-fragment.
    const dir = path.join(cache, ASSET);
    const stamp = (sec: number) => new Date(Date.parse(START) + sec * 1000).toISOString().replace(/[-:]/g, '');
    const finished = path.join(dir, `${stamp(60)}-000002.mp4`);
    const w1 = await Fmp4Writer.open(finished, tracks);
    for (const x of shifted(2).slice(0, 250)) await w1.write(x);
    await w1.close();
    const finishedCopy = path.join(tmp(), 'finished.mp4');
    copyFileSync(finished, finishedCopy);
    const crashed = path.join(dir, `${stamp(90)}-000003.mp4`);
    const w2 = await Fmp4Writer.open(crashed, tracks);
    for (const x of shifted(3).slice(0, 300)) await w2.write(x);
    await w2.abort();
    appendFileSync(`${crashed}.partial`, Buffer.alloc(5000, 7)); // a torn last write
    // Run 2: storage is back.
    await azurite.restart();
    const second = makeSink(cache, 2048, { assetStorageContainerName: names });
    await second.sink.start();
    await waitFor(() => second.sink.stats.uploadedSegments === 3, 'leftovers uploaded');
    await second.sink.handle(0, { kind: 'eos' });
    assert.equal(second.sink.stats.recoveredSegments, 3);
    const blobs = await listBlobs(azurite.service().getContainerClient(names), `${ASSET}/`);
    assert.deepEqual(blobs.map((b) => b.name), [kept[0]!.meta.name, path.basename(finished), path.basename(crashed)].map((n) => `${ASSET}/${n}`));
    assert.equal(sha(blobs[0]!.data), sha(readFileSync(kept[0]!.copy)), 'segment of run 1: byte-identical to its cache copy');
    assert.equal(sha(blobs[1]!.data), sha(readFileSync(finishedCopy)), 'finished segment without sidecar: byte-identical');
    for (const b of blobs) assert.equal(b.metadata.sha256, sha(b.data));
    const recoveredCopy = path.join(tmp(), 'recovered.mp4');
    appendFileSync(recoveredCopy, blobs[2]!.data);
    const p = probeClip(recoveredCopy);
    assert.ok(p.videoPackets[0]!.keyframe);
    assert.ok(p.videoPackets.length >= 250 && p.videoPackets.length <= 300, `${p.videoPackets.length} packets survived the crash`);
    assert.equal(Number(blobs[1]!.metadata.durationseconds), 10);
    assert.equal(blobs[1]!.metadata.starttime, new Date(Date.parse(START) + 60_000).toISOString());
    const avail = second.events.filter((e) => e.name === 'RecordingAvailable');
    assert.equal(avail.length, 1);
    assert.equal(avail[0]!.body.recovered, true);
    assert.equal(avail[0]!.body.outputLocation, ASSET);
    assert.deepEqual(readdirSync(dir), []);
  });
});
