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
  /** Also decode a gray picture of this size to pipe:3 (optionally rate-limited to `fps`). */
  decode?: { width: number; height: number; fps?: number };
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
  if (opts.decode) {
    args.push('-threads', '1', '-skip_loop_filter', 'all', '-flags2', 'fast');
  }
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
