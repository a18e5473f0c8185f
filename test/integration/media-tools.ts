/**
 * Test helpers around real ffmpeg/ffprobe: every run has a hard deadline (SIGKILL of its process
 * group) and is tracked so a test file can assert that no child is left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const live = new Set<ChildProcess>();

export const FFMPEG = process.env.FFMPEG_PATH ?? 'ffmpeg';
export const FFPROBE = process.env.FFPROBE_PATH ?? 'ffprobe';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs a command to completion. `onStdout` / `onFd3` receive chunks as they arrive (fd 3 is opened
 * as a pipe only when `onFd3` is given); otherwise stdout is collected.
 */
export function run(
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number; onStdout?: (c: Buffer) => void; onFd3?: (c: Buffer) => void } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const stdio: ('ignore' | 'pipe')[] = ['ignore', 'pipe', 'pipe'];
    if (opts.onFd3) stdio.push('pipe');
    const child = spawn(cmd, args, { stdio, detached: true });
    live.add(child);
    const out: Buffer[] = [];
    let err = '';
    let callbackError: unknown = null;
    const guard = (fn: (c: Buffer) => void) => (c: Buffer) => {
      try {
        fn(c);
      } catch (e) {
        callbackError ??= e;
        killGroup(child);
      }
    };
    child.stdout!.on('data', guard(opts.onStdout ?? ((c) => out.push(c))));
    child.stderr!.on('data', (c: Buffer) => {
      err = (err + c.toString()).slice(-20000);
    });
    if (opts.onFd3) (child.stdio[3] as NodeJS.ReadableStream).on('data', guard(opts.onFd3));
    const timer = setTimeout(() => killGroup(child), opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      live.delete(child);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      if (callbackError) reject(callbackError);
      else resolve({ code, signal, stdout: Buffer.concat(out), stderr: err });
    });
  });
}

function killGroup(child: ChildProcess): void {
  try {
    if (child.pid) process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

export function liveChildren(): number {
  return live.size;
}

export async function mustRun(cmd: string, args: string[], timeoutMs = 60_000): Promise<Buffer> {
  const r = await run(cmd, args, { timeoutMs });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code ?? r.signal}): ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

export interface ProbePacket {
  stream: number;
  pts: number;
  dts: number;
  key: boolean;
  ptsTime: number;
}

export async function probePackets(path: string): Promise<ProbePacket[]> {
  const out = await mustRun(FFPROBE, ['-v', 'error', '-show_entries', 'packet=stream_index,pts,dts,pts_time,flags', '-of', 'json', path]);
  const j = JSON.parse(out.toString()) as { packets: { stream_index: number; pts: number; dts: number; pts_time: string; flags: string }[] };
  return j.packets.map((p) => ({ stream: p.stream_index, pts: p.pts, dts: p.dts, key: p.flags.includes('K'), ptsTime: Number(p.pts_time) }));
}

export interface ProbeStream {
  index: number;
  codec_type: string;
  codec_name: string;
  profile?: string;
  width?: number;
  height?: number;
  time_base: string;
  sample_rate?: string;
}

export async function probe(path: string): Promise<{ streams: ProbeStream[]; duration: number }> {
  const out = await mustRun(FFPROBE, ['-v', 'error', '-show_entries', 'stream=index,codec_type,codec_name,profile,width,height,time_base,sample_rate:format=duration', '-of', 'json', path]);
  const j = JSON.parse(out.toString()) as { streams: ProbeStream[]; format: { duration: string } };
  return { streams: j.streams, duration: Number(j.format.duration) };
}

/** framemd5 lines of the first video stream: [pts (stream time base), md5]. */
export async function videoFrameMd5(path: string, extra: string[] = []): Promise<{ pts: number; md5: string }[]> {
  const out = await mustRun(FFMPEG, ['-nostdin', '-v', 'error', ...extra, '-i', path, '-map', '0:v:0', '-f', 'framemd5', '-']);
  return out
    .toString()
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(',').map((x) => x.trim()))
    .map((f) => ({ pts: Number(f[2]), md5: f[5]! }));
}
