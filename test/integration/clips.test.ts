// makeClip: what motion tests rely on — a picture that is static outside [start, end] and moving inside.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { FfmpegProcess } from '../../src/media/ffmpeg-process.js';
import { findFfprobe } from '../../src/util/executables.js';
import { makeClip } from '../helpers/clips.js';
import { assertNoLeftoverFfmpeg } from '../helpers/processes.js';

async function run(args: string[], command?: string): Promise<Buffer> {
  const proc = new FfmpegProcess({ args, ...(command ? { command } : {}) });
  const chunks: Buffer[] = [];
  proc.stdout?.on('data', (c: Buffer) => chunks.push(c));
  const exit = await proc.exited;
  assert.equal(exit.code, 0, exit.stderrTail.join('\n'));
  return Buffer.concat(chunks);
}

/** Decoded luma planes of every frame. */
async function grayFrames(path: string, width: number, height: number): Promise<Buffer[]> {
  const raw = await run(['-nostdin', '-v', 'error', '-i', path, '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1']);
  const size = width * height;
  const frames: Buffer[] = [];
  for (let off = 0; off + size <= raw.length; off += size) frames.push(raw.subarray(off, off + size));
  return frames;
}

/** Pixels whose luma changed by more than 16 (well above coding noise, far below the box's contrast). */
function changedPixels(a: Buffer, b: Buffer): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i]! - b[i]!) > 16) n++;
  return n;
}

describe('makeClip', () => {
  after(() => assertNoLeftoverFfmpeg());

  test('motion {start: 1, end: 2}: static before and after, the box moves on every frame inside', async () => {
    const fps = 10;
    const path = await makeClip({ seconds: 3.5, fps, size: '160x96', motion: { start: 1, end: 2 } });
    const frames = await grayFrames(path, 160, 96);
    assert.equal(frames.length, 35);
    for (let i = 1; i < frames.length; i++) {
      const t = i / fps;
      const changed = changedPixels(frames[i - 1]!, frames[i]!);
      if (t < 1 || t > 2 + 1 / fps) assert.equal(changed, 0, `frame ${i} (t=${t}) must be static`);
      else if (t > 1 && t <= 2) assert.ok(changed > 0, `frame ${i} (t=${t}) must show motion`);
    }
  });

  test("motion 'none' is static throughout", async () => {
    const frames = await grayFrames(await makeClip({ seconds: 2, fps: 10, size: '160x96', motion: 'none' }), 160, 96);
    for (let i = 1; i < frames.length; i++) assert.equal(changedPixels(frames[i - 1]!, frames[i]!), 0, `frame ${i}`);
  });

  test('the spec is honoured (codec, container, fps, audio) and the clip is cached', async () => {
    const spec = { seconds: 2, fps: 15, size: '192x108', codec: 'hevc', bframes: 2, audio: true, container: 'mkv' } as const;
    const path = await makeClip(spec);
    assert.match(path, /\.mkv$/);
    const probe = JSON.parse(
      (await run(['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_name,codec_type,width,height,r_frame_rate,nb_read_frames', '-of', 'json', path], findFfprobe())).toString(),
    ) as { streams: Record<string, string | number>[] };
    const video = probe.streams.find((s) => s.codec_type === 'video');
    const audio = probe.streams.find((s) => s.codec_type === 'audio');
    assert.deepEqual(
      { codec: video?.codec_name, w: video?.width, h: video?.height, rate: video?.r_frame_rate, frames: video?.nb_read_frames },
      { codec: 'hevc', w: 192, h: 108, rate: '15/1', frames: '30' },
    );
    assert.equal(audio?.codec_name, 'aac');
    const mtime = statSync(path).mtimeMs;
    assert.equal(await makeClip({ ...spec }), path);
    assert.equal(statSync(path).mtimeMs, mtime, 'reused, not regenerated');
  });

  test('invalid specs are rejected before running ffmpeg', () => {
    assert.throws(() => makeClip({ seconds: 0 }), /seconds/);
    assert.throws(() => makeClip({ seconds: 1, motion: { start: 2, end: 1 } }), /motion/);
    assert.throws(() => makeClip({ seconds: 1, size: '640' }), /size/);
  });
});
