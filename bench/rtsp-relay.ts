// What the RTSP credential relay costs (src/media/rtsp-relay.ts). Every source with credentials reads its
// camera through the relay, so this is per-camera overhead of the record path: the Node CPU spent
// forwarding RTSP/RTP, and whether ffmpeg works any harder reading through it.
//
//   node --import tsx bench/rtsp-relay.ts [--quick] [--json] [--cameras 4] [--seconds 20]
//
// Same run, same camera (GStreamer fixture with Basic auth, /loop of a 720p25 2 Mbit/s H.264 clip):
//   direct  — ffmpeg -rtsp_transport tcp -i rtsp://user:pass@camera/loop -c copy -f null (password in argv)
//   relayed — the same ffmpeg reading rtsp://127.0.0.1:<relay>/<token>/loop, the relay holding the password
import { parseArgs } from 'node:util';
import { FfmpegProcess } from '../src/media/ffmpeg-process.js';
import { RtspCredentialRelay } from '../src/media/rtsp-relay.js';
import { makeClip } from '../test/helpers/clips.js';
import { startRtspServer } from '../test/helpers/rtsp-server.js';
import { measureCpu } from './cpu.js';
import { printReport, row, type BenchRow } from './report.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false }, json: { type: 'boolean', default: false },
    cameras: { type: 'string' }, seconds: { type: 'string' },
  },
});
const QUICK = values.quick;
const CAMERAS = Number(values.cameras ?? (QUICK ? 1 : 4));
const SECONDS = Number(values.seconds ?? (QUICK ? 5 : 20));
const USER = 'bench';
const PASSWORD = 'bench-password-0123';

const clip = await makeClip({ seconds: 10, fps: 25, size: '1280x720', container: 'ts' });
const camera = await startRtspServer({ loopFile: clip, auth: { method: 'digest', username: USER, password: PASSWORD } });

/** CAMERAS ffmpeg pulls of `urls[i]` for SECONDS each, concurrently; CPU of this process and of the (reaped) children. */
async function pullAll(urls: string[]): Promise<{ selfPct: number; ffmpegPct: number; bytes: number }> {
  let bytes = 0;
  const cpu = await measureCpu(async () => {
    await Promise.all(urls.map(async (url) => {
      const proc = new FfmpegProcess({
        args: ['-nostdin', '-hide_banner', '-loglevel', 'error', '-rtsp_transport', 'tcp', '-i', url, '-t', String(SECONDS),
          '-map', '0:v:0', '-c', 'copy', '-f', 'mp4', '-movflags', 'empty_moov+default_base_moof', '-frag_duration', '1', 'pipe:1'],
        stallTimeoutMs: 20_000,
      });
      proc.stdout?.on('data', (c: Buffer) => (bytes += c.length));
      const exit = await proc.exited;
      if (exit.code !== 0) throw new Error(`ffmpeg failed: ${exit.stderrTail.join(' | ')}`);
    }));
  });
  return { selfPct: (cpu.self / cpu.wall / urls.length) * 100, ffmpegPct: (cpu.children / cpu.wall / urls.length) * 100, bytes: bytes / urls.length / cpu.wall };
}

const rows: BenchRow[] = [];
const notes: string[] = [];
try {
  const direct = camera.url('/loop').replace('rtsp://', `rtsp://${USER}:${PASSWORD}@`);
  const base = await pullAll(Array.from({ length: CAMERAS }, () => direct));
  const relays = Array.from({ length: CAMERAS }, () => new RtspCredentialRelay({ url: direct }));
  const urls = await Promise.all(relays.map((r) => r.start()));
  let relayed;
  try {
    relayed = await pullAll(urls);
  } finally {
    await Promise.all(relays.map((r) => r.close()));
  }
  rows.push(row({
    measure: 'Node CPU per camera spent relaying (relayed − direct)', ours: round(relayed.selfPct - base.selfPct), unit: '% of a core',
    goal: { on: 'ours', max: 3 },
  }));
  notes.push(`Node CPU per camera: relayed ${round(relayed.selfPct)} %, direct ${round(base.selfPct)} % of a core.`);
  rows.push(row({
    measure: 'ffmpeg CPU per camera', ours: round(relayed.ffmpegPct), unit: '% of a core',
    baseline: 'direct pull, no relay (same run)', baselineValue: round(base.ffmpegPct), goal: { on: 'ratio', max: 1.2 },
  }));
  rows.push(row({
    measure: 'media delivered per camera', ours: round(relayed.bytes / 1024), unit: 'KiB/s',
    baseline: 'direct pull, no relay (same run)', baselineValue: round(base.bytes / 1024), goal: { on: 'ratio', min: 0.9 },
  }));
  notes.push(`${CAMERAS} camera(s) at once, ${SECONDS} s each; camera: GStreamer RTSP server, Digest auth, 720p25 H.264 ~2 Mbit/s over TCP-interleaved RTP.`);
  notes.push('Node CPU of the direct pull is this process reading the fMP4 pipes only; relayed, the relay also forwards every RTSP message and RTP packet (the difference is the relay).');
} finally {
  await camera.stop();
}
printReport({ bench: 'rtsp-relay', title: `RTSP credential relay overhead (${QUICK ? 'quick' : `${CAMERAS} cameras × ${SECONDS} s`})`, rows, notes }, values.json);

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
