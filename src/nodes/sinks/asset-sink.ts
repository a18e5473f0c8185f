import { promises as fs } from 'node:fs';
import path from 'node:path';
import { moduleValidationError } from '../../api/errors.js';
import { NodeTypes, type AssetSinkConfig } from '../../graph/model.js';
import { expandSystemVariables } from '../../graph/params.js';
import { Fmp4Writer } from '../../media/fmp4-writer.js';
import type { Sample, TrackInfo } from '../../media/sample.js';
import { createAssetStore, type AssetStore } from '../../storage/asset-store.js';
import { safeMessage } from '../../storage/redact.js';
import {
  compactTime, hashFile, jobFromMeta, round3, scanAssetDir, writeSidecar, type SegmentMeta,
} from '../../storage/segment-cache.js';
import { resolveStorageTarget } from '../../storage/target.js';
import { SegmentUploader, type SegmentJob, type UploadedInfo } from '../../storage/uploader.js';
import { caps, kinds, MediaNode, type Activation, type Item, type NodeContext, type NodeFactory } from '../node.js';
import { patternToRegex } from './file-sink.js';

/**
 * `#Microsoft.Media.MediaGraphAssetSink` (lva-spec §2.3): records into a cloud "asset" — a Media
 * Services asset's container, or a folder of a Blob container (storage/target.ts has the settings).
 *
 * Modes, decided by what feeds the sink:
 * - continuous (fed by the RTSP source): one recording from the first keyframe to the end of the graph;
 * - event-based (fed by a signal gate): one recording per activation. With `${System.DateTime}` /
 *   `${System.PreciseDateTime}` in assetNamePattern each activation gets its own asset (named at its
 *   first keyframe, `-1`, `-2`… if a name repeats); otherwise every activation appends to one asset.
 *
 * Segments: media is cut into fMP4 files of `segmentLength` — a segment ends at the first video
 * keyframe at or after that length (or at the end of an activation, a discontinuity or the graph), so
 * every segment starts on a keyframe and plays on its own. Each is written with Fmp4Writer into
 * `<localMediaCachePath>/<asset>/<yyyyMMddTHHmmss.fffZ>-<seq>.mp4` first, then uploaded (uploader.ts)
 * to `<asset prefix><same name>` with blob metadata starttime, endtime, durationseconds, sha256, and
 * deleted from the cache only once the upload is confirmed. Stitching an asset back = its blobs in
 * name order (e.g. ffmpeg's concat demuxer with `-c copy`).
 *
 * Cache limit: whenever the cache (segments not yet uploaded + the one being written) exceeds
 * `localMediaCacheMaximumSizeMiB`, the oldest un-uploaded segments are deleted and each is reported
 * (Diagnostics DataDropped, `stats.droppedSegments`). Segments found in the cache at start — including
 * `.partial` files left by a crash, finished by recoverPartial — are uploaded first.
 *
 * Events (outputType "assetName", outputLocation = asset name, plus interfaces.md's extra fields):
 * RecordingStarted when a recording's first segment opens, RecordingStopped when it ends,
 * RecordingAvailable when its first segment is uploaded. Upload failures: Diagnostics StorageError
 * once per outage (the uploader keeps retrying); at the end of the graph the sink waits for the
 * uploads (LVA_ASSET_DRAIN_TIMEOUT_MS, default 45 s), and what is still pending is reported as
 * StorageError `UploadIncomplete` and left in the cache for the next start.
 */

const DRAIN_TIMEOUT_MS = () => Number(process.env.LVA_ASSET_DRAIN_TIMEOUT_MS ?? 45_000);
const RETRY_BASE_MS = () => Number(process.env.LVA_ASSET_RETRY_BASE_MS ?? 500);
const RETRY_MAX_MS = () => Number(process.env.LVA_ASSET_RETRY_MAX_MS ?? 30_000);

const PER_ACTIVATION = /\$\{System\.(Precise)?DateTime\}/i;

type ActivationStart = Extract<Activation, { phase: 'start' }>;

interface Recording {
  asset: string;
  activation: ActivationStart | null;
  firstPts90k: number;
  lastEndPts90k: number;
  segments: number;
  available: boolean;
  recovered: boolean;
}

interface OpenSegment {
  writer: Fmp4Writer;
  file: string;
  name: string;
  firstPts90k: number;
  bytes: number;
}

/** Counters of every asset sink in this process (for metrics), by `instance/node`. */

export class AssetSinkNode extends MediaNode<AssetSinkConfig> {
  /** Test hook: called synchronously when a segment is finished in the cache, before it is queued. */
  static hooks: { onSegmentClosed?: (file: string, meta: SegmentMeta) => void } = {};

  private tracks: readonly TrackInfo[] = [];
  private activation: ActivationStart | null = null;
  private recording: Recording | null = null;
  private segment: OpenSegment | null = null;
  private store: AssetStore | null = null;
  private uploader: SegmentUploader | null = null;
  private readonly cacheRoot: string;
  private readonly eventBased: boolean;
  private readonly perActivation: boolean;
  private readonly limitBytes: number;
  private readonly segment90k: number;
  private readonly usedAssets = new Set<string>();
  private seq = 0;
  private failingSince: string | null = null;
  private finished = false;
  override readonly stats = {
    segments: 0, uploadedSegments: 0, uploadedBytes: 0, droppedSegments: 0, droppedBytes: 0, uploadFailures: 0, recoveredSegments: 0,
  };

  constructor(config: AssetSinkConfig, ctx: NodeContext) {
    super(config, ctx);
    this.cacheRoot = ctx.outputRoot ? path.join(ctx.outputRoot, config.localMediaCachePath) : config.localMediaCachePath;
    const feeder = ctx.node.inputs[0] ? ctx.upstreamType(ctx.node.inputs[0].nodeName) : undefined;
    this.eventBased = feeder === NodeTypes.SignalGate;
    this.perActivation = PER_ACTIVATION.test(config.assetNamePattern);
    this.limitBytes = config.localMediaCacheMaximumSizeMiB * 1024 * 1024;
    this.segment90k = Math.round((Number.isFinite(config.segmentLengthMs) ? config.segmentLengthMs : 30_000) * 90);
    // Upload backlog for /metrics, read only when scraped (lva_upload_backlog_segments / _bytes).
    Object.defineProperties(this.stats, {
      backlogSegments: { enumerable: true, get: () => this.uploader?.pending.length ?? 0 },
      backlogBytes: { enumerable: true, get: () => this.uploader?.pendingBytes ?? 0 },
    });
  }

  override async start(): Promise<void> {
    const target = resolveStorageTarget(this.ctx.settings.raw);
    if (!target.ok) throw moduleValidationError(`Asset sink '${this.name}': ${target.message}`, this.ctx.node.target);
    try {
      this.store = createAssetStore(target.config);
    } catch (err) {
      throw moduleValidationError(`Asset sink '${this.name}': the storage target cannot be used: ${safeMessage(err)}`, this.ctx.node.target);
    }
    try {
      await fs.mkdir(this.cacheRoot, { recursive: true });
      await fs.access(this.cacheRoot, fs.constants.W_OK);
    } catch (err) {
      throw moduleValidationError(`Asset sink '${this.name}': localMediaCachePath ${this.cacheRoot} is not writable: ${(err as Error).message}`, this.ctx.node.target);
    }
    this.uploader = new SegmentUploader(this.store, {
      uploaded: (job, info) => this.onUploaded(job, info),
      failed: (job, err, n) => this.onUploadFailed(job, err, n),
      restored: (n) => {
        this.ctx.log.info({ failures: n, since: this.failingSince }, 'asset uploads succeed again');
        this.failingSince = null;
      },
    }, { baseDelayMs: RETRY_BASE_MS(), maxDelayMs: RETRY_MAX_MS() });
    await this.recoverLeftovers();
    this.uploader.start();
    await this.enforceCacheLimit();
  }

  /** Queues the segments a previous run left in this sink's asset folders (oldest first). */
  private async recoverLeftovers(): Promise<void> {
    const own = patternToRegex(this.config.assetNamePattern);
    const jobs: SegmentJob[] = [];
    for (const dirent of await fs.readdir(this.cacheRoot, { withFileTypes: true })) {
      if (!dirent.isDirectory() || !own.test(dirent.name)) continue;
      for (const r of await scanAssetDir(dirent.name, path.join(this.cacheRoot, dirent.name))) {
        if (r.kind === 'unrecoverable') {
          this.ctx.publish('Diagnostics', 'MediaFormatError', { code: 'UnrecoverableSegment', file: r.file, reason: r.reason });
          continue;
        }
        r.job.tag = { recovered: true } satisfies Partial<Recording>;
        jobs.push(r.job);
      }
    }
    jobs.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.asset < b.asset ? -1 : 1));
    const perAsset = new Map<string, Recording>();
    for (const j of jobs) {
      let rec = perAsset.get(j.asset);
      if (!rec) {
        rec = { asset: j.asset, activation: null, firstPts90k: 0, lastEndPts90k: 0, segments: 0, available: false, recovered: true };
        perAsset.set(j.asset, rec);
      }
      rec.segments++;
      j.tag = rec;
      this.stats.recoveredSegments++;
      this.uploader!.enqueue(j);
    }
    if (jobs.length > 0) this.ctx.log.warn({ segments: jobs.length, assets: perAsset.size }, 'uploading segments left in the local media cache');
  }

  async handle(_pad: number, item: Item): Promise<void> {
    if (this.finished) return;
    switch (item.kind) {
      case 'init':
        this.tracks = item.tracks;
        return;
      case 'activation':
        if (item.phase === 'start') {
          await this.endRecording(false);
          this.activation = item;
        } else {
          await this.endRecording(item.truncated);
          this.activation = null;
        }
        return;
      case 'discont':
        // The stream broke: what follows goes to a new segment (same recording) from its next keyframe.
        await this.closeSegment();
        return;
      case 'sample':
        return this.onSample(item.sample);
      case 'eos':
        await this.finish();
        return;
      default:
        return;
    }
  }

  private async onSample(s: Sample): Promise<void> {
    if (this.eventBased && !this.activation) return;
    if (s.discont && this.segment) await this.closeSegment();
    const cutPoint = s.track.kind === 'video' ? s.keyframe : !this.tracks.some((t) => t.kind === 'video');
    if (this.segment && cutPoint && s.pts90k - this.segment.firstPts90k >= this.segment90k) await this.closeSegment();
    if (!this.segment) {
      if (!cutPoint) return; // a segment starts on a keyframe
      if (!(await this.openSegment(s))) return;
    }
    const seg = this.segment!;
    try {
      await seg.writer.write(s);
      seg.bytes += s.data.length;
    } catch (err) {
      this.ctx.publish('Diagnostics', 'StorageError', {
        code: 'CacheWriteFailed', outputType: 'assetName', outputLocation: this.recording?.asset, file: seg.file, message: (err as Error).message,
      });
      await seg.writer.abort().catch(() => {});
      await fs.rm(seg.writer.partialPath, { force: true }).catch(() => {});
      this.segment = null;
      return;
    }
    if (this.uploader && this.uploader.pendingBytes + seg.bytes > this.limitBytes) await this.enforceCacheLimit();
  }

  private assetNameFor(first: Sample): string {
    const raw = expandSystemVariables(this.config.assetNamePattern, {
      now: this.ctx.clock.toDate(first.pts90k), topologyName: this.ctx.topologyName, instanceName: this.ctx.instanceName,
    });
    const safe = raw.replace(/[/\\]/g, '_').replace(/^\.+/, '_') || 'asset';
    if (!this.perActivation) return safe;
    let name = safe;
    for (let n = 1; this.usedAssets.has(name); n++) name = `${safe}-${n}`;
    this.usedAssets.add(name);
    return name;
  }

  private async openSegment(first: Sample): Promise<boolean> {
    const clock = this.ctx.clock;
    let rec = this.recording;
    const startsRecording = !rec;
    if (!rec) {
      rec = {
        asset: this.assetNameFor(first), activation: this.activation, firstPts90k: first.pts90k, lastEndPts90k: first.pts90k,
        segments: 0, available: false, recovered: false,
      };
    }
    const dir = path.join(this.cacheRoot, rec.asset);
    const stamp = compactTime(clock.toDate(first.pts90k));
    let file = '';
    let name = '';
    try {
      await fs.mkdir(dir, { recursive: true });
      for (;;) {
        this.seq++;
        name = `${stamp}-${String(this.seq).padStart(6, '0')}.mp4`;
        file = path.join(dir, name);
        const taken = await fs.lstat(file).then(() => true, () => false) || await fs.lstat(`${file}.partial`).then(() => true, () => false);
        if (!taken) break;
      }
      const tracks = this.tracks.length > 0 ? [...this.tracks] : [first.track];
      this.segment = { writer: await Fmp4Writer.open(file, tracks), file, name, firstPts90k: first.pts90k, bytes: 0 };
    } catch (err) {
      this.ctx.publish('Diagnostics', 'StorageError', {
        code: 'CacheWriteFailed', outputType: 'assetName', outputLocation: rec.asset, file, message: (err as Error).message,
      });
      return false;
    }
    if (startsRecording) {
      this.recording = rec;
      const a = rec.activation;
      this.ctx.publish('Operational', 'RecordingStarted', {
        outputType: 'assetName',
        outputLocation: rec.asset,
        startTime: clock.toDate(first.pts90k).toISOString(),
        ...(a ? {
          requestedStartTime: clock.toDate(a.requestedStart90k).toISOString(),
          preRollSeconds: round3((a.firstEvent90k - first.pts90k) / 90_000),
        } : {}),
      }, { eventTime: clock.toDate(first.pts90k).toISOString() });
    }
    return true;
  }

  private async closeSegment(): Promise<void> {
    const seg = this.segment;
    if (!seg) return;
    this.segment = null;
    const rec = this.recording!;
    let meta: SegmentMeta;
    try {
      const r = await seg.writer.close();
      const h = await hashFile(r.path);
      const clock = this.ctx.clock;
      meta = {
        asset: rec.asset, name: seg.name,
        startTime: clock.toDate(r.firstPts90k).toISOString(), endTime: clock.toDate(r.lastEndPts90k).toISOString(),
        durationSeconds: round3(r.durationSeconds), sizeBytes: h.size, sha256: h.sha256, md5: h.md5,
      };
      await writeSidecar(meta, r.path);
      rec.lastEndPts90k = Math.max(rec.lastEndPts90k, r.lastEndPts90k);
    } catch (err) {
      this.ctx.publish('Diagnostics', 'StorageError', {
        code: 'CacheWriteFailed', outputType: 'assetName', outputLocation: rec.asset, file: seg.file, message: (err as Error).message,
      });
      return;
    }
    rec.segments++;
    this.stats.segments++;
    AssetSinkNode.hooks.onSegmentClosed?.(seg.file, meta);
    this.uploader!.enqueue(jobFromMeta(meta, seg.file, rec));
    await this.enforceCacheLimit();
  }

  /** Ends the recording in progress (activation end, end of graph). */
  private async endRecording(truncated: boolean): Promise<void> {
    await this.closeSegment();
    const rec = this.recording;
    if (!rec) return;
    this.recording = null;
    const clock = this.ctx.clock;
    const a = rec.activation;
    this.ctx.publish('Operational', 'RecordingStopped', {
      outputType: 'assetName',
      outputLocation: rec.asset,
      startTime: clock.toDate(rec.firstPts90k).toISOString(),
      endTime: clock.toDate(rec.lastEndPts90k).toISOString(),
      ...(a ? {
        requestedStartTime: clock.toDate(a.requestedStart90k).toISOString(),
        preRollSeconds: round3((a.firstEvent90k - rec.firstPts90k) / 90_000),
      } : {}),
      durationSeconds: round3((rec.lastEndPts90k - rec.firstPts90k) / 90_000),
      segmentCount: rec.segments,
      ...(truncated ? { truncated: true } : {}),
    }, { eventTime: clock.toDate(rec.lastEndPts90k).toISOString() });
  }

  /** Drops the oldest un-uploaded segments while the cache exceeds its limit. */
  private async enforceCacheLimit(): Promise<void> {
    const up = this.uploader;
    if (!up) return;
    const open = () => this.segment?.bytes ?? 0;
    while (up.pendingBytes + open() > this.limitBytes && up.pending.length > 0) {
      const victim = up.pending[0]!;
      if (!(await up.drop(victim))) continue; // it was uploaded meanwhile
      this.stats.droppedSegments++;
      this.stats.droppedBytes += victim.sizeBytes;
      this.ctx.log.warn({ asset: victim.asset, segment: victim.name }, 'local media cache full: dropped the oldest segment not yet uploaded');
      this.ctx.publish('Diagnostics', 'DataDropped', {
        dataType: 'video',
        code: 'LocalMediaCacheFull',
        outputType: 'assetName',
        outputLocation: victim.asset,
        segment: victim.name,
        startTime: victim.startTime,
        endTime: victim.endTime,
        sizeBytes: victim.sizeBytes,
        localMediaCacheMaximumSizeMiB: this.config.localMediaCacheMaximumSizeMiB,
        droppedSegmentsTotal: this.stats.droppedSegments,
        message: `The local media cache exceeded ${this.config.localMediaCacheMaximumSizeMiB} MiB while uploads failed; segment ${victim.name} was deleted before upload.`,
      });
    }
  }

  private onUploaded(job: SegmentJob, info: UploadedInfo): void {
    this.stats.uploadedSegments++;
    this.stats.uploadedBytes += job.sizeBytes;
    const rec = job.tag as Recording | undefined;
    if (!rec || rec.available) return;
    rec.available = true;
    this.ctx.publish('Operational', 'RecordingAvailable', {
      outputType: 'assetName',
      outputLocation: job.asset,
      ...(rec.recovered ? { recovered: true } : { startTime: this.ctx.clock.toDate(rec.firstPts90k).toISOString() }),
      storageAccountName: info.accountName,
      container: info.containerName,
      blobName: info.blobName,
      segmentStartTime: job.startTime,
      segmentEndTime: job.endTime,
      durationSeconds: job.durationSeconds,
      sizeBytes: job.sizeBytes,
      sha256: job.sha256,
    });
  }

  private onUploadFailed(job: SegmentJob, err: unknown, consecutive: number): void {
    this.stats.uploadFailures++;
    const message = safeMessage(err);
    this.ctx.log.warn({ asset: job.asset, segment: job.name, attempt: consecutive, err: message }, 'segment upload failed; will retry');
    if (consecutive !== 1) return; // once per outage
    this.failingSince = new Date().toISOString();
    this.ctx.publish('Diagnostics', 'StorageError', {
      code: 'UploadFailed',
      storageAccountName: this.store?.accountName,
      outputType: 'assetName',
      outputLocation: job.asset,
      segment: job.name,
      willRetry: true,
      message,
    });
  }

  private async finish(): Promise<void> {
    await this.endRecording(true);
    this.activation = null;
    this.finished = true;
    const up = this.uploader;
    if (!up) return;
    const left = await up.drain(DRAIN_TIMEOUT_MS());
    if (left.length > 0) {
      this.ctx.publish('Diagnostics', 'StorageError', {
        code: 'UploadIncomplete',
        storageAccountName: this.store?.accountName,
        outputType: 'assetName',
        outputLocation: left[0]!.asset,
        pendingSegments: left.length,
        pendingBytes: left.reduce((n, j) => n + j.sizeBytes, 0),
        message: `${left.length} segment(s) could not be uploaded before the graph stopped; they stay in ${this.cacheRoot} and are uploaded when an asset sink starts on it again.`,
      });
    }
    await up.stop();
  }

  override destroy(): void {
    const seg = this.segment;
    this.segment = null;
    // The .partial stays (playable up to its last fragment) and is recovered and uploaded at next start.
    void seg?.writer.abort().catch(() => {});
    void this.uploader?.stop();
  }
}

export const assetSinkFactory: NodeFactory = {
  type: NodeTypes.AssetSink,
  outputCaps: () => caps(),
  checkInputs: (inputCaps) => (inputCaps.some((c) => c.has('media')) ? undefined : 'An asset sink needs encoded media from the RTSP source or a signal gate.'),
  accepts: () => kinds('init', 'sample', 'activation', 'discont', 'eos'),
  create: (node, ctx) => new AssetSinkNode(node.config as AssetSinkConfig, ctx),
};
