// Synthetic test clips, generated with ffmpeg once and cached under os.tmpdir()/lva-edge-clips, keyed by a
// hash of the normalised spec (plus a generator version), so suites and repeated runs share them.
//
// Picture, by `motion`:
//   omitted       testsrc2 as is: changes every frame (counter, moving shapes) — a "busy" camera
//   'none'        one testsrc2 frame held for the whole clip — a perfectly static textured scene
//   {start, end}  the static scene, plus a white square (side = height/4) crossing it left→right on the
//                 middle row, visible only for start ≤ t ≤ end (seconds); outside that interval the
//                 source frames are bit-identical to each other (no clock, no counter)
//
// Exact filter graph for {start: S, end: E} (W×H size, F fps, B = floor(H/4) rounded down to even):
//   testsrc2=size=WxH:rate=F,trim=end_frame=1,loop=loop=-1:size=1:start=0,setpts=N/F/TB,format=yuv420p[bg];
//   color=c=white:size=BxB:rate=F,format=yuv420p[box];
//   [bg][box]overlay=x='clip((W-w)*(n-S*F)/((E-S)*F+1),0,W-w)':y='(H-h)/2':eval=frame:
//                    enable='between(t,S,E)':shortest=1[v]
// The x position uses the frame number n, not t: with ffmpeg 5.1 the overlay's t lags on some frames,
// which would make the box stand still for a frame in the middle of the motion. ffmpeg 5.1 counts n from 1
// here; the "+1" in the divisor keeps x strictly increasing on every frame of [S, E] either way.
//
// Encoding uses a constant quantiser (x264/x265 qp=20), so identical source frames encode to identical
// decoded frames inside a GOP. Remaining coding noise outside [S, E]: the first IDR after the motion
// repaints the residue left by the P-frames (measured max luma difference ≤ 10 between consecutive frames,
// no pixel differing by more than 10); the box itself differs from the background by > 100.
// Audio (audio: true): a 440 Hz sine, AAC 64 kb/s, 48 kHz mono.
import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FfmpegProcess } from '../../src/media/ffmpeg-process.js';

export interface ClipSpec {
  seconds: number;
  /** Default 30. */
  fps?: number;
  /** WIDTHxHEIGHT, default '640x360'. */
  size?: string;
  /** Keyframe interval in frames (fixed, no scene-cut keyframes); default 2 s worth (2 × fps). */
  gop?: number;
  /** B-frames between references; default 0. */
  bframes?: number;
  /** Default 'h264'. */
  codec?: 'h264' | 'hevc';
  /** Add an AAC sine track; default false. */
  audio?: boolean;
  /** See the file comment; omitted = busy testsrc2 picture. */
  motion?: 'none' | { start: number; end: number };
  /** Default 'mp4' (with faststart). Use 'ts' to feed the /loop relay of the RTSP test server. */
  container?: 'mp4' | 'mkv' | 'ts';
}

/** Bump when the graph or encoder settings change, so stale cached clips are not reused. */
const GENERATOR_VERSION = 2;

/** Directory holding the cached clips. */
export const clipCacheDir = join(tmpdir(), 'lva-edge-clips');

type NormalizedSpec = Required<Omit<ClipSpec, 'motion'>> & { motion: 'busy' | 'none' | { start: number; end: number } };

function normalize(spec: ClipSpec): NormalizedSpec {
  const fps = spec.fps ?? 30;
  const size = spec.size ?? '640x360';
  const n: NormalizedSpec = {
    seconds: spec.seconds,
    fps,
    size,
    gop: spec.gop ?? 2 * fps,
    bframes: spec.bframes ?? 0,
    codec: spec.codec ?? 'h264',
    audio: spec.audio ?? false,
    motion: spec.motion === undefined ? 'busy' : spec.motion === 'none' ? 'none' : { start: spec.motion.start, end: spec.motion.end },
    container: spec.container ?? 'mp4',
  };
  if (!(n.seconds > 0)) throw new Error(`makeClip: seconds must be > 0, got ${n.seconds}`);
  if (!(Number.isInteger(n.fps) && n.fps > 0)) throw new Error(`makeClip: fps must be a positive integer, got ${n.fps}`);
  if (!/^\d+x\d+$/.test(n.size)) throw new Error(`makeClip: size must be WIDTHxHEIGHT, got ${n.size}`);
  if (!(Number.isInteger(n.gop) && n.gop > 0)) throw new Error(`makeClip: gop must be a positive integer, got ${n.gop}`);
  if (!(Number.isInteger(n.bframes) && n.bframes >= 0)) throw new Error(`makeClip: bframes must be an integer ≥ 0`);
  if (typeof n.motion === 'object' && !(n.motion.start >= 0 && n.motion.end > n.motion.start)) {
    throw new Error(`makeClip: motion needs 0 ≤ start < end, got ${JSON.stringify(n.motion)}`);
  }
  return n;
}

/** The -filter_complex graph producing [v] (and [a] with audio). Exported for documentation/tests. */
export function clipFilterGraph(spec: ClipSpec): string {
  const n = normalize(spec);
  const height = Number(n.size.split('x')[1]);
  const F = n.fps;
  const still = `testsrc2=size=${n.size}:rate=${F},trim=end_frame=1,loop=loop=-1:size=1:start=0,setpts=N/${F}/TB,format=yuv420p`;
  let video: string;
  if (n.motion === 'busy') {
    video = `testsrc2=size=${n.size}:rate=${F},format=yuv420p[v]`;
  } else if (n.motion === 'none') {
    video = `${still}[v]`;
  } else {
    const { start: S, end: E } = n.motion;
    const box = Math.max(2, Math.floor(height / 4 / 2) * 2);
    video =
      `${still}[bg];color=c=white:size=${box}x${box}:rate=${F},format=yuv420p[box];` +
      `[bg][box]overlay=x='clip((W-w)*(n-${S}*${F})/((${E}-${S})*${F}+1),0,W-w)':y='(H-h)/2':eval=frame:` +
      `enable='between(t,${S},${E})':shortest=1[v]`;
  }
  return n.audio ? `${video};sine=frequency=440:sample_rate=48000[a]` : video;
}

function encoderArgs(n: NormalizedSpec): string[] {
  if (n.codec === 'hevc') {
    const params = `log-level=error:qp=20:keyint=${n.gop}:min-keyint=${n.gop}:scenecut=0:bframes=${n.bframes}:open-gop=0`;
    return ['-c:v', 'libx265', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-x265-params', params, ...(n.container === 'mp4' ? ['-tag:v', 'hvc1'] : [])];
  }
  return [
    '-c:v', 'libx264', '-preset', 'veryfast', '-qp', '20', '-pix_fmt', 'yuv420p', '-profile:v', 'main',
    '-g', String(n.gop), '-keyint_min', String(n.gop), '-sc_threshold', '0', '-bf', String(n.bframes),
  ];
}

function containerArgs(n: NormalizedSpec): string[] {
  switch (n.container) {
    case 'mp4':
      return ['-movflags', '+faststart', '-f', 'mp4'];
    case 'mkv':
      return ['-f', 'matroska'];
    case 'ts':
      return ['-f', 'mpegts'];
  }
}

function exists(path: string): boolean {
  try {
    return statSync(path).size > 0;
  } catch {
    return false;
  }
}

const inFlight = new Map<string, Promise<string>>();

/** Path of a clip matching `spec`, generated on first use and cached across runs. */
export function makeClip(spec: ClipSpec): Promise<string> {
  const n = normalize(spec);
  const key = createHash('sha256').update(JSON.stringify({ v: GENERATOR_VERSION, ...n })).digest('hex').slice(0, 20);
  const path = join(clipCacheDir, `clip-${key}.${n.container}`);
  const pending = inFlight.get(path);
  if (pending) return pending;
  const job = generate(n, spec, path).finally(() => inFlight.delete(path));
  inFlight.set(path, job);
  return job;
}

async function generate(n: NormalizedSpec, spec: ClipSpec, path: string): Promise<string> {
  if (exists(path)) return path;
  mkdirSync(clipCacheDir, { recursive: true });
  // Write elsewhere and rename: a concurrent test process never sees a half-written clip.
  const partial = `${path}.${process.pid}.${Date.now()}.partial`;
  const args = [
    '-nostdin', '-hide_banner', '-loglevel', 'error', '-y',
    '-filter_complex', clipFilterGraph(spec),
    '-map', '[v]', ...(n.audio ? ['-map', '[a]', '-c:a', 'aac', '-b:a', '64k'] : []),
    '-t', String(n.seconds),
    ...encoderArgs(n),
    ...containerArgs(n),
    partial,
  ];
  const proc = new FfmpegProcess({ args, stdout: 'ignore' });
  const exit = await proc.exited;
  if (exit.code !== 0) {
    try {
      unlinkSync(partial);
    } catch {
      // nothing written
    }
    throw new Error(`makeClip ${JSON.stringify(spec)} failed (${exit.reason}, code ${exit.code}):\n${exit.stderrTail.join('\n')}`);
  }
  renameSync(partial, path);
  return path;
}
