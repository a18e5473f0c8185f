/**
 * Crash-safe fragmented MP4 writer for event clips.
 *
 * Final form: the clip stays a fragmented MP4 (ftyp, moov with mvex, moof+mdat per fragment, mfra).
 * That is what makes it crash-safe — every fragment written is playable without a later index — and
 * closing then only has to patch fixed-size duration fields in the header (mvhd, tkhd, mdhd, elst,
 * mehd; all written as 64-bit version-1 boxes so the patch never changes sizes) and append an mfra
 * random-access index. No second pass over the media. ffprobe reports the duration from mvhd/mehd and
 * browsers play fragmented MP4 files from <video src>; a progressive rewrite would cost a full copy of
 * every clip for no playback gain.
 *
 * Timeline: the writer places samples by `pts90k` (the graph timeline), not by the source's dts/pts,
 * because after a camera reconnect the source timestamps restart while pts90k keeps running. The
 * composition offset (pts - dts) is taken from the sample. The file's time zero is the earliest pts90k
 * of the first fragment; each track's edit list maps its media time onto that zero (an empty edit when
 * the track starts later, a media_time equal to the first sample's composition offset so B-frame clips
 * start presenting at 0).
 *
 * Crash safety: the file is `path + '.partial'` until close() renames it. ftyp+moov go out with the
 * first fragment (the edit lists need the first samples); each completed fragment is written with one
 * write() call, so a SIGKILL loses at most the fragment being assembled (the page cache keeps what was
 * written). close() fsyncs before the atomic rename. `recoverPartial()` finishes a `.partial` left
 * behind by a crash by re-muxing its complete fragments.
 */

import { createHash } from 'node:crypto';
import { constants as fsConstants, createReadStream } from 'node:fs';
import { lstat, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';

import { Fmp4Parser } from './fmp4-parser.js';
import { box, childBoxes, fullBox, i32, i64, u16, u32, u64, zeros } from './mp4-boxes.js';
import { TICKS_PER_SECOND, type Sample, type TrackInfo } from './sample.js';

export interface Fmp4WriterOptions {
  /** A fragment ends at the next video keyframe or once it spans this much, whichever comes first. Default 1000. */
  fragmentDurationMs?: number;
  /** Fail with EEXIST instead of truncating when `path.partial` exists (claiming a name atomically). */
  exclusive?: boolean;
}

export interface Fmp4WriterResult {
  path: string;
  sizeBytes: number;
  sha256: string;
  /** pts90k of the file's time zero (earliest presented sample). */
  firstPts90k: number;
  /** Largest pts90k + duration over all samples. */
  lastEndPts90k: number;
  durationSeconds: number;
  sampleCount: number;
}

const MOVIE_TIMESCALE = 1000;
const FLAGS_SYNC = 0x02000000; // sample_depends_on = 2 (independent)
const FLAGS_NON_SYNC = 0x01010000; // sample_depends_on = 1, sample_is_non_sync_sample
const FALLBACK_DURATION_90K = 3000; // last sample of a track with no duration and no predecessor

/** A sample placed on the writer's per-track media timeline (track timescale). */
interface Placed {
  dts: number; // media decode time in the file, before subtracting the track origin
  cto: number; // pts - dts
  duration: number;
  keyframe: boolean;
  pts90k: number;
  data: Buffer;
}

interface TrackWriter {
  info: TrackInfo;
  /** Media decode time that becomes 0 in the file; fixed at the header. */
  origin: number | null;
  /** Edit list: empty lead-in (movie timescale) and media_time of the real edit. */
  emptyEdit: number;
  mediaTime: number;
  firstPts90k: number | null;
  pending: Placed | null;
  lastDts: number | null;
  lastDelta: number;
  fragment: Placed[];
  /** Media time following the last written sample (file media timeline). */
  writtenEnd: number;
  /** Largest presentation end (pts + duration), track timescale, file media timeline. */
  presentEnd: number;
  tfra: { time: number; moofOffset: number; trafNumber: number }[];
}

export class Fmp4Writer {
  private readonly tracks: TrackWriter[];
  private readonly byId = new Map<number, TrackWriter>();
  private readonly fragmentTicks: number;
  private header: Buffer | null = null;
  private fileSize = 0;
  private sequence = 0;
  private sampleCount = 0;
  private clipStart90k: number | null = null;
  private lastEnd90k = -Infinity;
  private sawVideo = false;
  private chain: Promise<void> = Promise.resolve();
  private failed: Error | null = null;
  private closed = false;

  private constructor(
    private readonly path: string,
    private readonly fh: FileHandle,
    tracks: TrackInfo[],
    opts: Fmp4WriterOptions,
  ) {
    this.fragmentTicks = Math.max(1, Math.round((opts.fragmentDurationMs ?? 1000) * 90));
    this.tracks = tracks.map((info) => ({
      info,
      origin: null,
      emptyEdit: 0,
      mediaTime: 0,
      firstPts90k: null,
      pending: null,
      lastDts: null,
      lastDelta: 0,
      fragment: [],
      writtenEnd: 0,
      presentEnd: 0,
      tfra: [],
    }));
    for (const t of this.tracks) this.byId.set(t.info.id, t);
  }

  /** End (pts90k + duration) of the media already written to disk, i.e. what a crash now would keep. */
  get flushedEndPts90k(): number | null {
    return this.header ? this.lastEnd90k : null;
  }

  /** pts90k of the file's time zero, once the first fragment is written. */
  get startPts90k(): number | null {
    return this.clipStart90k;
  }

  get partialPath(): string {
    return this.path + '.partial';
  }

  static async open(path: string, tracks: TrackInfo[], opts: Fmp4WriterOptions = {}): Promise<Fmp4Writer> {
    if (tracks.length === 0) throw new Error('Fmp4Writer: no tracks');
    const ids = new Set(tracks.map((t) => t.id));
    if (ids.size !== tracks.length) throw new Error('Fmp4Writer: duplicate track ids');
    for (const t of tracks) {
      if (t.id <= 0) throw new Error(`Fmp4Writer: track id ${t.id} must be positive`);
      if (t.timescale <= 0 || t.timescale > TICKS_PER_SECOND) {
        // Above 90 kHz the round trip pts90k -> track time would lose ticks.
        throw new Error(`Fmp4Writer: track ${t.id} timescale ${t.timescale} must be in 1..90000`);
      }
    }
    // O_NOFOLLOW: a symlink planted under the clip's name must not redirect the write outside the sink's directory.
    const fh = await open(
      path + '.partial',
      fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_NOFOLLOW | (opts.exclusive ? fsConstants.O_EXCL : fsConstants.O_TRUNC),
      0o644,
    );
    try {
      await fh.chmod(0o644); // the umask must not make clips unreadable to the uploader/web server
    } catch (err) {
      await fh.close();
      throw err;
    }
    return new Fmp4Writer(path, fh, tracks, opts);
  }

  /** Adds one sample. Call in decode order per track; tracks may interleave. */
  write(sample: Sample): Promise<void> {
    return this.enqueue(() => this.doWrite(sample));
  }

  /** Flushes the last fragment, finalises the header, fsyncs and renames `.partial` to the final path. */
  close(): Promise<Fmp4WriterResult> {
    let result: Fmp4WriterResult | undefined;
    return this.enqueue(async () => {
      result = await this.doClose();
    }).then(() => result!);
  }

  /**
   * After a failed write (typically ENOSPC): cuts the file back to its last complete fragment and
   * finishes it like close() (header durations, mfra, fsync, rename), so what was recorded before the
   * failure becomes a normal, reported clip instead of a half-written `.partial`. Samples not yet on
   * disk are dropped. Cutting the file frees the bytes of the failed fragment, which is what the small
   * mfra needs. Throws (and removes the `.partial`) when no fragment was ever completed.
   */
  salvage(): Promise<Fmp4WriterResult> {
    let result: Fmp4WriterResult | undefined;
    const step = async (): Promise<void> => {
      if (this.closed) throw new Error('Fmp4Writer: already closed');
      for (const t of this.tracks) {
        t.fragment = [];
        t.pending = null;
      }
      if (!this.header || this.sampleCount === 0) {
        // The header goes out with the first fragment: without a complete one there is nothing to keep.
        this.closed = true;
        await this.fh.close();
        await unlink(this.partialPath).catch(() => undefined);
        throw new Error('Fmp4Writer: no complete fragment to salvage');
      }
      result = await this.finishFile();
    };
    const p = this.chain.then(step, step);
    this.chain = p.catch(() => undefined);
    return p.then(() => result!);
  }

  /** Stops writing: the fragments already written stay in `.partial`, which remains playable. */
  async abort(): Promise<void> {
    await this.chain.catch(() => undefined);
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.failed) throw this.failed;
      if (this.closed) throw new Error('Fmp4Writer: already closed');
      try {
        await step();
      } catch (err) {
        // Bad input (e.g. a non-keyframe start) leaves the file intact; I/O errors poison the writer.
        if (!(err instanceof Fmp4WriterInputError)) this.failed = err instanceof Error ? err : new Error(String(err));
        throw err;
      }
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private async doWrite(s: Sample): Promise<void> {
    const t = this.byId.get(s.track.id);
    if (!t) throw new Fmp4WriterInputError(`sample for track ${s.track.id}, which this file does not have`);
    if (t.info.kind === 'video' && !this.sawVideo) {
      if (!s.keyframe) throw new Fmp4WriterInputError('the first video sample of a clip must be a keyframe');
      this.sawVideo = true;
    }
    const ts = t.info.timescale;
    const cto = s.pts - s.dts;
    const pts = Math.round((s.pts90k * ts) / TICKS_PER_SECOND);
    const placed: Placed = {
      dts: pts - cto,
      cto,
      duration: s.duration,
      keyframe: t.info.kind === 'video' ? s.keyframe : true,
      pts90k: s.pts90k,
      data: s.data,
    };
    if (t.lastDts !== null && placed.dts < t.lastDts) {
      throw new Fmp4WriterInputError(`track ${t.info.id}: decode time went backwards (${placed.dts} < ${t.lastDts})`);
    }
    if (t.origin !== null && placed.dts < t.origin) {
      return; // a late track's sample from before the clip's time zero: nothing to present
    }
    t.lastDts = placed.dts;
    if (t.pending) {
      const p = t.pending;
      if (p.duration <= 0) p.duration = placed.dts - p.dts;
      if (p.duration > 0) t.lastDelta = p.duration;
      t.fragment.push(p);
    }
    t.pending = placed;
    const startsGop = t.info.kind === 'video' && placed.keyframe;
    if ((startsGop && this.hasFragmentSamples()) || this.fragmentSpan() >= this.fragmentTicks) {
      await this.flushFragment();
    }
  }

  private hasFragmentSamples(): boolean {
    return this.tracks.some((t) => t.fragment.length > 0);
  }

  /** Span of the fragment being assembled, 90 kHz, over all tracks (pending samples included). */
  private fragmentSpan(): number {
    let lo = Infinity;
    let hi = -Infinity;
    for (const t of this.tracks) {
      const first = t.fragment[0] ?? t.pending;
      const last = t.pending ?? t.fragment[t.fragment.length - 1];
      if (!first || !last) continue;
      lo = Math.min(lo, first.pts90k);
      hi = Math.max(hi, last.pts90k);
    }
    return hi - lo;
  }

  private async doClose(): Promise<Fmp4WriterResult> {
    for (const t of this.tracks) {
      const p = t.pending;
      if (!p) continue;
      if (p.duration <= 0) p.duration = t.lastDelta || Math.max(1, Math.round((FALLBACK_DURATION_90K * t.info.timescale) / TICKS_PER_SECOND));
      t.fragment.push(p);
      t.pending = null;
    }
    if (this.hasFragmentSamples()) await this.flushFragment();
    if (!this.header) {
      this.closed = true;
      await this.fh.close();
      await unlink(this.partialPath).catch(() => undefined);
      throw new Error('Fmp4Writer: no samples were written; nothing to finish');
    }
    return this.finishFile();
  }

  /** mfra, real durations in the header, fsync, rename: the file becomes the finished clip. */
  private async finishFile(): Promise<Fmp4WriterResult> {
    const mfra = buildMfra(this.tracks);
    // fileSize stays the end of the media (fragments), so a salvage after a failure here cuts the
    // file back to it and writes the index again.
    await this.fh.truncate(this.fileSize);
    await this.fh.write(mfra, 0, mfra.length, this.fileSize);
    const sizeBytes = this.fileSize + mfra.length;
    this.patchDurations();
    await this.fh.write(this.header!, 0, this.header!.length, 0);
    await this.fh.datasync();
    this.closed = true;
    await this.fh.close();
    await rename(this.partialPath, this.path);
    const sha256 = await sha256File(this.path);
    const first = this.clipStart90k!;
    return {
      path: this.path,
      sizeBytes,
      sha256,
      firstPts90k: first,
      lastEndPts90k: this.lastEnd90k,
      durationSeconds: (this.lastEnd90k - first) / TICKS_PER_SECOND,
      sampleCount: this.sampleCount,
    };
  }

  private async flushFragment(): Promise<void> {
    const active = this.tracks.filter((t) => t.fragment.length > 0);
    if (active.length === 0) return;
    let prefix: Buffer | null = null;
    if (!this.header) {
      this.fixTimeline();
      this.header = buildHeader(this.tracks);
      prefix = this.header;
    }
    const moofOffset = this.fileSize + (prefix?.length ?? 0);
    this.sequence += 1;
    const parts = buildFragment(this.sequence, active, moofOffset);
    if (prefix) parts.unshift(prefix);
    // One (gathering) write per fragment: it is either in the file as a whole or (after a crash
    // mid-write) cut short, which readers and recoverPartial treat as the end of the file. The sample
    // payloads go to the kernel straight from their buffers, without being concatenated first.
    this.fileSize += await writeAllv(this.fh, parts, this.fileSize);
    for (const t of active) {
      for (const s of t.fragment) {
        const ts = t.info.timescale;
        const end90k = s.pts90k + Math.round((s.duration * TICKS_PER_SECOND) / ts);
        if (end90k > this.lastEnd90k) this.lastEnd90k = end90k;
        const mediaEnd = s.dts - t.origin! + s.cto + s.duration;
        if (mediaEnd > t.presentEnd) t.presentEnd = mediaEnd;
        this.sampleCount += 1;
      }
      const last = t.fragment[t.fragment.length - 1]!;
      t.writtenEnd = last.dts - t.origin! + last.duration;
      t.fragment = [];
    }
  }

  /**
   * Fixes the file's time zero and each track's origin and edit list from the first fragment. Time zero
   * is the first video picture when there is video (audio that starts earlier, such as AAC priming, is
   * hidden by its edit, as in the source), else the earliest sample.
   */
  private fixTimeline(): void {
    const minPts = (list: Placed[]): number => list.reduce((m, s) => Math.min(m, s.pts90k), Infinity);
    const video = this.tracks.filter((t) => t.info.kind === 'video' && t.fragment.length > 0);
    const start = Math.min(...(video.length > 0 ? video : this.tracks).map((t) => minPts(t.fragment)));
    this.clipStart90k = start;
    for (const t of this.tracks) {
      const ts = t.info.timescale;
      const first = t.fragment[0];
      if (first) {
        const earliest = minPts(t.fragment);
        const presentFrom = Math.max(earliest, start);
        t.origin = first.dts;
        t.firstPts90k = presentFrom;
        t.mediaTime = Math.round((presentFrom * ts) / TICKS_PER_SECOND) - first.dts;
        t.emptyEdit = Math.round(((presentFrom - start) * MOVIE_TIMESCALE) / TICKS_PER_SECOND);
      } else {
        // No sample yet (e.g. audio that starts after the first fragment): the track's media time 0 is
        // the clip start, and its samples from before that are dropped.
        t.origin = Math.round((start * ts) / TICKS_PER_SECOND);
        t.firstPts90k = start;
        t.mediaTime = 0;
        t.emptyEdit = 0;
      }
    }
  }

  /** Writes the real durations into the header kept in memory (same sizes, so a pwrite at 0 suffices). */
  private patchDurations(): void {
    const header = this.header!;
    let movieDuration = 0;
    const trackDurations = new Map<number, { media: number; movie: number; edit: number }>();
    for (const t of this.tracks) {
      const ts = t.info.timescale;
      const edit = Math.max(0, Math.round(((t.presentEnd - t.mediaTime) * MOVIE_TIMESCALE) / ts));
      const movie = t.emptyEdit + edit;
      trackDurations.set(t.info.id, { media: t.writtenEnd, movie, edit });
      movieDuration = Math.max(movieDuration, movie);
    }
    const moov = [...childBoxes(header, 0, header.length, 'header')].find((b) => b.type === 'moov')!;
    for (const c of childBoxes(header, moov.body, moov.end, 'moov')) {
      if (c.type === 'mvhd') header.writeBigUInt64BE(BigInt(movieDuration), c.body + 24);
      if (c.type === 'mvex') {
        for (const m of childBoxes(header, c.body, c.end, 'mvex')) {
          if (m.type === 'mehd') header.writeBigUInt64BE(BigInt(movieDuration), m.body + 4);
        }
      }
      if (c.type !== 'trak') continue;
      let id = 0;
      for (const k of childBoxes(header, c.body, c.end, 'trak')) {
        if (k.type === 'tkhd') {
          id = header.readUInt32BE(k.body + 20);
          header.writeBigUInt64BE(BigInt(trackDurations.get(id)!.movie), k.body + 28);
        } else if (k.type === 'edts') {
          const elst = [...childBoxes(header, k.body, k.end, 'edts')][0]!;
          const count = header.readUInt32BE(elst.body + 4);
          // The real edit is the last entry (an optional empty edit precedes it).
          header.writeBigUInt64BE(BigInt(trackDurations.get(id)!.edit), elst.body + 8 + (count - 1) * 20);
        } else if (k.type === 'mdia') {
          for (const m of childBoxes(header, k.body, k.end, 'mdia')) {
            if (m.type === 'mdhd') header.writeBigUInt64BE(BigInt(trackDurations.get(id)!.media), m.body + 24);
          }
        }
      }
    }
  }
}

/** Rejected input (the file is unaffected and the writer stays usable). */
export class Fmp4WriterInputError extends Error {
  override readonly name = 'Fmp4WriterInputError';
}

/** Writes the buffers back to back at `position` (writev, resumed after a partial write); returns the byte count. */
async function writeAllv(fh: FileHandle, bufs: Buffer[], position: number): Promise<number> {
  let total = 0;
  for (const b of bufs) total += b.length;
  let done = 0;
  let list = bufs;
  while (done < total) {
    const { bytesWritten } = await fh.writev(list, position + done);
    if (bytesWritten <= 0) throw new Error('Fmp4Writer: write made no progress');
    done += bytesWritten;
    if (done >= total) break;
    // Drop what was written and continue with the rest.
    let skip = bytesWritten;
    let i = 0;
    while (i < list.length && skip >= list[i]!.length) skip -= list[i++]!.length;
    list = list.slice(i);
    if (skip > 0) list[0] = list[0]!.subarray(skip);
  }
  return total;
}

/** sha256 of a file, read in large blocks through one reused buffer. */
async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafeSlow(1 << 20);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

// ---- box building ----

const UNITY_MATRIX = Buffer.concat([
  u32(0x00010000), u32(0), u32(0),
  u32(0), u32(0x00010000), u32(0),
  u32(0), u32(0), u32(0x40000000),
]);

function buildHeader(tracks: TrackWriter[]): Buffer {
  const brands = ['isom', 'iso6', 'iso2', 'mp41'];
  if (tracks.some((t) => t.info.codec === 'h264')) brands.push('avc1');
  const ftyp = box('ftyp', Buffer.from('isom', 'latin1'), u32(0x200), ...brands.map((b) => Buffer.from(b, 'latin1')));
  const nextTrackId = Math.max(...tracks.map((t) => t.info.id)) + 1;
  const mvhd = fullBox(
    'mvhd', 1, 0,
    u64(0), u64(0), u32(MOVIE_TIMESCALE), u64(0), // creation, modification, timescale, duration (patched)
    u32(0x00010000), u16(0x0100), zeros(10), UNITY_MATRIX, zeros(24), u32(nextTrackId),
  );
  const traks = tracks.map(buildTrak);
  const mvex = box(
    'mvex',
    fullBox('mehd', 1, 0, u64(0)),
    ...tracks.map((t) => fullBox('trex', 0, 0, u32(t.info.id), u32(1), u32(0), u32(0), u32(0))),
  );
  return Buffer.concat([ftyp, box('moov', mvhd, ...traks, mvex)]);
}

function buildTrak(t: TrackWriter): Buffer {
  const info = t.info;
  const isVideo = info.kind === 'video';
  const isAudio = info.kind === 'audio';
  const tkhd = fullBox(
    'tkhd', 1, 0x3, // enabled | in movie
    u64(0), u64(0), u32(info.id), u32(0), u64(0), // creation, modification, id, reserved, duration (patched)
    zeros(8), u16(0), u16(0), u16(isAudio ? 0x0100 : 0), u16(0), UNITY_MATRIX,
    u32(isVideo ? (info.width ?? 0) << 16 : 0), u32(isVideo ? (info.height ?? 0) << 16 : 0),
  );
  const entries: Buffer[] = [];
  if (t.emptyEdit > 0) entries.push(Buffer.concat([u64(t.emptyEdit), i64(-1), u32(0x00010000)]));
  entries.push(Buffer.concat([u64(0), i64(t.mediaTime), u32(0x00010000)]));
  const edts = box('edts', fullBox('elst', 1, 0, u32(entries.length), ...entries));
  const mdhd = fullBox('mdhd', 1, 0, u64(0), u64(0), u32(info.timescale), u64(0), u16(0x55c4 /* und */), u16(0));
  const handler = isVideo ? 'vide' : isAudio ? 'soun' : 'meta';
  const name = isVideo ? 'VideoHandler' : isAudio ? 'SoundHandler' : 'DataHandler';
  const hdlr = fullBox('hdlr', 0, 0, u32(0), Buffer.from(handler, 'latin1'), zeros(12), Buffer.from(name + '\0', 'latin1'));
  const mediaHeader = isVideo
    ? fullBox('vmhd', 0, 1, zeros(8))
    : isAudio
      ? fullBox('smhd', 0, 0, zeros(4))
      : fullBox('nmhd', 0, 0);
  const dinf = box('dinf', fullBox('dref', 0, 0, u32(1), fullBox('url ', 0, 1)));
  const stbl = box(
    'stbl',
    fullBox('stsd', 0, 0, u32(1), info.sampleEntry),
    fullBox('stts', 0, 0, u32(0)),
    fullBox('stsc', 0, 0, u32(0)),
    fullBox('stsz', 0, 0, u32(0), u32(0)),
    fullBox('stco', 0, 0, u32(0)),
  );
  const minf = box('minf', mediaHeader, dinf, stbl);
  return box('trak', tkhd, edts, box('mdia', mdhd, hdlr, minf));
}

/** moof, mdat header and the sample payloads of one fragment, in file order (not concatenated). */
function buildFragment(sequence: number, active: TrackWriter[], moofOffset: number): Buffer[] {
  const mfhd = fullBox('mfhd', 0, 0, u32(sequence));
  const trafs: Buffer[] = [];
  const dataOffsetPositions: number[] = []; // within the concatenated trafs
  let trafBytes = 0;
  active.forEach((t, index) => {
    const samples = t.fragment;
    const origin = t.origin!;
    const baseTime = samples[0]!.dts - origin;
    if (samples[0]!.keyframe) t.tfra.push({ time: baseTime, moofOffset, trafNumber: index + 1 });
    const tfhd = fullBox('tfhd', 0, 0x020000, u32(t.info.id)); // default-base-is-moof
    const tfdt = fullBox('tfdt', 1, 0, u64(baseTime));
    const rows = Buffer.alloc(samples.length * 16);
    samples.forEach((s, i) => {
      rows.writeUInt32BE(s.duration, i * 16);
      rows.writeUInt32BE(s.data.length, i * 16 + 4);
      rows.writeUInt32BE(s.keyframe ? FLAGS_SYNC : FLAGS_NON_SYNC, i * 16 + 8);
      rows.writeInt32BE(s.cto, i * 16 + 12);
    });
    // version 1: signed composition offsets
    const trun = fullBox('trun', 1, 0x000001 | 0x000100 | 0x000200 | 0x000400 | 0x000800, u32(samples.length), i32(0), rows);
    const traf = box('traf', tfhd, tfdt, trun);
    dataOffsetPositions.push(trafBytes + 8 + tfhd.length + tfdt.length + 16);
    trafs.push(traf);
    trafBytes += traf.length;
  });
  const moof = box('moof', mfhd, ...trafs);
  let dataOffset = moof.length + 8; // first payload byte, relative to the moof start
  const trafStart = 8 + mfhd.length;
  active.forEach((t, i) => {
    moof.writeInt32BE(dataOffset, trafStart + dataOffsetPositions[i]!);
    for (const s of t.fragment) dataOffset += s.data.length;
  });
  const mdatSize = dataOffset - moof.length;
  const mdatHead = Buffer.alloc(8);
  mdatHead.writeUInt32BE(mdatSize, 0);
  mdatHead.write('mdat', 4, 'latin1');
  const parts = [moof, mdatHead];
  for (const t of active) for (const s of t.fragment) if (s.data.length > 0) parts.push(s.data);
  // Keep well inside IOV_MAX (1024) so the fragment stays one writev.
  return parts.length > 512 ? [Buffer.concat(parts)] : parts;
}

function buildMfra(tracks: TrackWriter[]): Buffer {
  const tfras = tracks.map((t) => {
    const rows = t.tfra.map((e) => Buffer.concat([u64(e.time), u64(e.moofOffset), u8(e.trafNumber), u8(1), u8(1)]));
    // length_size_of_traf_num / trun_num / sample_num = 0 -> one byte each
    return fullBox('tfra', 1, 0, u32(t.info.id), u32(0), u32(rows.length), ...rows);
  });
  const mfroSize = 16;
  let size = 8 + mfroSize;
  for (const b of tfras) size += b.length;
  return box('mfra', ...tfras, fullBox('mfro', 0, 0, u32(size)));
}

function u8(v: number): Buffer {
  return Buffer.from([v & 0xff]);
}

// ---- recovery ----

export type RecoverResult =
  | ({ ok: true } & Fmp4WriterResult & { droppedBytes: number })
  | { ok: false; partialPath: string; reason: string };

/**
 * Finishes a `.partial` left by a crash: its complete fragments are re-muxed into the final file
 * (the name without `.partial`) and the `.partial` is removed. A partial with no complete fragment, or
 * one whose header cannot be read, is reported and left in place for inspection.
 */
export async function recoverPartial(partialPath: string, opts: Fmp4WriterOptions = {}): Promise<RecoverResult> {
  if (!partialPath.endsWith('.partial')) return { ok: false, partialPath, reason: 'not a .partial file' };
  // Only files we wrote: a symlink planted under a clip's name must not pull another file into the sink.
  if (!(await lstat(partialPath).then((st) => st.isFile(), () => false))) return { ok: false, partialPath, reason: 'not a regular file' };
  const finalPath = partialPath.slice(0, -'.partial'.length);
  if (finalPath.endsWith(RECOVERY_SUFFIX)) {
    // Our own temp from a recovery that was itself interrupted; the original .partial is still there.
    await unlink(partialPath).catch(() => undefined);
    return { ok: false, partialPath, reason: 'stale recovery temp file (removed)' };
  }
  // Re-mux into a temp name first: the crashed .partial stays untouched until the result is complete.
  const tempPath = finalPath + RECOVERY_SUFFIX;
  await unlink(tempPath + '.partial').catch(() => undefined);
  const state: { tracks: TrackInfo[] | null; writer: Fmp4Writer | null; failure: string | null } = {
    tracks: null,
    writer: null,
    failure: null,
  };
  const queue: Sample[] = [];
  const parser = new Fmp4Parser((item) => {
    if (item.kind === 'init') {
      if (state.tracks) throw new Error('a second moov (re-initialised clips are not recoverable)');
      state.tracks = item.tracks;
    } else queue.push(item.sample);
  });
  try {
    const size = (await stat(partialPath)).size;
    for await (const chunk of createReadStream(partialPath, { highWaterMark: 1 << 20 })) {
      try {
        parser.push(chunk as Buffer);
      } catch (err) {
        state.failure = (err as Error).message; // garbage after the last good fragment: stop there
      }
      if (queue.length > 0 && state.tracks) {
        state.writer ??= await Fmp4Writer.open(tempPath, state.tracks, opts);
        for (const s of queue.splice(0)) await state.writer.write(s);
      }
      if (state.failure) break;
    }
    if (!state.writer) {
      return { ok: false, partialPath, reason: state.failure ?? (state.tracks ? 'no complete fragment' : 'no readable header') };
    }
    const result = await state.writer.close();
    await rename(tempPath, finalPath);
    await unlink(partialPath);
    return { ok: true, ...result, path: finalPath, droppedBytes: size - parser.bytesConsumed };
  } catch (err) {
    if (state.writer) await state.writer.abort().catch(() => undefined);
    await unlink(tempPath + '.partial').catch(() => undefined);
    return { ok: false, partialPath, reason: (err as Error).message };
  }
}

const RECOVERY_SUFFIX = '.recovering';
