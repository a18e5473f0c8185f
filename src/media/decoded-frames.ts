/**
 * Reads the decoded-picture pipe of the ingest ffmpeg (pipe:3, see ffmpeg-args.ts): fragmented MOV with
 * one gray rawvideo track. Each sample is one W*H-byte picture; its pts90k comes from the same edit-list
 * aware timing as the copied samples on pipe:1, so a Frame's pts90k equals the pts90k of the encoded
 * sample it was decoded from.
 *
 * QuickTime stores 8-bit grayscale ('raw ' with depth 40) with 0 = white, so ffmpeg's mov muxer writes
 * the luma inverted; we invert it back (measured: every byte of a frame equals 255 - the rawvideo
 * decode of the same picture). A 'raw ' entry with any other depth is taken as plain luma.
 */

import { Fmp4Parser, Mp4FormatError, type Fmp4ParserOptions } from './fmp4-parser.js';
import type { Frame, TrackInfo } from './sample.js';

export class DecodedFrameParser {
  private readonly parser: Fmp4Parser;
  private track: TrackInfo | null = null;
  private inverted = false;

  constructor(
    private readonly onFrame: (frame: Frame) => void,
    opts: Fmp4ParserOptions = {},
  ) {
    this.parser = new Fmp4Parser((item) => {
      if (item.kind === 'init') {
        const video = item.tracks.find((t) => t.kind === 'video');
        if (!video || !video.width || !video.height) {
          throw new Mp4FormatError('decoded-frame stream has no video track with a size');
        }
        this.track = video;
        this.inverted = isQuickTimeGray(video.sampleEntry);
        return;
      }
      const s = item.sample;
      const track = this.track;
      if (!track || s.track.id !== track.id) return;
      const width = track.width!;
      const height = track.height!;
      if (s.data.length !== width * height) {
        throw new Mp4FormatError(`decoded frame has ${s.data.length} bytes, expected ${width}x${height} gray = ${width * height}`);
      }
      const data = s.data;
      if (this.inverted) invertBytes(data);
      this.onFrame({ pts90k: s.pts90k, width, height, format: 'gray', data });
    }, opts);
  }

  /** Current picture size, known after the init segment. */
  get size(): { width: number; height: number } | null {
    return this.track ? { width: this.track.width!, height: this.track.height! } : null;
  }

  push(chunk: Buffer): void {
    this.parser.push(chunk);
  }

  end(): void {
    this.parser.end();
  }
}

const QT_GRAY_DEPTH = 40;
const DEPTH_OFFSET = 8 + 74; // VisualSampleEntry: box header + fields before `depth`

function isQuickTimeGray(entry: Buffer): boolean {
  return entry.length >= DEPTH_OFFSET + 2 && entry.toString('latin1', 4, 8) === 'raw ' && entry.readUInt16BE(DEPTH_OFFSET) === QT_GRAY_DEPTH;
}

/** x -> 255 - x in place, a 32-bit word at a time (NOT of a byte is 255 - byte); bytes before the
 * first 4-byte boundary and after the last are done one by one. */
function invertBytes(data: Buffer): void {
  const head = Math.min(data.length, (4 - (data.byteOffset % 4)) % 4);
  for (let i = 0; i < head; i++) data[i] = 255 - data[i]!;
  const words = (data.length - head) >>> 2;
  if (words > 0) {
    const view = new Int32Array(data.buffer, data.byteOffset + head, words);
    for (let i = 0; i < words; i++) view[i] = ~view[i]!;
  }
  for (let i = head + words * 4; i < data.length; i++) data[i] = 255 - data[i]!;
}

/** Async-iterates the Frames of a decoded-frame byte stream. */
export async function* readDecodedFrames(stream: AsyncIterable<Buffer | string>): AsyncGenerator<Frame> {
  const frames: Frame[] = [];
  const parser = new DecodedFrameParser((f) => frames.push(f));
  for await (const chunk of stream) {
    parser.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    for (const f of frames.splice(0)) yield f;
  }
  parser.end();
  for (const f of frames.splice(0)) yield f;
}

/** One picture of an image output (an extension's scaled + encoded image), before it joins its Frame. */
export interface RawImageSample {
  pts90k: number;
  width: number;
  height: number;
  data: Buffer;
}

/**
 * Reads one extension-image pipe of the ingest ffmpeg (pipe:4…, see ffmpeg-args.ts pictureOutputs):
 * fragmented MOV with one video track whose samples are complete images (JPEG, PNG or BMP files, or
 * raw pixel buffers, byte-exact as ffmpeg's encoder wrote them). pts90k is on the same timeline as
 * the copied samples and the gray frames.
 */
export class ImageStreamParser {
  private readonly parser: Fmp4Parser;
  private track: TrackInfo | null = null;

  constructor(onImage: (image: RawImageSample) => void, opts: Fmp4ParserOptions = {}) {
    this.parser = new Fmp4Parser((item) => {
      if (item.kind === 'init') {
        const video = item.tracks.find((t) => t.kind === 'video');
        if (!video || !video.width || !video.height) throw new Mp4FormatError('image stream has no video track with a size');
        this.track = video;
        return;
      }
      const s = item.sample;
      const track = this.track;
      if (!track || s.track.id !== track.id) return;
      onImage({ pts90k: s.pts90k, width: track.width!, height: track.height!, data: s.data });
    }, opts);
  }

  push(chunk: Buffer): void {
    this.parser.push(chunk);
  }

  end(): void {
    this.parser.end();
  }
}
