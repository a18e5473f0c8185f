/**
 * Command line of the ingest ffmpeg child: one process reads the camera (or a file), stream-copies the
 * encoded samples as fragmented MP4 to pipe:1 and, when motion analysis needs pictures, decodes a
 * small gray copy to pipe:3 in the same container form, so one parser (Fmp4Parser) reads both.
 *
 * Why these flags:
 * - `-frag_duration 1` (1 µs): a fragment is cut as soon as the next packet arrives, i.e. one moof+mdat
 *   per video frame (audio packets ride along), so a sample reaches us as soon as ffmpeg has it
 *   (frag_keyframe would hold a whole GOP, 2–4 s, before the signal gate sees anything). The overhead is
 *   a ~100-byte moof per frame; parsing it is far below the cost of the pipe wake-up itself.
 *   Not `frag_every_frame`: in ffmpeg 5.1 it writes wrong tfdt for an interleaved AAC track (measured:
 *   audio pts -1024, 1024, 1024, 3072, 3072… instead of -1024, 0, 1024, 2048…); frag_duration does not.
 * - `empty_moov+delay_moov`: the init segment is sent with the first fragment, so ffmpeg knows the first
 *   timestamps and records its B-frame dts shift in the edit list. Without delay_moov the copy track is
 *   shifted silently (first dts forced to 0) and its pts no longer equal the decoded frames' pts.
 * - `default_base_moof`: fragment offsets relative to their moof, so every fragment is self-contained.
 * - `-video_track_timescale 90000` on both outputs: the graph timeline's unit; both outputs rescale from
 *   the same input time base with the same rounding, so copied samples and decoded frames carry
 *   identical 90 kHz pts.
 * - `-copyts`: keep the input's timestamps on both outputs (no start-time subtraction), so a frame's pts
 *   is the pts of the packet it was decoded from.
 * - `-flush_packets 1`: push each fragment into the pipe immediately instead of filling a 32 KiB buffer.
 * - Decode branch (perf.md §3, cheapest valid options): `-threads 1 -skip_loop_filter all -flags2 fast`
 *   and `scale=W:H:flags=fast_bilinear,format=gray` (scale before format); `-fps_mode passthrough` so
 *   frames are never duplicated or dropped to make a constant rate. Gray raw video goes into `-f mov`
 *   (the mp4 muxer refuses rawvideo), as a 'raw ' sample entry whose samples are W*H bytes.
 * - Decoder options placed before `-i` only affect decoding; the copy output never decodes.
 */

import { resolve as resolvePath } from 'node:path';

export interface IngestArgsOptions {
  input: string;
  inputKind: 'rtsp' | 'file';
  /** RTSP lower transport; default tcp (UDP loses packets on busy networks and through NAT). */
  rtspTransport?: 'tcp' | 'http';
  /** Read a file input at its native rate (-re), to simulate a live camera. */
  realtime?: boolean;
  /** Also decode a gray picture of this size to pipe:3 (optionally rate-limited to `fps`). Width and
   * height 0 with `images`: no gray copy, only the images. */
  decode?: { width: number; height: number; fps?: number; images?: readonly ImageOutputSpec[] };
  /** Copy the first audio stream too (when the input has one). It must be AAC (or another mp4 codec). */
  audio: boolean;
  /** RTSP socket I/O timeout, µs-resolution option `-timeout` of ffmpeg 5.1's rtsp demuxer. Default 5 s. */
  rtspTimeoutMs?: number;
}

const FRAGMENT_FLAGS = 'empty_moov+delay_moov+default_base_moof';

export class IngestArgsError extends Error {
  override readonly name = 'IngestArgsError';
}

/** argv for ffmpeg (without the program name). Never passed through a shell. */
export function buildIngestArgs(opts: IngestArgsOptions): string[] {
  const input = checkedInput(opts.input, opts.inputKind);
  const args = ['-nostdin', '-hide_banner', '-loglevel', 'error'];
  if (opts.inputKind === 'rtsp') {
    const transport = opts.rtspTransport ?? 'tcp';
    if (transport !== 'tcp' && transport !== 'http') throw new IngestArgsError(`unsupported RTSP transport ${String(transport)}`);
    const timeoutMs = opts.rtspTimeoutMs ?? 5000;
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new IngestArgsError('rtspTimeoutMs must be a positive integer');
    args.push('-rtsp_transport', transport, '-timeout', String(timeoutMs * 1000));
  } else if (opts.realtime) {
    args.push('-re');
  }
  const images = opts.decode?.images ?? [];
  if (opts.decode && images.length === 0) {
    args.push('-threads', '1', '-skip_loop_filter', 'all', '-flags2', 'fast');
  } else if (opts.decode) {
    // Images go to an inference model: decode properly (no skipped loop filter), still one thread.
    args.push('-threads', '1');
  }
  // Only the protocols the input kind needs: nothing an input URL could use to read local files (file:,
  // concat:, subfile:, pipe:, data:) or reach other services.
  args.push('-protocol_whitelist', opts.inputKind === 'rtsp' ? 'rtsp,rtsps,rtp,tcp,udp,tls,http,https' : 'file');
  args.push('-copyts', '-i', input);

  // Output 1: stream copy of the encoded samples.
  args.push('-map', '0:v:0');
  if (opts.audio) args.push('-map', '0:a:0?');
  args.push(
    '-c', 'copy',
    '-video_track_timescale', '90000',
    '-f', 'mp4', '-movflags', FRAGMENT_FLAGS, '-frag_duration', '1', '-flush_packets', '1',
    'pipe:1',
  );

  if (opts.decode && images.length > 0) {
    args.push(...pictureOutputs(opts.decode, images));
    return args;
  }

  // Output 2: small gray pictures for analysis.
  if (opts.decode) {
    const { width, height, fps } = opts.decode;
    for (const [name, v] of [['width', width], ['height', height]] as const) {
      if (!Number.isInteger(v) || v < 16 || v > 4096 || v % 2 !== 0) {
        throw new IngestArgsError(`decode ${name} must be an even integer in 16..4096, got ${v}`);
      }
    }
    if (fps !== undefined && !(Number.isFinite(fps) && fps > 0 && fps <= 120)) {
      throw new IngestArgsError(`decode fps must be in (0, 120], got ${fps}`);
    }
    const filters = [
      ...(fps !== undefined ? [`fps=${fps}`] : []),
      `scale=${width}:${height}:flags=fast_bilinear`,
      'format=gray',
    ];
    args.push(
      '-map', '0:v:0',
      '-vf', filters.join(','),
      '-c:v', 'rawvideo', '-pix_fmt', 'gray', '-fps_mode', 'passthrough',
      '-video_track_timescale', '90000',
      '-f', 'mov', '-movflags', FRAGMENT_FLAGS, '-frag_duration', '1', '-flush_packets', '1',
      'pipe:3',
    );
  }
  return args;
}

/** Container flags of every picture output (see the header comment). */
function pictureMuxer(fd: number): string[] {
  return ['-fps_mode', 'passthrough', '-video_track_timescale', '90000',
    '-f', 'mov', '-movflags', FRAGMENT_FLAGS, '-frag_duration', '1', '-flush_packets', '1', `pipe:${fd}`];
}

/**
 * Gray analysis pictures and extension images from one decode: the rate (the fastest any consumer
 * can use, rateSelect) is applied once, before `split`, so every output carries exactly the same
 * pictures with the same pts and the source can join them into one Frame. Outputs: gray (if wanted) on pipe:3, then
 * each image in order on the next fds.
 */
function pictureOutputs(decode: NonNullable<IngestArgsOptions['decode']>, images: readonly ImageOutputSpec[]): string[] {
  const gray = decode.width > 0 || decode.height > 0;
  if (gray) checkGraySize(decode.width, decode.height);
  checkFps(decode.fps);
  const branches = images.length + (gray ? 1 : 0);
  if (images.length > MAX_IMAGE_OUTPUTS) throw new IngestArgsError(`at most ${MAX_IMAGE_OUTPUTS} distinct image outputs, got ${images.length}`);
  const head = `[0:v:0]${decode.fps !== undefined ? `${rateSelect(decode.fps)},` : ''}`;
  const labels = Array.from({ length: branches }, (_, i) => `p${i}`);
  const chains: string[] = [branches > 1 ? `${head}split=${branches}${labels.map((l) => `[${l}]`).join('')}` : `${head}null[p0]`];
  const outputs: string[] = [];
  let branch = 0;
  let fd = 3;
  if (gray) {
    chains.push(`[p${branch++}]scale=${decode.width}:${decode.height}:flags=fast_bilinear,format=gray[gray]`);
    outputs.push('-map', '[gray]', '-c:v', 'rawvideo', '-pix_fmt', 'gray', ...pictureMuxer(fd++));
  }
  images.forEach((img, i) => {
    const enc = imageEncoding(img);
    chains.push(`[p${branch++}]${imageFilters(img, enc.pixelFormat)}[img${i}]`);
    outputs.push('-map', `[img${i}]`, ...enc.args, ...pictureMuxer(fd++));
  });
  return ['-filter_complex', chains.join(';'), ...outputs];
}

/**
 * Keeps the first picture of every 1/fps-second slot of media time (10 µs of slack for rounded pts) —
 * the rule of extension/sampling.ts RateLimiter. Unlike `fps=`, which re-times pictures onto its own
 * grid (a picture labelled 2.0 s may show 2.08 s), `select` keeps each picture's own pts, so an
 * inference is dated exactly at the frame it is about.
 */
export function rateSelect(fps: number): string {
  return `select='isnan(prev_selected_t)+gt(floor((t+0.00001)*${fps}),floor((prev_selected_t+0.00001)*${fps}))'`;
}

function checkGraySize(width: number, height: number): void {
  for (const [name, v] of [['width', width], ['height', height]] as const) {
    if (!Number.isInteger(v) || v < 16 || v > 4096 || v % 2 !== 0) {
      throw new IngestArgsError(`decode ${name} must be an even integer in 16..4096, got ${v}`);
    }
  }
}

function checkFps(fps: number | undefined): void {
  if (fps !== undefined && !(Number.isFinite(fps) && fps > 0 && fps <= 120)) {
    throw new IngestArgsError(`decode fps must be in (0, 120], got ${fps}`);
  }
}

const MAX_IMAGE_OUTPUTS = 8;

/** An extension's image (lva-spec §2.3 Image) as the source's ffmpeg must produce it. */
export interface ImageOutputSpec {
  scale?: { mode: 'PreserveAspectRatio' | 'Pad' | 'Stretch'; width?: number; height?: number };
  format:
    | { encoding: 'Jpeg'; quality?: number }
    | { encoding: 'Bmp' }
    | { encoding: 'Png' }
    | { encoding: 'Raw'; pixelFormat: string };
}

/** LVA raw pixel format name → ffmpeg pix_fmt (lva-spec §2.3, all eleven). */
export const RAW_PIXEL_FORMATS: Readonly<Record<string, string>> = {
  Yuv420p: 'yuv420p', Rgb565be: 'rgb565be', Rgb565le: 'rgb565le', Rgb555be: 'rgb555be', Rgb555le: 'rgb555le',
  Rgb24: 'rgb24', Bgr24: 'bgr24', Argb: 'argb', Rgba: 'rgba', Abgr: 'abgr', Bgra: 'bgra',
};

/** JPEG quality when the topology gives none (LVA's default is undocumented). */
export const DEFAULT_JPEG_QUALITY = 90;

/** LVA quality 0..100 (100 best) → ffmpeg mjpeg -q:v 31..2 (2 best). */
export function jpegQscale(quality: number): number {
  return Math.round(2 + ((100 - quality) * 29) / 100);
}

export interface ImageEncoding {
  /** ffmpeg pixel format the picture is converted to before padding and encoding. */
  pixelFormat: string;
  contentType: string;
  args: string[];
}

export function imageEncoding(img: ImageOutputSpec): ImageEncoding {
  const f = img.format;
  switch (f.encoding) {
    case 'Jpeg': {
      const q = f.quality ?? DEFAULT_JPEG_QUALITY;
      if (!Number.isInteger(q) || q < 0 || q > 100) throw new IngestArgsError(`JPEG quality must be an integer 0..100, got ${q}`);
      return { pixelFormat: 'yuvj420p', contentType: 'image/jpeg', args: ['-c:v', 'mjpeg', '-pix_fmt', 'yuvj420p', '-q:v', String(jpegQscale(q))] };
    }
    case 'Png':
      return { pixelFormat: 'rgb24', contentType: 'image/png', args: ['-c:v', 'png', '-pix_fmt', 'rgb24', '-compression_level', '3'] };
    case 'Bmp':
      // mov has no tag for BMP; any tag does, we read the samples back ourselves.
      return { pixelFormat: 'bgr24', contentType: 'image/bmp', args: ['-c:v', 'bmp', '-pix_fmt', 'bgr24', '-tag:v', 'bmp '] };
    case 'Raw': {
      const pf = RAW_PIXEL_FORMATS[f.pixelFormat];
      if (!pf) throw new IngestArgsError(`unsupported raw pixel format ${JSON.stringify(f.pixelFormat)}`);
      return { pixelFormat: pf, contentType: 'image/x-raw', args: ['-c:v', 'rawvideo', '-pix_fmt', pf] };
    }
    default:
      throw new IngestArgsError(`unsupported image encoding ${JSON.stringify((f as { encoding: unknown }).encoding)}`);
  }
}

/**
 * Scale filters per mode (lva-spec §2.3): Stretch distorts to W×H; PreserveAspectRatio fits inside
 * the box (or follows the source aspect when one side is given); Pad fits inside and adds black bars
 * to exactly W×H, centred. The format conversion comes before `pad` so the bars are placed in the
 * output's own pixel format (offsets then follow padOffsets()).
 */
export function imageFilters(img: ImageOutputSpec, pixelFormat: string): string {
  const s = img.scale;
  const dims = (v: number | undefined, name: string) => {
    if (v === undefined) return;
    if (!Number.isInteger(v) || v < 1 || v > 8192) throw new IngestArgsError(`image ${name} must be an integer in 1..8192, got ${v}`);
  };
  dims(s?.width, 'width');
  dims(s?.height, 'height');
  const fmt = `format=${pixelFormat}`;
  if (!s) return fmt;
  const { width: w, height: h } = s;
  switch (s.mode) {
    case 'Stretch':
      if (w === undefined || h === undefined) throw new IngestArgsError('Stretch needs width and height');
      return `scale=${w}:${h},setsar=1,${fmt}`;
    case 'Pad':
      if (w === undefined || h === undefined) throw new IngestArgsError('Pad needs width and height');
      return `scale=${w}:${h}:force_original_aspect_ratio=decrease,setsar=1,${fmt},pad=${w}:${h}:(ow-iw)/2:(oh-ih)/2:color=black`;
    case 'PreserveAspectRatio':
      if (w !== undefined && h !== undefined) return `scale=${w}:${h}:force_original_aspect_ratio=decrease,setsar=1,${fmt}`;
      if (w !== undefined) return `scale=${w}:-1,setsar=1,${fmt}`;
      if (h !== undefined) return `scale=-1:${h},setsar=1,${fmt}`;
      throw new IngestArgsError('PreserveAspectRatio needs width or height');
    default:
      throw new IngestArgsError(`unsupported scale mode ${JSON.stringify((s as { mode: unknown }).mode)}`);
  }
}

/**
 * Where the source picture lands in a Pad-mode image, mirroring ffmpeg 5.1: scale with
 * force_original_aspect_ratio=decrease rounds each side to nearest, then pad centres it, rounding
 * the offsets down to the chroma subsampling of the pixel format. Returned as fractions of the image.
 */
export function padContent(srcW: number, srcH: number, outW: number, outH: number, pixelFormat: string): { l: number; t: number; w: number; h: number } {
  const scaledW = Math.min(outW, Math.round((outH * srcW) / srcH));
  const scaledH = Math.min(outH, Math.round((outW * srcH) / srcW));
  const sub = pixelFormat === 'yuvj420p' || pixelFormat === 'yuv420p' ? 2 : 1;
  const x = Math.floor(Math.floor((outW - scaledW) / 2) / sub) * sub;
  const y = Math.floor(Math.floor((outH - scaledH) / 2) / sub) * sub;
  return { l: x / outW, t: y / outH, w: scaledW / outW, h: scaledH / outH };
}

/**
 * Validates the input so it cannot become an ffmpeg option or select another protocol (concat:, subfile:,
 * http:, …): RTSP inputs must be rtsp:// or rtsps:// URLs; file inputs become `file:<absolute path>`.
 */
function checkedInput(input: string, kind: 'rtsp' | 'file'): string {
  if (typeof input !== 'string' || input.length === 0) throw new IngestArgsError('input is empty');
  if (input.startsWith('-')) throw new IngestArgsError('input must not start with "-"');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(input)) throw new IngestArgsError('input contains control characters');
  if (kind === 'rtsp') {
    let url: URL;
    try {
      url = new URL(input);
    } catch {
      throw new IngestArgsError(`not a valid URL: ${redactUrl(input)}`);
    }
    if (url.protocol !== 'rtsp:' && url.protocol !== 'rtsps:') {
      throw new IngestArgsError(`RTSP source URL must use rtsp:// or rtsps://, got ${url.protocol}`);
    }
    if (!url.hostname) throw new IngestArgsError(`RTSP URL has no host: ${redactUrl(input)}`);
    if (/\s/.test(input)) throw new IngestArgsError('RTSP URL contains whitespace');
    return input;
  }
  if (kind !== 'file') throw new IngestArgsError(`unknown input kind ${String(kind)}`);
  const path = input.startsWith('file:') ? input.slice('file:'.length) : input;
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(path) && !/^[a-zA-Z]:[\\/]/.test(path)) {
    throw new IngestArgsError(`file input looks like a URL (${redactUrl(path)}); give a filesystem path`);
  }
  return 'file:' + resolvePath(path);
}

/** The URL with its password replaced by `***`, for logs and error messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) {
      u.password = '***';
      return u.toString();
    }
    return url;
  } catch {
    // Not parseable: still hide anything between "user:" and "@" in an authority.
    return url.replace(/(\/\/[^/@:\s]*:)[^@/]*@/, '$1***@');
  }
}
