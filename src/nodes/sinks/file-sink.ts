import { promises as fs } from 'node:fs';
import path from 'node:path';
import { NodeTypes, type FileSinkConfig } from '../../graph/model.js';
import { expandSystemVariables } from '../../graph/params.js';
import { Fmp4Writer, recoverPartial, type Fmp4WriterResult } from '../../media/fmp4-writer.js';
import type { Sample, TrackInfo } from '../../media/sample.js';
import { caps, kinds, MediaNode, type Activation, type Item, type NodeContext, type NodeFactory } from '../node.js';

/**
 * `#Microsoft.Media.MediaGraphFileSink`: one MP4 per signal-gate activation at
 * `<baseDirectoryPath>/<expanded fileNamePattern>.mp4` (lva-spec §2.3, interfaces.md "Files").
 *
 * - While recording the clip is `<name>.mp4.partial`, a fragmented MP4 written fragment by fragment,
 *   so a crash leaves a playable file; start-up finishes such leftovers (recoverPartial).
 * - A clip starts on a video keyframe (the gate sends pre-roll from one); a discontinuity (camera
 *   lost, backlog dropped) closes the clip and the rest of the activation goes to a new file from the
 *   next keyframe, so no file ever spans a gap.
 * - Retention: after each clip, this sink's oldest files are deleted while they exceed
 *   `maximumSizeMiB`; before a clip opens, the same happens while free disk space is under a floor.
 * - Events: RecordingStarted when the file opens, RecordingStopped and RecordingAvailable when it is
 *   complete, with interfaces.md's extra fields.
 */

/** Free disk space kept on the sink's filesystem (bytes). */
const FREE_SPACE_FLOOR = Number(process.env.LVA_FILESINK_FREE_FLOOR_BYTES ?? 256 * 1024 * 1024);

/**
 * `.partial` files being written by any file sink of this process. Sinks of different instances may
 * share a directory and name pattern: one starting up must not "recover" a clip another is writing.
 */
const writingNow = new Set<string>();

interface OpenClip {
  writer: Fmp4Writer;
  path: string;
  activation: Extract<Activation, { phase: 'start' }>;
  firstPts90k: number;
  bytes: number;
}

export class FileSinkNode extends MediaNode<FileSinkConfig> {
  private tracks: readonly TrackInfo[] = [];
  private activation: Extract<Activation, { phase: 'start' }> | null = null;
  private clip: OpenClip | null = null;
  private readonly baseDir: string;
  private readonly patternRegex: RegExp;
  private storageFull = false;
  override readonly stats = { clips: 0, failed: 0, deletedForQuota: 0 };

  constructor(config: FileSinkConfig, ctx: NodeContext) {
    super(config, ctx);
    this.baseDir = ctx.outputRoot ? path.join(ctx.outputRoot, config.baseDirectoryPath) : config.baseDirectoryPath;
    this.patternRegex = patternToRegex(config.fileNamePattern);
  }

  override async start(): Promise<void> {
    await fs.mkdir(this.baseDir, { recursive: true });
    await fs.access(this.baseDir, fs.constants.W_OK);
    // Finish clips a crash left behind, so they are neither lost nor counted twice.
    for (const f of await fs.readdir(this.baseDir)) {
      if (!f.endsWith('.mp4.partial') || !this.patternRegex.test(f.slice(0, -'.mp4.partial'.length))) continue;
      if (writingNow.has(path.join(this.baseDir, f))) continue; // another instance's clip in progress
      const r = await recoverPartial(path.join(this.baseDir, f));
      if (r.ok) {
        this.ctx.log.warn({ file: r.path, seconds: r.durationSeconds }, 'recovered a clip left by a crash');
        this.ctx.publish('Operational', 'RecordingAvailable', {
          outputType: 'filePath', outputLocation: r.path, recovered: true,
          durationSeconds: r.durationSeconds, sizeBytes: r.sizeBytes, sha256: r.sha256,
        });
      } else {
        this.ctx.publish('Diagnostics', 'MediaFormatError', { code: 'UnrecoverableClip', file: path.join(this.baseDir, f), reason: r.reason });
      }
    }
  }

  async handle(_pad: number, item: Item): Promise<void> {
    switch (item.kind) {
      case 'init':
        this.tracks = item.tracks;
        return;
      case 'activation':
        if (item.phase === 'start') {
          await this.closeClip(false);
          this.activation = item;
        } else {
          await this.closeClip(item.truncated);
          this.activation = null;
        }
        return;
      case 'sample':
        return this.onSample(item.sample);
      case 'eos':
        await this.closeClip(true);
        this.activation = null;
        return;
      default:
        return;
    }
  }

  private async onSample(s: Sample): Promise<void> {
    if (!this.activation) return;
    if (s.discont && this.clip) await this.closeClip(true);
    if (!this.clip) {
      if (s.track.kind !== 'video' || !s.keyframe) return; // a clip starts on a keyframe
      if (!(await this.openClip(s))) return;
    }
    const clip = this.clip!;
    try {
      await clip.writer.write(s);
      clip.bytes += s.data.length;
    } catch (err) {
      await this.onWriteFailed(clip, err as NodeJS.ErrnoException);
    }
  }

  /**
   * A write failed (a full disk, an I/O error). What reached the disk before is kept: the file is cut
   * back to its last complete fragment and finished, and reported like any clip (truncated), so no
   * half-written `.partial` is left behind unreported. On a full disk the activation goes on: the
   * next keyframe opens a new clip once ensureFreeSpace() finds room (deleting this sink's oldest
   * clips), and reports DiskSpaceExhausted while it cannot. Any other error ends the activation.
   */
  private async onWriteFailed(clip: OpenClip, err: NodeJS.ErrnoException): Promise<void> {
    this.clip = null;
    writingNow.delete(clip.writer.partialPath);
    this.stats.failed++;
    const diskFull = err.code === 'ENOSPC' || err.code === 'EDQUOT';
    this.ctx.publish('Diagnostics', 'StorageError', {
      code: diskFull ? 'DiskSpaceExhausted' : 'WriteFailed', outputLocation: clip.path,
      message: diskFull ? `The disk filled up while recording; the clip ends here (${err.message}).` : err.message,
    });
    if (diskFull) this.storageFull = true; // reported; resume only with room to spare (ensureFreeSpace)
    try {
      const r = await clip.writer.salvage();
      this.reportClosed(clip, r, true);
    } catch (salvageErr) {
      // Nothing complete was written (the .partial is gone), or even finishing failed: the .partial
      // is kept (playable up to its last fragment, finished at the next start) and reported here.
      await clip.writer.abort().catch(() => {});
      const left = await fs.lstat(clip.writer.partialPath).then(() => clip.writer.partialPath, () => null);
      this.ctx.publish('Diagnostics', 'StorageError', {
        code: 'ClipNotFinished', outputLocation: clip.path, ...(left ? { partialFile: left } : {}),
        message: (salvageErr as Error).message,
      });
    }
    if (!diskFull) this.activation = null; // the rest of this activation is lost; reported above
  }

  private async openClip(first: Sample): Promise<boolean> {
    const a = this.activation!;
    if (!(await this.ensureFreeSpace())) return false;
    const when = this.ctx.clock.toDate(first.pts90k);
    const name = expandSystemVariables(this.config.fileNamePattern, {
      now: when, topologyName: this.ctx.topologyName, instanceName: this.ctx.instanceName,
    });
    const tracks = this.tracks.length > 0 ? [...this.tracks] : [first.track];
    let file = '';
    try {
      const claimed = await this.claimPath(name, tracks);
      file = claimed.path;
      this.clip = { writer: claimed.writer, path: file, activation: a, firstPts90k: first.pts90k, bytes: 0 };
    } catch (err) {
      this.stats.failed++;
      this.ctx.publish('Diagnostics', 'StorageError', { code: 'OpenFailed', outputLocation: file || path.join(this.baseDir, `${name}.mp4`), message: (err as Error).message });
      return false;
    }
    const clock = this.ctx.clock;
    this.ctx.publish('Operational', 'RecordingStarted', {
      outputType: 'filePath',
      outputLocation: file,
      startTime: clock.toDate(first.pts90k).toISOString(),
      requestedStartTime: clock.toDate(a.requestedStart90k).toISOString(),
      preRollSeconds: round3((a.firstEvent90k - first.pts90k) / 90_000),
    }, { eventTime: clock.toDate(first.pts90k).toISOString() });
    return true;
  }

  private async closeClip(cut: boolean): Promise<void> {
    const clip = this.clip;
    if (!clip) return;
    this.clip = null;
    writingNow.delete(clip.writer.partialPath);
    let r: Fmp4WriterResult;
    try {
      r = await clip.writer.close();
    } catch (err) {
      // Flushing the last fragment or the index failed (e.g. the disk filled up): keep what is on disk.
      this.clip = clip;
      await this.onWriteFailed(clip, err as NodeJS.ErrnoException);
      return;
    }
    this.reportClosed(clip, r, cut);
    await this.enforceQuota(r.path).catch((err) => this.ctx.log.error({ err: (err as Error).message }, 'retention failed'));
  }

  /** RecordingStopped + RecordingAvailable for a finished file. */
  private reportClosed(clip: OpenClip, r: Fmp4WriterResult, cut: boolean): void {
    this.stats.clips++;
    const clock = this.ctx.clock;
    const common = {
      outputType: 'filePath',
      outputLocation: r.path,
      startTime: clock.toDate(r.firstPts90k).toISOString(),
      endTime: clock.toDate(r.lastEndPts90k).toISOString(),
      requestedStartTime: clock.toDate(clip.activation.requestedStart90k).toISOString(),
      preRollSeconds: round3((clip.activation.firstEvent90k - r.firstPts90k) / 90_000),
      durationSeconds: round3(r.durationSeconds),
      ...(cut ? { truncated: true } : {}),
    };
    const at = { eventTime: clock.toDate(r.lastEndPts90k).toISOString() };
    this.ctx.publish('Operational', 'RecordingStopped', common, at);
    this.ctx.publish('Operational', 'RecordingAvailable', { ...common, sizeBytes: r.sizeBytes, sha256: r.sha256 }, at);
  }

  /**
   * Deletes this sink's oldest finished clips while they exceed maximumSizeMiB. The clip just
   * announced as available is never deleted, even if it alone exceeds the quota.
   */
  private async enforceQuota(keep: string): Promise<void> {
    const max = this.config.maximumSizeMiB * 1024 * 1024;
    const files = await this.ownFiles();
    let total = files.reduce((a, f) => a + f.size, 0);
    for (const f of files) {
      if (total <= max) break;
      if (f.path === keep) continue;
      await fs.rm(f.path, { force: true });
      total -= f.size;
      this.stats.deletedForQuota++;
      this.ctx.log.info({ file: f.path }, 'deleted oldest clip (maximumSizeMiB)');
    }
  }

  /** Frees space down to the floor by deleting our oldest clips; false if that is not enough. */
  private async ensureFreeSpace(): Promise<boolean> {
    const free = async () => {
      const st = await fs.statfs(this.baseDir);
      return st.bavail * st.bsize;
    };
    // After the disk was found full, recording resumes only with twice the floor free, so a disk
    // hovering at the limit does not open and fail a clip at every keyframe.
    const need = this.storageFull ? 2 * FREE_SPACE_FLOOR : FREE_SPACE_FLOOR;
    let avail = await free().catch(() => Infinity);
    if (avail >= need) {
      this.storageFull = false;
      return true;
    }
    const own = await this.ownFiles();
    // When even all of our clips would not free enough (the disk is full of other data), deleting
    // them would destroy recordings for nothing: keep them and report.
    const reclaimable = own.reduce((sum, f) => sum + f.size, 0);
    for (const f of avail + reclaimable >= need ? own : []) {
      await fs.rm(f.path, { force: true });
      this.stats.deletedForQuota++;
      this.ctx.log.info({ file: f.path }, 'deleted oldest clip (disk space)');
      avail = await free().catch(() => Infinity);
      if (avail >= need) break;
    }
    if (avail >= need) {
      this.storageFull = false;
      return true;
    }
    if (!this.storageFull) {
      this.storageFull = true;
      this.ctx.publish('Diagnostics', 'StorageError', {
        code: 'DiskSpaceExhausted', outputLocation: this.baseDir, freeBytes: avail, floorBytes: need,
        message: 'Not enough free disk space to start a clip; the event was not recorded.',
      });
    }
    return false;
  }

  /** Finished clips of this sink (names matching its pattern), oldest first. */
  private async ownFiles(): Promise<Array<{ path: string; size: number; mtimeMs: number }>> {
    const out: Array<{ path: string; size: number; mtimeMs: number }> = [];
    for (const f of await fs.readdir(this.baseDir)) {
      if (!f.endsWith('.mp4') || !this.patternRegex.test(f.slice(0, -4))) continue;
      const p = path.join(this.baseDir, f);
      const st = await fs.lstat(p).catch(() => undefined);
      if (st?.isFile()) out.push({ path: p, size: st.size, mtimeMs: st.mtimeMs });
    }
    return out.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.path < b.path ? -1 : 1));
  }

  /**
   * Opens a writer on the first free `<name>[-n].mp4`. Several sinks (instances of one topology, or
   * topologies sharing a directory and pattern) can open a clip in the same second, so the name is
   * claimed atomically: the `.partial` is created exclusively, and a finished clip of that name that
   * appeared meanwhile sends us to the next name, so no sink ever overwrites another's clip.
   */
  private async claimPath(name: string, tracks: TrackInfo[]): Promise<{ path: string; writer: Fmp4Writer }> {
    // Validation forbids separators in the pattern; values substituted into it could still hold
    // them, so the name is reduced to a single path segment here as well.
    const safe = name.replace(/[/\\]/g, '_').replace(/^\.+/, '_') || 'clip';
    const exists = (p: string) => fs.lstat(p).then(() => true, () => false);
    for (let n = 0; ; n++) {
      const p = path.join(this.baseDir, `${safe}${n === 0 ? '' : `-${n}`}.mp4`);
      if (await exists(p)) continue;
      let writer: Fmp4Writer;
      try {
        writer = await Fmp4Writer.open(p, tracks, { exclusive: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue; // another sink is writing it
        throw err;
      }
      // Another sink's clip of this name may have been finished (renamed) between our check and our claim.
      if (!(await exists(p))) {
        writingNow.add(writer.partialPath);
        return { path: p, writer };
      }
      await writer.abort();
      await fs.rm(writer.partialPath, { force: true });
    }
  }

  override destroy(): void {
    const clip = this.clip;
    this.clip = null;
    if (clip) writingNow.delete(clip.writer.partialPath);
    // Abort keeps the .partial, which is playable up to its last fragment and recovered at start.
    void clip?.writer.abort().catch(() => {});
  }
}

/** `${System.DateTime}`-style tokens become wildcards so we recognise this sink's own files. */
export function patternToRegex(pattern: string): RegExp {
  const parts = pattern.split(/(\$\{[^}]*\})/);
  const body = parts.map((p) => (p.startsWith('${') ? '.+' : p.replace(/[.*+?^$()|[\]\\{}]/g, '\\$&'))).join('');
  return new RegExp(`^${body}(-\\d+)?$`);
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export const fileSinkFactory: NodeFactory = {
  type: NodeTypes.FileSink,
  outputCaps: () => caps(),
  checkInputs: (inputCaps) => (inputCaps.some((c) => c.has('media')) ? undefined : 'A file sink needs encoded media from a signal gate.'),
  accepts: () => kinds('init', 'sample', 'activation', 'eos'),
  create: (node, ctx) => new FileSinkNode(node.config as FileSinkConfig, ctx),
};
