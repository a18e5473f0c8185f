/**
 * Streaming parser for the fragmented MP4 that ffmpeg writes to a pipe.
 *
 * Push bytes in any chunking; the parser hands out, through the `onItem` callback:
 *   {kind:'init', tracks}  for every moov (a second moov, e.g. after a codec change, re-initialises);
 *   {kind:'sample', sample} for every sample of a moof+mdat pair, in decode order within the fragment.
 *
 * Timestamps: `dts`/`pts` are in the track timescale on the *presentation* timeline, i.e. the track's
 * edit list has been applied the way ffmpeg/ffprobe apply it (leading empty edits delay the track, the
 * first real edit's media_time is subtracted). This matters because ffmpeg's mp4 muxer shifts a B-frame
 * track so that its first dts is 0 and records the shift in the edit list (`delay_moov`): only with the
 * edit list applied do the copied samples and the decoded frames of the same ffmpeg child carry the
 * same pts. `pts90k = toTicks90k(pts, timescale)`: the parser adds no epoch; the caller maps stream time
 * zero onto the graph's timeline.
 *
 * Robustness: every top-level box is bounded by `maxBoxBytes` (default 64 MiB) before any byte of it is
 * buffered, every child box must fit inside its parent, and each step consumes at least one box header,
 * so garbage input ends in an `Mp4FormatError` (thrown from `push`) rather than a loop or unbounded
 * memory. After an error the parser stays failed. Composition offsets of trun version 0 are read as
 * signed, as ffmpeg does, because writers put negative offsets in v0 runs in practice.
 * Only the first sample description of each track is used (ffmpeg writes exactly one).
 */

import { Mp4FormatError, childBoxes, findChild, fourcc, readU64, requireBytes, type BoxRef } from './mp4-boxes.js';
import { avcCodecString, hevcCodecString } from './h264.js';
import { toTicks90k, type Codec, type MediaKind, type Sample, type TrackInfo } from './sample.js';

export { Mp4FormatError } from './mp4-boxes.js';

export type Fmp4Item = { kind: 'init'; tracks: TrackInfo[] } | { kind: 'sample'; sample: Sample };

export interface Fmp4ParserOptions {
  /** Upper bound for any top-level box (moov, moof, mdat…). Default 64 MiB. */
  maxBoxBytes?: number;
  /**
   * The chunks given to push() are handed over: each sample's data may then be a view into the chunk
   * it arrived in (no copy), which keeps that chunk alive as long as the sample, and the consumer may
   * modify the sample bytes in place. For large samples from a pipe (decoded pictures: one picture is
   * most of a 64 KiB read), not for small encoded samples held in a pre-roll buffer. Default false:
   * samples never share memory with the pushed chunks.
   */
  adoptChunks?: boolean;
}

export const DEFAULT_MAX_BOX_BYTES = 64 * 1024 * 1024;

/** trex / tfhd defaults for one track. */
interface SampleDefaults {
  duration: number;
  size: number;
  flags: number;
}

interface TrackState {
  info: TrackInfo;
  trex: SampleDefaults;
  /** Added to media times to get presentation times (empty edits minus the first edit's media_time). */
  shift: number;
  /** Media decode time following the last sample seen; used when a traf has no tfdt. */
  nextDts: number;
}

/** A sample described by a moof whose bytes are expected in the following mdat. */
interface PendingSample {
  track: TrackState;
  /** Absolute stream offset of the payload. */
  offset: number;
  size: number;
  dts: number;
  pts: number;
  duration: number;
  keyframe: boolean;
}

const SAMPLE_IS_NON_SYNC = 0x00010000;
/** Below this a spanning box is assembled in Node's shared pool (a view would pin the pool slab). */
const OWNED_MIN_BYTES = 4096;

export class Fmp4Parser {
  private readonly maxBoxBytes: number;
  private readonly adoptChunks: boolean;
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Absolute stream offset of the first buffered byte. */
  private streamPos = 0;
  private movieTimescale = 1000;
  private tracks = new Map<number, TrackState>();
  private pending: PendingSample[] | null = null;
  private failed: Error | null = null;
  private inCallback = false;
  /** Whether the last take() returned a buffer of its own (see take). */
  private lastTakeOwned = false;

  constructor(
    private readonly onItem: (item: Fmp4Item) => void,
    opts: Fmp4ParserOptions = {},
  ) {
    this.maxBoxBytes = opts.maxBoxBytes ?? DEFAULT_MAX_BOX_BYTES;
    this.adoptChunks = opts.adoptChunks ?? false;
  }

  /** Bytes consumed so far (complete top-level boxes). */
  get bytesConsumed(): number {
    return this.streamPos;
  }

  /** Bytes buffered waiting for the rest of a box. */
  get bytesBuffered(): number {
    return this.buffered;
  }

  push(chunk: Buffer): void {
    if (this.failed) throw this.failed;
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    try {
      this.drain();
    } catch (err) {
      if (this.inCallback) {
        // The consumer's own error: pass it through untouched (the parser is still unusable now,
        // because it stopped in the middle of a fragment).
        this.inCallback = false;
        this.failed = err instanceof Error ? err : new Error(String(err));
        throw err;
      }
      // Anything else (a bounds error from a field read, a bad codec record) is malformed input too.
      this.failed =
        err instanceof Mp4FormatError
          ? err
          : new Mp4FormatError(`malformed input near offset ${this.streamPos}: ${err instanceof Error ? err.message : String(err)}`);
      this.chunks = [];
      this.buffered = 0;
      throw this.failed;
    }
  }

  /** Signals end of stream; throws when it cut a box (or a fragment's mdat) short. */
  end(): void {
    if (this.failed) throw this.failed;
    if (this.buffered > 0) {
      throw new Mp4FormatError(`stream ended inside a box: ${this.buffered} bytes of an incomplete box at offset ${this.streamPos}`);
    }
    if (this.pending) throw new Mp4FormatError('stream ended after a moof without its mdat');
  }

  private drain(): void {
    for (;;) {
      if (this.buffered < 8) return;
      const head = this.peek(Math.min(16, this.buffered));
      let size = head.readUInt32BE(0);
      const type = fourcc(head, 4);
      let headerSize = 8;
      if (size === 1) {
        if (head.length < 16) return;
        const large = head.readBigUInt64BE(8);
        if (large > BigInt(this.maxBoxBytes)) this.tooLarge(type, large);
        size = Number(large);
        headerSize = 16;
      } else if (size === 0) {
        throw new Mp4FormatError(`top-level '${printable(type)}' at offset ${this.streamPos} has size 0 (to end of file), which a stream cannot carry`);
      }
      if (size < headerSize) throw new Mp4FormatError(`top-level '${printable(type)}' at offset ${this.streamPos} has invalid size ${size}`);
      if (size > this.maxBoxBytes) this.tooLarge(type, size);
      if (!/^[\x20-\x7e]{4}$/.test(type)) throw new Mp4FormatError(`garbage at offset ${this.streamPos}: box type ${JSON.stringify(type)} is not printable`);
      if (this.buffered < size) return;
      const start = this.streamPos;
      const buf = this.take(size);
      this.handleTopLevel({ type, start: 0, body: headerSize, end: size }, buf, start);
    }
  }

  private emit(item: Fmp4Item): void {
    this.inCallback = true;
    this.onItem(item);
    this.inCallback = false;
  }

  private tooLarge(type: string, size: number | bigint): never {
    throw new Mp4FormatError(`top-level '${printable(type)}' at offset ${this.streamPos} is ${size} bytes, above the ${this.maxBoxBytes}-byte limit`);
  }

  /** The first n buffered bytes without consuming them (n small). */
  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    return Buffer.concat(this.chunks, Math.min(this.buffered, Math.max(n, 0))).subarray(0, n);
  }

  /**
   * Consumes exactly n buffered bytes (n <= buffered). The result is a view into the pushed chunk when
   * the box lies in one chunk, else a copy; `lastTakeOwned` is set when that copy is an unpooled
   * buffer of exactly n bytes that nothing else references (n ≥ OWNED_MIN_BYTES).
   */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    this.lastTakeOwned = false;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      // Large boxes get an unpooled buffer, which a sample may then keep as a view (see emitSamples).
      this.lastTakeOwned = n >= OWNED_MIN_BYTES;
      out = this.lastTakeOwned ? Buffer.allocUnsafeSlow(n) : Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const c = this.chunks[0]!;
        const use = Math.min(c.length, n - filled);
        c.copy(out, filled, 0, use);
        filled += use;
        if (use === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(use);
      }
    }
    this.buffered -= n;
    this.streamPos += n;
    return out;
  }

  private handleTopLevel(ref: BoxRef, buf: Buffer, absStart: number): void {
    switch (ref.type) {
      case 'moov':
        if (this.pending) throw new Mp4FormatError('moov between a moof and its mdat');
        this.emit({ kind: 'init', tracks: this.parseMoov(buf, ref) });
        return;
      case 'moof':
        if (this.tracks.size === 0) throw new Mp4FormatError(`moof at offset ${absStart} before any moov`);
        if (this.pending) throw new Mp4FormatError(`moof at offset ${absStart} follows a moof whose mdat never came`);
        this.pending = this.parseMoof(buf, ref, absStart);
        return;
      case 'mdat':
        if (this.pending) {
          const pending = this.pending;
          this.pending = null;
          this.emitSamples(pending, buf, absStart, ref.body, this.lastTakeOwned);
        }
        return; // an mdat no moof points at (e.g. a progressive file) carries nothing we can place
      default:
        return; // ftyp, styp, free, skip, sidx, mfra, uuid, …
    }
  }

  // ---- moov ----

  private parseMoov(buf: Buffer, moov: BoxRef): TrackInfo[] {
    const traks: BoxRef[] = [];
    let mvex: BoxRef | undefined;
    for (const c of childBoxes(buf, moov.body, moov.end, 'moov')) {
      if (c.type === 'mvhd') {
        const v = buf[c.body]!;
        requireBytes(c, v === 1 ? 32 : 20);
        this.movieTimescale = buf.readUInt32BE(c.body + (v === 1 ? 20 : 12)) || 1000;
      } else if (c.type === 'trak') traks.push(c);
      else if (c.type === 'mvex') mvex = c;
    }
    const trex = new Map<number, SampleDefaults>();
    if (mvex) {
      for (const c of childBoxes(buf, mvex.body, mvex.end, 'mvex')) {
        if (c.type !== 'trex') continue;
        requireBytes(c, 24);
        trex.set(buf.readUInt32BE(c.body + 4), {
          duration: buf.readUInt32BE(c.body + 12),
          size: buf.readUInt32BE(c.body + 16),
          flags: buf.readUInt32BE(c.body + 20),
        });
      }
    }
    const states = new Map<number, TrackState>();
    for (const trak of traks) {
      const st = this.parseTrak(buf, trak, trex);
      if (st) states.set(st.info.id, st);
    }
    if (states.size === 0) throw new Mp4FormatError('moov has no usable track');
    this.tracks = states;
    return [...states.values()].map((s) => s.info);
  }

  private parseTrak(buf: Buffer, trak: BoxRef, trex: Map<number, SampleDefaults>): TrackState | null {
    const tkhd = findChild(buf, trak, 'tkhd');
    const mdia = findChild(buf, trak, 'mdia');
    if (!tkhd || !mdia) throw new Mp4FormatError('trak without tkhd or mdia');
    const tkv = buf[tkhd.body]!;
    requireBytes(tkhd, tkv === 1 ? 92 : 80);
    const id = buf.readUInt32BE(tkhd.body + (tkv === 1 ? 20 : 12));
    const tkWidth = buf.readUInt32BE(tkhd.end - 8) >>> 16;
    const tkHeight = buf.readUInt32BE(tkhd.end - 4) >>> 16;

    const mdhd = findChild(buf, mdia, 'mdhd');
    const hdlr = findChild(buf, mdia, 'hdlr');
    const minf = findChild(buf, mdia, 'minf');
    if (!mdhd || !hdlr || !minf) throw new Mp4FormatError(`track ${id}: mdia lacks mdhd, hdlr or minf`);
    const mdv = buf[mdhd.body]!;
    requireBytes(mdhd, mdv === 1 ? 32 : 20);
    const timescale = buf.readUInt32BE(mdhd.body + (mdv === 1 ? 20 : 12));
    if (timescale === 0) throw new Mp4FormatError(`track ${id}: timescale 0`);
    requireBytes(hdlr, 12);
    const handler = fourcc(buf, hdlr.body + 8);
    const kind: MediaKind = handler === 'vide' ? 'video' : handler === 'soun' ? 'audio' : 'application';

    const stbl = findChild(buf, minf, 'stbl');
    const stsd = stbl && findChild(buf, stbl, 'stsd');
    if (!stsd) throw new Mp4FormatError(`track ${id}: no stsd`);
    requireBytes(stsd, 8);
    if (buf.readUInt32BE(stsd.body + 4) < 1) throw new Mp4FormatError(`track ${id}: stsd has no entry`);
    const entryRef = childBoxes(buf, stsd.body + 8, stsd.end, 'stsd').next().value as BoxRef | undefined;
    if (!entryRef) throw new Mp4FormatError(`track ${id}: stsd has no entry`);
    // Copied, not a view: the TrackInfo outlives the moov buffer and goes verbatim into written files.
    const sampleEntry = Buffer.from(buf.subarray(entryRef.start, entryRef.end));
    const desc = describeSampleEntry(sampleEntry, kind);

    const shift = this.editShift(buf, trak, timescale, id);
    const info: TrackInfo = {
      id,
      kind,
      timescale,
      sampleEntry,
      ...desc,
      ...(kind === 'video' && desc.width === undefined && tkWidth ? { width: tkWidth, height: tkHeight } : {}),
    };
    return {
      info,
      trex: trex.get(id) ?? { duration: 0, size: 0, flags: 0 },
      shift,
      nextDts: 0,
    };
  }

  /** Presentation = media time + shift, from the edit list (leading empty edits, then one real edit). */
  private editShift(buf: Buffer, trak: BoxRef, timescale: number, id: number): number {
    const edts = findChild(buf, trak, 'edts');
    const elst = edts && findChild(buf, edts, 'elst');
    if (!elst) return 0;
    requireBytes(elst, 8);
    const v = buf[elst.body]!;
    const count = buf.readUInt32BE(elst.body + 4);
    const entrySize = v === 1 ? 20 : 12;
    if (count > (elst.end - elst.body - 8) / entrySize) throw new Mp4FormatError(`track ${id}: elst entry count ${count} overruns the box`);
    let empty = 0; // movie timescale
    for (let i = 0; i < count; i++) {
      const at = elst.body + 8 + i * entrySize;
      const duration = v === 1 ? readU64(buf, at, 'elst') : buf.readUInt32BE(at);
      const mediaTime = v === 1 ? Number(buf.readBigInt64BE(at + 8)) : buf.readInt32BE(at + 4);
      if (mediaTime === -1) {
        empty += duration;
        continue;
      }
      return Math.round((empty * timescale) / this.movieTimescale) - mediaTime;
    }
    return Math.round((empty * timescale) / this.movieTimescale);
  }

  // ---- moof ----

  private parseMoof(buf: Buffer, moof: BoxRef, absStart: number): PendingSample[] {
    const out: PendingSample[] = [];
    let nextTrafBase = absStart; // implicit base of a traf without base flags: end of previous traf's data
    let firstTraf = true;
    for (const traf of childBoxes(buf, moof.body, moof.end, 'moof')) {
      if (traf.type !== 'traf') continue;
      const tfhd = findChild(buf, traf, 'tfhd');
      if (!tfhd) throw new Mp4FormatError('traf without tfhd');
      requireBytes(tfhd, 8);
      const tf = buf.readUInt32BE(tfhd.body) & 0xffffff;
      const trackId = buf.readUInt32BE(tfhd.body + 4);
      const track = this.tracks.get(trackId);
      if (!track) throw new Mp4FormatError(`traf for unknown track ${trackId}`);
      let p = tfhd.body + 8;
      const need = (tf & 0x1 ? 8 : 0) + (tf & 0x2 ? 4 : 0) + (tf & 0x8 ? 4 : 0) + (tf & 0x10 ? 4 : 0) + (tf & 0x20 ? 4 : 0);
      requireBytes(tfhd, 8 + need);
      let base: number;
      if (tf & 0x1) {
        base = readU64(buf, p, 'tfhd base_data_offset');
        p += 8;
      } else if (tf & 0x20000) base = absStart; // default-base-is-moof
      else base = firstTraf ? absStart : nextTrafBase;
      if (tf & 0x2) p += 4; // sample_description_index: only the first entry is supported
      const defaults: SampleDefaults = { ...track.trex };
      if (tf & 0x8) (defaults.duration = buf.readUInt32BE(p)), (p += 4);
      if (tf & 0x10) (defaults.size = buf.readUInt32BE(p)), (p += 4);
      if (tf & 0x20) (defaults.flags = buf.readUInt32BE(p)), (p += 4);
      firstTraf = false;

      let dts = track.nextDts;
      const tfdt = findChild(buf, traf, 'tfdt');
      if (tfdt) {
        requireBytes(tfdt, 8);
        const v = buf[tfdt.body]!;
        if (v === 1) requireBytes(tfdt, 12);
        dts = v === 1 ? readU64(buf, tfdt.body + 4, 'tfdt') : buf.readUInt32BE(tfdt.body + 4);
      }

      let dataPos = base;
      for (const trun of childBoxes(buf, traf.body, traf.end, 'traf')) {
        if (trun.type !== 'trun') continue;
        requireBytes(trun, 8);
        const rf = buf.readUInt32BE(trun.body) & 0xffffff;
        const count = buf.readUInt32BE(trun.body + 4);
        let q = trun.body + 8;
        const headBytes = (rf & 0x1 ? 4 : 0) + (rf & 0x4 ? 4 : 0);
        const perSample = (rf & 0x100 ? 4 : 0) + (rf & 0x200 ? 4 : 0) + (rf & 0x400 ? 4 : 0) + (rf & 0x800 ? 4 : 0);
        if (trun.end - q < headBytes + count * perSample) {
          throw new Mp4FormatError(`trun of track ${trackId}: ${count} samples overrun the box`);
        }
        if (perSample === 0 && count > 1_000_000) throw new Mp4FormatError(`trun of track ${trackId}: implausible sample count ${count}`);
        if (rf & 0x1) (dataPos = base + buf.readInt32BE(q)), (q += 4);
        let firstFlags: number | undefined;
        if (rf & 0x4) (firstFlags = buf.readUInt32BE(q)), (q += 4);
        for (let i = 0; i < count; i++) {
          let duration = defaults.duration;
          let size = defaults.size;
          let flags = i === 0 && firstFlags !== undefined ? firstFlags : defaults.flags;
          let cto = 0;
          if (rf & 0x100) (duration = buf.readUInt32BE(q)), (q += 4);
          if (rf & 0x200) (size = buf.readUInt32BE(q)), (q += 4);
          if (rf & 0x400) {
            const f = buf.readUInt32BE(q);
            q += 4;
            if (!(i === 0 && firstFlags !== undefined)) flags = f;
          }
          if (rf & 0x800) (cto = buf.readInt32BE(q)), (q += 4);
          if (tf & 0x10000) size = 0; // duration-is-empty
          const keyframe = track.info.kind === 'audio' ? true : (flags & SAMPLE_IS_NON_SYNC) === 0;
          out.push({ track, offset: dataPos, size, dts, pts: dts + cto, duration, keyframe });
          dataPos += size;
          dts += duration;
        }
      }
      track.nextDts = dts;
      nextTrafBase = dataPos;
    }
    return out;
  }

  private emitSamples(pending: PendingSample[], mdat: Buffer, mdatBase: number, headerSize: number, owned: boolean): void {
    const dataStart = mdatBase + headerSize;
    const dataEnd = mdatBase + mdat.length;
    for (const s of pending) {
      if (s.offset < dataStart || s.offset + s.size > dataEnd) {
        throw new Mp4FormatError(
          `track ${s.track.info.id}: sample data [${s.offset}, ${s.offset + s.size}) lies outside the mdat payload [${dataStart}, ${dataEnd})`,
        );
      }
    }
    // Interleave the trafs by decode time; stable, so each track keeps its own order.
    const ordered = pending.length > 1 && new Set(pending.map((s) => s.track)).size > 1
      ? pending
          .map((s, i) => ({ s, i, t: (s.dts + s.track.shift) / s.track.info.timescale }))
          .sort((a, b) => a.t - b.t || a.i - b.i)
          .map((x) => x.s)
      : pending;
    for (const s of ordered) {
      const from = s.offset - mdatBase;
      // A sample kept in a pre-roll buffer must not pin much more memory than its own bytes. When the
      // mdat was assembled into a buffer of its own and the sample is most of it (one video frame per
      // fragment, as ffmpeg writes it here), a view is as good as a copy and saves one; otherwise
      // (a view into a pipe chunk, or a small sample next to larger ones) the bytes are copied out.
      let data: Buffer;
      if (this.adoptChunks || (owned && s.size * 2 >= mdat.length)) {
        data = mdat.subarray(from, from + s.size);
      } else {
        // Small samples come from Node's shared 8 KiB pool (no ArrayBuffer of their own); a sample
        // then shares its slab only with neighbouring allocations, which leave the buffer with it.
        data = s.size < OWNED_MIN_BYTES ? Buffer.allocUnsafe(s.size) : Buffer.allocUnsafeSlow(s.size);
        mdat.copy(data, 0, from, from + s.size);
      }
      const dts = s.dts + s.track.shift;
      const pts = s.pts + s.track.shift;
      this.emit({
        kind: 'sample',
        sample: {
          track: s.track.info,
          dts,
          pts,
          duration: s.duration,
          keyframe: s.keyframe,
          pts90k: toTicks90k(pts, s.track.info.timescale),
          data,
        },
      });
    }
  }
}

function printable(type: string): string {
  return /^[\x20-\x7e]{4}$/.test(type) ? type : JSON.stringify(type);
}

interface EntryDescription {
  codec: Codec;
  codecString: string;
  width?: number;
  height?: number;
  sampleRate?: number;
  channels?: number;
}

const VISUAL_ENTRY_HEADER = 78; // after the 8-byte box header (ISO/IEC 14496-12 VisualSampleEntry)

/** Codec, codec string and geometry from a complete sample entry box. */
export function describeSampleEntry(entry: Buffer, kind: MediaKind): EntryDescription {
  const type = fourcc(entry, 4);
  if (type === 'avc1' || type === 'avc3' || type === 'hvc1' || type === 'hev1' || kind === 'video') {
    if (entry.length < 8 + VISUAL_ENTRY_HEADER) throw new Mp4FormatError(`sample entry '${printable(type)}' too short`);
    const width = entry.readUInt16BE(8 + 24);
    const height = entry.readUInt16BE(8 + 26);
    const children = { type, start: 0, body: 8 + VISUAL_ENTRY_HEADER, end: entry.length };
    if (type === 'avc1' || type === 'avc3') {
      const avcC = findChild(entry, children, 'avcC');
      if (!avcC) throw new Mp4FormatError(`'${type}' sample entry without avcC`);
      return { codec: 'h264', codecString: avcCodecString(entry.subarray(avcC.body, avcC.end), type), width, height };
    }
    if (type === 'hvc1' || type === 'hev1') {
      const hvcC = findChild(entry, children, 'hvcC');
      if (!hvcC) throw new Mp4FormatError(`'${type}' sample entry without hvcC`);
      return { codec: 'hevc', codecString: hevcCodecString(entry.subarray(hvcC.body, hvcC.end), type), width, height };
    }
    return { codec: 'other', codecString: type.trim() || type, width, height };
  }
  if (kind === 'audio') {
    if (entry.length < 36) throw new Mp4FormatError(`sample entry '${printable(type)}' too short`);
    // QuickTime sound description versions 1 and 2 carry 16 / 36 extra bytes before the child boxes.
    const version = entry.readUInt16BE(16);
    const channels = entry.readUInt16BE(24);
    let sampleRate = entry.readUInt32BE(32) >>> 16;
    let childStart = 36 + (version === 1 ? 16 : version === 2 ? 36 : 0);
    if (version === 2 && entry.length >= 72) {
      sampleRate = Math.round(entry.readDoubleBE(40));
    }
    childStart = Math.min(childStart, entry.length);
    if (type === 'mp4a') {
      const esds = findChild(entry, { type, start: 0, body: childStart, end: entry.length }, 'esds');
      const codecString = esds ? esdsCodecString(entry.subarray(esds.body + 4, esds.end)) : 'mp4a.40.2';
      return { codec: codecString.startsWith('mp4a.40') ? 'aac' : 'other', codecString, sampleRate, channels };
    }
    if (type === 'Opus') {
      const dOps = findChild(entry, { type, start: 0, body: childStart, end: entry.length }, 'dOps');
      if (dOps && dOps.end - dOps.body >= 8) sampleRate = entry.readUInt32BE(dOps.body + 4) || sampleRate;
      return { codec: 'opus', codecString: 'opus', sampleRate, channels };
    }
    return { codec: 'other', codecString: type.trim() || type, sampleRate, channels };
  }
  return { codec: 'other', codecString: type.trim() || type };
}

/** `mp4a.OO[.A]` from an ES_Descriptor (esds body after version/flags). */
function esdsCodecString(es: Buffer): string {
  // Descriptors: tag (1 byte), size (1-4 bytes, 7 bits each), payload.
  let pos = 0;
  const readDesc = (): { tag: number; start: number; end: number } | null => {
    if (pos >= es.length) return null;
    const tag = es[pos++]!;
    let size = 0;
    for (let i = 0; i < 4 && pos < es.length; i++) {
      const b = es[pos++]!;
      size = (size << 7) | (b & 0x7f);
      if (!(b & 0x80)) break;
    }
    const start = pos;
    return { tag, start, end: Math.min(es.length, start + size) };
  };
  const esd = readDesc();
  if (!esd || esd.tag !== 0x03) return 'mp4a.40.2';
  const flags = es[esd.start + 2] ?? 0;
  pos = esd.start + 3 + (flags & 0x80 ? 2 : 0);
  if (flags & 0x40) pos += 1 + (es[pos] ?? 0);
  if (flags & 0x20) pos += 2;
  const dcd = readDesc();
  if (!dcd || dcd.tag !== 0x04) return 'mp4a.40.2';
  const oti = es[dcd.start] ?? 0x40;
  pos = dcd.start + 13;
  const dsi = pos < dcd.end ? readDesc() : null;
  if (oti === 0x40 && dsi && dsi.tag === 0x05 && dsi.end > dsi.start) {
    let aot = es[dsi.start]! >> 3;
    if (aot === 31 && dsi.end - dsi.start >= 2) aot = 32 + (((es[dsi.start]! & 0x07) << 3) | (es[dsi.start + 1]! >> 5));
    return `mp4a.40.${aot}`;
  }
  return `mp4a.${oti.toString(16)}`;
}

/** Parses a whole readable byte stream; yields items as they complete. */
export async function* parseFmp4Stream(
  stream: AsyncIterable<Buffer | string>,
  opts: Fmp4ParserOptions = {},
): AsyncGenerator<Fmp4Item> {
  const items: Fmp4Item[] = [];
  const parser = new Fmp4Parser((it) => items.push(it), opts);
  for await (const chunk of stream) {
    parser.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    for (const it of items.splice(0)) yield it;
  }
  parser.end();
  for (const it of items.splice(0)) yield it;
}
