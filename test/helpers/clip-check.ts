import { spawnSync } from 'node:child_process';
import { findFfmpeg, findFfprobe } from '../../src/util/executables.js';

/** What ffprobe says about a finished clip. */
export interface ClipProbe {
  video: { codec: string; profile?: string; width: number; height: number };
  audio?: { codec: string };
  durationSeconds: number;
  /** Video packets in decode order: pts in seconds (file timeline) and keyframe flag. */
  videoPackets: Array<{ pts: number; keyframe: boolean }>;
}

function run(cmd: string, args: string[], timeoutMs = 60_000): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr?.slice(-2000)}`);
  return r.stdout;
}

export function probeClip(file: string): ClipProbe {
  const j = JSON.parse(run(findFfprobe(), ['-v', 'error', '-show_streams', '-show_format', '-show_packets', '-of', 'json', file]));
  const vs = j.streams.find((s: any) => s.codec_type === 'video');
  const as = j.streams.find((s: any) => s.codec_type === 'audio');
  if (!vs) throw new Error(`${file}: no video stream`);
  return {
    video: { codec: vs.codec_name, profile: vs.profile, width: vs.width, height: vs.height },
    audio: as ? { codec: as.codec_name } : undefined,
    durationSeconds: Number(j.format.duration),
    videoPackets: j.packets
      .filter((p: any) => p.stream_index === vs.index)
      .map((p: any) => ({ pts: Number(p.pts_time), keyframe: String(p.flags).includes('K') })),
  };
}

/** MD5 of every video packet's payload, in decode order (`-c copy -f framemd5`): proves a stream copy. */
export function videoPacketHashes(file: string): string[] {
  const out = run(findFfmpeg(), ['-v', 'error', '-i', file, '-map', '0:v:0', '-c', 'copy', '-f', 'framemd5', '-']);
  return out.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(',').pop()!.trim());
}

/** MD5 of the first decoded picture (gray 8-bit is enough to compare pixels exactly). */
export function firstFrameHash(file: string, seekSeconds?: number): string {
  const args = ['-v', 'error'];
  if (seekSeconds !== undefined) args.push('-ss', String(seekSeconds));
  args.push('-i', file, '-map', '0:v:0', '-frames:v', '1', '-f', 'md5', '-');
  return run(findFfmpeg(), args).trim();
}

/** Decoded-picture MD5s of every frame with its pts (seconds), in presentation order. */
export function decodedFrameHashes(file: string): Array<{ pts: number; md5: string }> {
  const out = run(findFfmpeg(), ['-v', 'error', '-i', file, '-map', '0:v:0', '-vsync', 'passthrough', '-f', 'framemd5', '-'], 120_000);
  let tb = 1;
  const rows: Array<{ pts: number; md5: string }> = [];
  for (const l of out.split('\n')) {
    const m = /^#tb 0: (\d+)\/(\d+)/.exec(l);
    if (m) tb = Number(m[1]) / Number(m[2]);
    if (!l || l.startsWith('#')) continue;
    const f = l.split(',').map((x) => x.trim());
    rows.push({ pts: Number(f[2]) * tb, md5: f[5]! });
  }
  return rows;
}

/** True when `needle` occurs as a contiguous run inside `hay`. */
export function isContiguousSubsequence(needle: string[], hay: string[]): boolean {
  if (needle.length === 0) return true;
  for (let i = 0; i + needle.length <= hay.length; i++) {
    if (hay[i] !== needle[0]) continue;
    let ok = true;
    for (let k = 1; k < needle.length && ok; k++) ok = hay[i + k] === needle[k];
    if (ok) return true;
  }
  return false;
}
