import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile, copyFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Fmp4Parser, type Fmp4Item } from '../../src/media/fmp4-parser.js';
import { Fmp4Writer, Fmp4WriterInputError, recoverPartial } from '../../src/media/fmp4-writer.js';
import { box, u16, u32, zeros } from '../../src/media/mp4-boxes.js';
import type { Sample, TrackInfo } from '../../src/media/sample.js';

const AVCC = Buffer.from([1, 0x4d, 0x40, 0x1f, 0xff, 0xe0, 0x00]);
const videoEntry = box(
  'avc1',
  zeros(6), u16(1), zeros(16), u16(320), u16(240), u32(0x00480000), u32(0x00480000), u32(0), u16(1), zeros(32), u16(0x18), u16(0xffff),
  box('avcC', AVCC),
);
const audioEntry = box('mp4a', zeros(6), u16(1), zeros(8), u16(1), u16(16), u16(0), u16(0), u32(48000 << 16));

const video: TrackInfo = { id: 1, kind: 'video', codec: 'h264', codecString: 'avc1.4d401f', timescale: 90000, width: 320, height: 240, sampleEntry: videoEntry };
const audio: TrackInfo = { id: 2, kind: 'audio', codec: 'aac', codecString: 'mp4a.40.2', timescale: 48000, sampleRate: 48000, channels: 1, sampleEntry: audioEntry };

/** 30 fps video with 2 B-frames per P (decode order I P B B ...), GOP of `gop` frames, and 48 kHz AAC-like audio. */
function synthetic(frames: number, gop: number, startPts90k: number): Sample[] {
  const out: Sample[] = [];
  const order: number[] = []; // presentation index per decode index
  for (let g = 0; g < frames; g += gop) {
    order.push(g);
    for (let i = g + 1; i < Math.min(g + gop, frames); i += 3) {
      const p = Math.min(i + 2, g + gop - 1, frames - 1);
      order.push(p);
      for (let b = i; b < p; b++) order.push(b);
    }
  }
  const v: Sample[] = order.map((pi, di) => {
    const dts = startPts90k + (di - 2) * 3000; // two frames of decode delay before presentation
    const pts = startPts90k + pi * 3000;
    return { track: video, dts, pts, duration: 3000, keyframe: pi % gop === 0, pts90k: pts, data: Buffer.from(`v${pi}`) };
  });
  const a: Sample[] = [];
  const aStart = Math.round((startPts90k * 48000) / 90000);
  for (let k = 0; k * 1024 < (frames / 30) * 48000; k++) {
    const t = aStart + k * 1024;
    a.push({ track: audio, dts: t, pts: t, duration: 1024, keyframe: true, pts90k: Math.round((t * 90000) / 48000), data: Buffer.from(`a${k}`) });
  }
  // interleave by decode time
  let i = 0;
  let j = 0;
  while (i < v.length || j < a.length) {
    if (j >= a.length || (i < v.length && v[i]!.dts / 90000 <= a[j]!.dts / 48000)) out.push(v[i++]!);
    else out.push(a[j++]!);
  }
  return out;
}

function parseFile(buf: Buffer): Fmp4Item[] {
  const items: Fmp4Item[] = [];
  const p = new Fmp4Parser((it) => items.push(it));
  p.push(buf);
  p.end();
  return items;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'lva-fmp4-writer-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('writer: samples read back with the same timing, flags, payloads and sample entries', async () => {
  await withDir(async (dir) => {
    const input = synthetic(90, 30, 900_000);
    const path = join(dir, 'clip.mp4');
    const w = await Fmp4Writer.open(path, [video, audio]);
    for (const s of input) await w.write(s);
    const res = await w.close();
    await assert.rejects(access(path + '.partial'));
    const buf = await readFile(path);
    assert.equal(res.sizeBytes, buf.length);
    assert.equal((await stat(path)).mode & 0o777, 0o644);
    assert.equal(res.sampleCount, input.length);
    assert.equal(res.firstPts90k, 900_000);
    const inputEnd = Math.max(...input.map((s) => s.pts90k + Math.round((s.duration * 90000) / s.track.timescale)));
    assert.equal(inputEnd, 900_000 + 141 * 1920); // the audio (141 x 1024 samples) outlasts the 3 s of video
    assert.equal(res.lastEndPts90k, inputEnd);
    assert.equal(res.durationSeconds, (inputEnd - 900_000) / 90000);
    assert.match(res.sha256, /^[0-9a-f]{64}$/);

    const items = parseFile(buf);
    const init = items[0]!;
    assert.ok(init.kind === 'init');
    assert.deepEqual(init.tracks.map((t) => t.sampleEntry), [videoEntry, audioEntry]);
    const back = items.flatMap((i) => (i.kind === 'sample' ? [i.sample] : []));
    const key = (s: Sample): string => `${s.track.id}:${s.pts90k}:${s.keyframe}:${s.duration}:${s.data.toString()}`;
    const sortK = (l: Sample[]): string[] => l.map(key).sort();
    // The file's zero is the first picture: subtracting it restores the input's times.
    assert.deepEqual(sortK(back.map((s) => ({ ...s, pts90k: s.pts90k + 900_000 }))), sortK(input));
    const firstVideo = back.find((s) => s.track.id === 1)!;
    assert.equal(firstVideo.pts90k, 0);
    assert.equal(firstVideo.keyframe, true);
    // decode order preserved per track, and pts - dts kept
    const vIn = input.filter((s) => s.track.id === 1);
    const vOut = back.filter((s) => s.track.id === 1);
    assert.deepEqual(vOut.map((s) => s.data.toString()), vIn.map((s) => s.data.toString()));
    assert.deepEqual(vOut.map((s) => s.pts - s.dts), vIn.map((s) => s.pts - s.dts));
  });
});

test('writer: one fragment per GOP, or per fragmentDurationMs when the GOP is longer', async () => {
  await withDir(async (dir) => {
    const countMoofs = (b: Buffer): number => {
      let n = 0;
      for (let at = b.indexOf('moof'); at >= 0; at = b.indexOf('moof', at + 4)) n++;
      return n;
    };
    const w1 = await Fmp4Writer.open(join(dir, 'a.mp4'), [video]);
    for (const s of synthetic(90, 15, 0).filter((s) => s.track.id === 1)) await w1.write(s);
    await w1.close();
    assert.equal(countMoofs(await readFile(join(dir, 'a.mp4'))), 6); // 3 s, GOP 0.5 s

    const w2 = await Fmp4Writer.open(join(dir, 'b.mp4'), [video], { fragmentDurationMs: 1000 });
    for (const s of synthetic(120, 120, 0).filter((s) => s.track.id === 1)) await w2.write(s);
    await w2.close();
    assert.equal(countMoofs(await readFile(join(dir, 'b.mp4'))), 4); // one 4 s GOP cut every ~1 s
  });
});

test('writer: rejects a clip that does not start on a keyframe, and samples of unknown tracks', async () => {
  await withDir(async (dir) => {
    const w = await Fmp4Writer.open(join(dir, 'c.mp4'), [video]);
    const v = synthetic(30, 30, 0).filter((s) => s.track.id === 1);
    await assert.rejects(w.write(v[1]!), Fmp4WriterInputError);
    await assert.rejects(w.write(synthetic(3, 30, 0).find((s) => s.track.id === 2)!), /does not have/);
    for (const s of v) await w.write(s); // still usable after rejected input
    const r = await w.close();
    assert.equal(r.sampleCount, 30);
  });
});

test('writer: abort leaves a parseable .partial holding the flushed fragments; recoverPartial finishes it', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'crash.mp4');
    const input = synthetic(150, 30, 0);
    const w = await Fmp4Writer.open(path, [video, audio]);
    let flushedBeforeLast = 0;
    for (const s of input) {
      await w.write(s);
      flushedBeforeLast = w.flushedEndPts90k ?? 0;
    }
    await w.abort();
    const partial = await readFile(path + '.partial');
    const items = parseFile(partial);
    const samples = items.filter((i) => i.kind === 'sample');
    assert.ok(samples.length > 0 && samples.length < input.length, `${samples.length} samples in the partial`);
    assert.ok(flushedBeforeLast >= 4 * 90000, 'four GOPs are on disk before close');

    // a crash in the middle of a fragment write: cut the file inside the last fragment
    const cut = partial.subarray(0, partial.length - 50);
    await writeFile(join(dir, 'cut.mp4.partial'), cut);
    const r = await recoverPartial(join(dir, 'cut.mp4.partial'));
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.path, join(dir, 'cut.mp4'));
    assert.ok(r.droppedBytes > 0);
    assert.equal(r.durationSeconds, 4); // the fifth GOP's fragment was cut, four whole GOPs remain
    await assert.rejects(access(join(dir, 'cut.mp4.partial')));
    const rec = parseFile(await readFile(join(dir, 'cut.mp4')));
    assert.ok(rec[0]!.kind === 'init');

    await copyFile(path + '.partial', join(dir, 'whole.mp4.partial'));
    const r2 = await recoverPartial(join(dir, 'whole.mp4.partial'));
    assert.ok(r2.ok);
    assert.equal(r2.sampleCount, samples.length);

    await writeFile(join(dir, 'junk.mp4.partial'), Buffer.from('garbage garbage garbage'));
    const r3 = await recoverPartial(join(dir, 'junk.mp4.partial'));
    assert.equal(r3.ok, false);
    await access(join(dir, 'junk.mp4.partial')); // unreadable partials stay for inspection
  });
});
