import { spawn } from 'node:child_process';
import { findFfmpeg } from './executables.js';

/**
 * A synthetic camera recording made with ffmpeg: a perfectly static textured scene (one testsrc2
 * frame held) in which a box moves only during the given intervals. Used by the demo and the
 * benchmarks, so the truth ("motion between a and b seconds") is known.
 */
export interface SyntheticCameraSpec {
  seconds: number;
  fps?: number;
  /** WIDTHxHEIGHT, default 1280x720. */
  size?: string;
  /** Keyframe interval in seconds (default 2). */
  gopSeconds?: number;
  /** Intervals [start, end] in seconds during which a box crosses the scene. */
  motion: Array<[number, number]>;
  /** x264 bitrate, e.g. '2M' (default: constant quality). */
  bitrate?: string;
  /** Temporal sensor noise on the scene (ffmpeg `noise` strength, e.g. 6); makes a real camera's bitrate. */
  noise?: number;
  /** 'testsrc2' (default): a colourful textured scene; 'gray': a plain mid-gray scene, so coloured
   * objects are the only saturated pixels (the reference inference server looks for those). */
  background?: 'testsrc2' | 'gray';
  /** Solid coloured boxes shown during [from, to) seconds at a fixed place (fractions of the frame),
   * the known truth for extension tests: the reference server reports exactly these. */
  objects?: SyntheticObject[];
}

export interface SyntheticObject {
  from: number;
  to: number;
  color: 'red' | 'green' | 'blue';
  /** Box as fractions of the frame (where it is at `from`). */
  box: { l: number; t: number; w: number; h: number };
  /** Horizontal speed in frame widths per second (0 = static; moving objects also trigger motion). */
  speed?: number;
}

const OBJECT_RGB = { red: '0xE01010', green: '0x10C010', blue: '0x1010E0' } as const;

export function syntheticCameraArgs(spec: SyntheticCameraSpec, out: string): string[] {
  const fps = spec.fps ?? 25;
  const [w, h] = (spec.size ?? '1280x720').split('x').map(Number) as [number, number];
  const box = Math.max(16, Math.floor(h / 5 / 2) * 2);
  const scene = spec.background === 'gray' ? `color=c=0x808080:size=${w}x${h}:rate=${fps}` : `testsrc2=size=${w}x${h}:rate=${fps}`;
  let chain = `${scene},trim=end_frame=1,loop=loop=-1:size=1:start=0,setpts=N/${fps}/TB,format=yuv420p[bg0]`;
  let last = 'bg0';
  if (spec.noise) {
    chain += `;[bg0]noise=c0s=${spec.noise}:c0f=t[bgn]`;
    last = 'bgn';
  }
  spec.motion.forEach(([a, b], i) => {
    chain += `;color=c=white:size=${box}x${box}:rate=${fps},format=yuv420p[box${i}]`;
    chain += `;[${last}][box${i}]overlay=x='clip((W-w)*(n-${a * fps})/(${(b - a) * fps}+1),0,W-w)':y='(H-h)/2':eval=frame:enable='between(t,${a},${b})':shortest=1[bg${i + 1}]`;
    last = `bg${i + 1}`;
  });
  (spec.objects ?? []).forEach((o, i) => {
    const x = Math.round(o.box.l * w), y = Math.round(o.box.t * h);
    const bw = Math.round(o.box.w * w), bh = Math.round(o.box.h * h);
    const enable = `enable='gte(t,${o.from})*lt(t,${o.to})'`;
    if (o.speed) {
      // drawbox evaluates its position once; a moving object is an overlay evaluated per frame.
      chain += `;color=c=${OBJECT_RGB[o.color]}:size=${bw}x${bh}:rate=${fps},format=yuv420p[obj${i}]`;
      chain += `;[${last}][obj${i}]overlay=x='${x}+(t-${o.from})*${Math.round(o.speed * w)}':y=${y}:eval=frame:${enable}:shortest=1[ob${i}]`;
    } else {
      chain += `;[${last}]drawbox=x=${x}:y=${y}:w=${bw}:h=${bh}:color=${OBJECT_RGB[o.color]}:t=fill:${enable}[ob${i}]`;
    }
    last = `ob${i}`;
  });
  const gop = Math.round((spec.gopSeconds ?? 2) * fps);
  return [
    '-nostdin', '-hide_banner', '-loglevel', 'error', '-y',
    '-filter_complex', `${chain};[${last}]null[v]`, '-map', '[v]', '-t', String(spec.seconds),
    '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-profile:v', 'main',
    '-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0', '-bf', '0',
    ...(spec.bitrate ? ['-b:v', spec.bitrate, '-maxrate', spec.bitrate, '-bufsize', spec.bitrate] : ['-crf', '23']),
    '-movflags', '+faststart', out,
  ];
}

export function makeSyntheticCamera(spec: SyntheticCameraSpec, out: string, timeoutMs = 300_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(findFfmpeg(), syntheticCameraArgs(spec, out), { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (c) => (err = (err + c).slice(-4000)));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`ffmpeg could not make the synthetic camera clip (${code}): ${err}`));
    });
  });
}
