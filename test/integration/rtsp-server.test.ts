// The GStreamer RTSP test camera and its helper, exercised with real ffmpeg/ffprobe clients over TCP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { FfmpegProcess, type FfmpegExit } from '../../src/media/ffmpeg-process.js';
import { findFfprobe } from '../../src/util/executables.js';
import { makeClip } from '../helpers/clips.js';
import { assertNoLeftoverFfmpeg, listDescendantProcesses, listFfmpegPids } from '../helpers/processes.js';
import { startRtspServer, type RtspTestServer } from '../helpers/rtsp-server.js';

/** Runs a client to completion; the watchdog and a hard stop guard against a hung pull. */
async function runClient(args: string[], command?: string): Promise<{ stdout: string; exit: FfmpegExit }> {
  const proc = new FfmpegProcess({ args, ...(command ? { command } : {}), stallTimeoutMs: 20_000, stopGraceMs: 2000 });
  const hardStop = setTimeout(() => void proc.stop(), 60_000);
  let stdout = '';
  proc.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  const exit = await proc.exited;
  clearTimeout(hardStop);
  return { stdout, exit };
}

/** Packets per stream index, pulled with `-c copy` for `seconds` (or until the stream ends). */
async function pullPackets(url: string, seconds?: number): Promise<{ counts: Map<number, number>; exit: FfmpegExit }> {
  const { stdout, exit } = await runClient([
    '-nostdin', '-hide_banner', '-loglevel', 'error', '-rtsp_transport', 'tcp', '-i', url,
    ...(seconds !== undefined ? ['-t', String(seconds)] : []), '-map', '0', '-c', 'copy', '-f', 'framecrc', 'pipe:1',
  ]);
  const counts = new Map<number, number>();
  for (const line of stdout.split('\n')) {
    const m = /^(\d+),/.exec(line);
    if (m) counts.set(Number(m[1]), (counts.get(Number(m[1])) ?? 0) + 1);
  }
  return { counts, exit };
}

async function codecsOf(url: string): Promise<string[]> {
  const { stdout, exit } = await runClient(
    ['-v', 'error', '-rtsp_transport', 'tcp', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', url],
    findFfprobe(),
  );
  assert.equal(exit.code, 0, exit.stderrTail.join('\n'));
  return stdout.split('\n').map((s) => s.trim()).filter(Boolean);
}

describe('RTSP test server', () => {
  let server: RtspTestServer;
  let clip: string;

  before(async () => {
    clip = await makeClip({ seconds: 3, fps: 25, size: '320x240', audio: true });
    server = await startRtspServer({ file: clip, size: '320x240' });
  });

  after(async () => {
    await server?.stop();
    await assertNoLeftoverFfmpeg();
  });

  test('/test: a 2 s pull gets frames', async () => {
    const { counts, exit } = await pullPackets(server.url('/test'), 2);
    assert.equal(exit.code, 0, exit.stderrTail.join('\n'));
    assert.ok((counts.get(0) ?? 0) > 0, `no video packets: ${JSON.stringify([...counts])}`);
  });

  test('/test265 is H.265 and /testav carries H.264 + AAC', async () => {
    assert.deepEqual(await codecsOf(server.url('test265')), ['hevc']);
    assert.deepEqual((await codecsOf(server.url('/testav'))).sort(), ['aac', 'h264']);
  });

  test('/file plays the whole makeClip clip once, video and audio, then ends', async () => {
    const { counts, exit } = await pullPackets(server.url('/file'));
    assert.equal(exit.code, 0, exit.stderrTail.join('\n'));
    assert.equal(counts.get(0), 75, 'all 3 s × 25 fps video frames'); // stream order follows the SDP: video first
    assert.ok((counts.get(1) ?? 0) > 0, 'audio packets');
  });

  test('restart() comes back on the same port; kill() drops clients like a camera loss', async () => {
    const port = server.port;
    const firstPid = server.pid;
    await server.restart();
    assert.equal(server.port, port);
    assert.notEqual(server.pid, firstPid);
    assert.ok(((await pullPackets(server.url('/test'), 1)).counts.get(0) ?? 0) > 0);

    await server.kill();
    assert.equal(server.pid, undefined);
    const refused = await pullPackets(server.url('/test'), 1);
    assert.notEqual(refused.exit.code, 0, 'nobody listens while the server is down');

    await server.restart();
    assert.equal(server.port, port);
    assert.ok(((await pullPackets(server.url('/test'), 1)).counts.get(0) ?? 0) > 0);
  });

  test('/loop relays a looping .ts clip; stop() leaves no python or ffmpeg behind', async () => {
    const ts = await makeClip({ seconds: 2, fps: 25, size: '320x240', container: 'ts' });
    const looping = await startRtspServer({ loopFile: ts, size: '320x240' });
    const pid = looping.pid;
    assert.ok(pid !== undefined);
    try {
      // 3 s across a 2 s clip: continuous across the loop point.
      const { counts, exit } = await pullPackets(looping.url('/loop'), 3);
      assert.equal(exit.code, 0, exit.stderrTail.join('\n'));
      assert.ok((counts.get(0) ?? 0) > 50, `expected > 2 s of frames, got ${counts.get(0)}`);
      assert.ok(listFfmpegPids().length > 0, 'the feeder ffmpeg is visible as ours');
    } finally {
      await looping.stop();
    }
    assert.equal(looping.pid, undefined);
    assert.equal(existsSync(`/proc/${pid}`), false);
    const ours = (name: string) => listDescendantProcesses().filter((p) => p.comm.startsWith(name) && p.pid !== server.pid);
    assert.deepEqual(ours('python'), []);
    await assertNoLeftoverFfmpeg();
    await looping.stop(); // idempotent
  });
});
