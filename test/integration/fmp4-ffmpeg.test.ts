/**
 * The MP4 container layer against real ffmpeg/ffprobe: ingest (copy to fMP4 on pipe:1, gray frames on
 * pipe:3) → Fmp4Parser → Fmp4Writer → ffprobe / framemd5.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { buildIngestArgs } from '../../src/media/ffmpeg-args.js';
import { DecodedFrameParser } from '../../src/media/decoded-frames.js';
import { Fmp4Parser } from '../../src/media/fmp4-parser.js';
import { Fmp4Writer, recoverPartial } from '../../src/media/fmp4-writer.js';
import { isKeyframePayload, avcNalLengthSize } from '../../src/media/h264.js';
import type { Frame, Sample, TrackInfo } from '../../src/media/sample.js';
import { FFMPEG, FFPROBE, liveChildren, mustRun, probe, probePackets, run, videoFrameMd5 } from './media-tools.js';

let dir = '';
const clips = { h264: '', gop4: '', hevc: '' };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lva-fmp4-it-'));
  const F = [FFMPEG, '-nostdin', '-v', 'error', '-y'] as const;
  clips.h264 = join(dir, 'h264-bf2-aac.mp4');
  clips.gop4 = join(dir, 'h264-gop4.mp4');
  clips.hevc = join(dir, 'hevc.mp4');
  await Promise.all([
    mustRun(F[0], [...F.slice(1), '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-t', '6', '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-bf', '2', '-g', '60', '-keyint_min', '60', '-sc_threshold', '0',
      '-c:a', 'aac', '-b:a', '64k', clips.h264], 120_000),
    mustRun(F[0], [...F.slice(1), '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30', '-t', '10', '-c:v', 'libx264', '-preset', 'veryfast',
      '-pix_fmt', 'yuv420p', '-bf', '0', '-g', '120', '-keyint_min', '120', '-sc_threshold', '0', clips.gop4], 120_000),
    mustRun(F[0], [...F.slice(1), '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25', '-t', '4', '-c:v', 'libx265', '-preset', 'ultrafast',
      '-x265-params', 'log-level=error:keyint=50:min-keyint=50', '-pix_fmt', 'yuv420p', '-tag:v', 'hvc1', clips.hevc], 120_000),
  ]);
});

after(async () => {
  assert.equal(liveChildren(), 0, 'no ffmpeg child left running');
  await rm(dir, { recursive: true, force: true });
});

interface Ingested {
  tracks: TrackInfo[];
  samples: Sample[];
  frames: Frame[];
}

async function ingest(input: string, opts: { audio: boolean; decode?: { width: number; height: number; fps?: number } }): Promise<Ingested> {
  const res: Ingested = { tracks: [], samples: [], frames: [] };
  const parser = new Fmp4Parser((it) => (it.kind === 'init' ? (res.tracks = it.tracks) : res.samples.push(it.sample)));
  const frameParser = new DecodedFrameParser((f) => res.frames.push(f));
  const args = buildIngestArgs({ input, inputKind: 'file', audio: opts.audio, ...(opts.decode ? { decode: opts.decode } : {}) });
  const r = await run(FFMPEG, args, {
    timeoutMs: 60_000,
    onStdout: (c) => parser.push(c),
    ...(opts.decode ? { onFd3: (c: Buffer) => frameParser.push(c) } : {}),
  });
  assert.equal(r.code, 0, r.stderr);
  parser.end();
  if (opts.decode) frameParser.end();
  return res;
}

async function writeClip(path: string, tracks: TrackInfo[], samples: Sample[]) {
  const w = await Fmp4Writer.open(path, tracks);
  for (const s of samples) await w.write(s);
  return w.close();
}

const to90k = (pts: number, timeBase: string): number => {
  const [num, den] = timeBase.split('/').map(Number) as [number, number];
  return Math.round((pts * num * 90000) / den);
};

for (const name of ['h264', 'gop4', 'hevc'] as const) {
  test(`${name}: ffmpeg → fMP4 pipe → parser matches the source packets; writer output is a bit-exact copy`, async () => {
    const src = clips[name];
    const withAudio = name === 'h264';
    const { tracks, samples } = await ingest(src, { audio: withAudio });
    const srcInfo = await probe(src);
    const srcPackets = await probePackets(src);

    // parser vs source: same packets, same 90 kHz pts, same keyframes
    assert.equal(tracks.length, srcInfo.streams.length);
    for (const [i, st] of srcInfo.streams.entries()) {
      const track = tracks.find((t) => t.kind === (st.codec_type === 'video' ? 'video' : 'audio'))!;
      const mine = samples.filter((s) => s.track === track);
      const theirs = srcPackets.filter((p) => p.stream === i);
      assert.equal(mine.length, theirs.length, `${st.codec_type} packet count`);
      assert.deepEqual(mine.map((s) => s.pts90k).sort((a, b) => a - b), theirs.map((p) => to90k(p.pts, st.time_base)).sort((a, b) => a - b));
      const keyByPts = new Map(theirs.map((p) => [to90k(p.pts, st.time_base), p.key]));
      for (const s of mine) assert.equal(s.keyframe, keyByPts.get(s.pts90k), `key flag at ${s.pts90k}`);
      if (track.kind === 'video') {
        assert.equal(track.codec, name === 'hevc' ? 'hevc' : 'h264');
        assert.equal(track.width, st.width);
        // cross-check the container's sync flags against the bitstream
        const avcC = track.codec === 'h264' ? track.sampleEntry.subarray(track.sampleEntry.indexOf('avcC') + 4) : null;
        const lengthSize = avcC ? avcNalLengthSize(avcC) : 4;
        for (const s of mine) assert.equal(isKeyframePayload(track.codec as 'h264' | 'hevc', s.data, lengthSize), s.keyframe);
      }
    }

    // writer → ffprobe: codec copied, same packets and times, duration right, frames bit-identical
    const out = join(dir, `${name}-copy.mp4`);
    const res = await writeClip(out, tracks, samples);
    assert.equal(res.sampleCount, samples.length);
    const outInfo = await probe(out);
    for (const [i, st] of srcInfo.streams.entries()) {
      const o = outInfo.streams[i]!;
      assert.deepEqual([o.codec_type, o.codec_name, o.profile, o.width, o.height, o.sample_rate], [st.codec_type, st.codec_name, st.profile, st.width, st.height, st.sample_rate]);
    }
    // ffprobe shows the AAC priming (the first 1024 samples, hidden by the edit list) as a negative
    // start in any fragmented file, ffmpeg's own included, so the format duration may exceed a
    // progressive source's by one AAC frame; the video durations must match exactly.
    const slack = withAudio ? 1024 / 48000 + 0.001 : 0.001;
    assert.ok(Math.abs(outInfo.duration - srcInfo.duration) < slack, `duration ${outInfo.duration} vs source ${srcInfo.duration}`);
    const vDur = async (p: string) => Number((await mustRun(FFPROBE, ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=duration', '-of', 'csv=p=0', p])).toString());
    assert.equal(await vDur(out), await vDur(src));
    assert.ok(Math.abs(res.durationSeconds - srcInfo.duration) < 0.05, `reported ${res.durationSeconds}`);
    const outPackets = await probePackets(out);
    assert.equal(outPackets.length, srcPackets.length);
    const vIndex = outInfo.streams.findIndex((s) => s.codec_type === 'video');
    assert.equal(outPackets.find((p) => p.stream === vIndex)!.key, true, 'first video packet is a keyframe');
    for (let i = 0; i < srcInfo.streams.length; i++) {
      const a = srcPackets.filter((p) => p.stream === i).map((p) => p.ptsTime);
      const b = outPackets.filter((p) => p.stream === i).map((p) => p.ptsTime);
      assert.deepEqual(b.map((t) => t.toFixed(4)), a.map((t) => t.toFixed(4)), `stream ${i} pts_time`);
    }
    assert.deepEqual((await videoFrameMd5(out)).map((f) => f.md5), (await videoFrameMd5(src)).map((f) => f.md5));
  });
}

test('h264 B-frames: a clip cut at a keyframe in the middle decodes to the source frames from that time on', async () => {
  const { tracks, samples } = await ingest(clips.h264, { audio: true });
  const video = samples.filter((s) => s.track.kind === 'video');
  const keys = video.filter((s) => s.keyframe).map((s) => s.pts90k);
  const start = keys.find((k) => k >= 2 * 90000)!;
  const end = keys.find((k) => k >= 4 * 90000)!;
  assert.equal(start, 180000);
  // the gate's cut: video from the keyframe (in decode order) up to the next GOP, audio on the same window
  const startIdx = samples.findIndex((s) => s.track.kind === 'video' && s.pts90k === start);
  const cut = samples.slice(startIdx).filter((s) => (s.track.kind === 'video' ? s.pts90k < end && s.dts >= video.find((v) => v.pts90k === start)!.dts : s.pts90k >= start && s.pts90k < end));
  const out = join(dir, 'cut.mp4');
  const res = await writeClip(out, tracks, cut);
  assert.equal(res.firstPts90k, start);
  assert.equal(res.durationSeconds, 2 + (cut.filter((s) => s.track.kind === 'audio').at(-1)!.pts90k + 1920 - end) / 90000);

  const clipMd5 = (await videoFrameMd5(out)).map((f) => f.md5);
  const srcMd5 = (await videoFrameMd5(clips.h264)).map((f) => f.md5);
  assert.equal(clipMd5.length, 60);
  assert.deepEqual(clipMd5, srcMd5.slice(60, 120));

  const gray = (args: string[]) => mustRun(FFMPEG, ['-nostdin', '-v', 'error', ...args, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'gray', '-']);
  const first = await gray(['-i', out]);
  const ref = await gray(['-ss', '2', '-i', clips.h264]);
  assert.equal(first.length, 1280 * 720);
  assert.ok(first.equals(ref), 'first clip frame equals the source frame at 2 s');
  const info = await probe(out);
  assert.ok(Math.abs(info.duration - res.durationSeconds) < 0.002, `ffprobe ${info.duration} vs ${res.durationSeconds}`);
});

test('crash safety: an unclosed .partial is readable by ffprobe up to its flushed fragments; recoverPartial finishes it', async () => {
  const { tracks, samples } = await ingest(clips.gop4, { audio: false });
  const path = join(dir, 'crash.mp4');
  const w = await Fmp4Writer.open(path, tracks); // 4 s GOP: fragments every ~1 s
  for (const s of samples.filter((s) => s.pts90k < 7 * 90000)) await w.write(s);
  const flushed = (w.flushedEndPts90k! - w.startPts90k!) / 90000;
  assert.ok(flushed >= 5, `flushed ${flushed} s`);
  const snapshot = join(dir, 'crash-snapshot.mp4');
  await copyFile(w.partialPath, snapshot); // what a SIGKILL now would leave
  const info = await probe(snapshot);
  assert.ok(info.duration >= flushed - 0.001, `ffprobe ${info.duration} s >= flushed ${flushed} s`);
  const frames = await videoFrameMd5(snapshot);
  assert.equal(frames.length, Math.round(flushed * 30));

  await w.abort();
  const r = await recoverPartial(w.partialPath);
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.durationSeconds, flushed);
  const rec = await probe(r.path);
  assert.ok(Math.abs(rec.duration - flushed) < 0.001, `recovered ${rec.duration}`);
});

test('decoded frames: every gray frame from pipe:3 carries the pts90k of a copied sample (B-frames, and fps=5)', async () => {
  const full = await ingest(clips.h264, { audio: true, decode: { width: 320, height: 180 } });
  const videoPts = new Set(full.samples.filter((s) => s.track.kind === 'video').map((s) => s.pts90k));
  assert.equal(full.frames.length, videoPts.size);
  for (const f of full.frames) {
    assert.ok(videoPts.has(f.pts90k), `frame at ${f.pts90k} has no copied sample`);
    assert.equal(f.data.length, 320 * 180);
    assert.equal(f.format, 'gray');
  }
  for (let i = 1; i < full.frames.length; i++) assert.ok(full.frames[i]!.pts90k > full.frames[i - 1]!.pts90k);
  // A frame is the picture of its sample: identical to decoding the source at that time.
  const ref = await mustRun(FFMPEG, ['-nostdin', '-v', 'error', '-threads', '1', '-skip_loop_filter', 'all', '-flags2', 'fast', '-i', clips.h264,
    '-map', '0:v:0', '-vf', 'scale=320:180:flags=fast_bilinear,format=gray', '-fps_mode', 'passthrough', '-f', 'rawvideo', '-']);
  assert.ok(Buffer.from(full.frames[45]!.data).equals(ref.subarray(45 * 57600, 46 * 57600)));

  const slow = await ingest(clips.h264, { audio: false, decode: { width: 160, height: 90, fps: 5 } });
  assert.ok(slow.frames.length >= 29 && slow.frames.length <= 31, `${slow.frames.length} frames at 5 fps`);
  for (const f of slow.frames) assert.ok(videoPts.has(f.pts90k), `5 fps frame at ${f.pts90k}`);
});
