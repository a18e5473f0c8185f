// Fmp4Writer.salvage(): after a failed write (ENOSPC), the file is cut back to its last complete
// fragment and finished as a normal clip. The failure is injected into the writer's real file handle
// (the Nth writev throws ENOSPC after writing part of its data), so every byte on disk is real.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Fmp4Parser, type Fmp4Item } from '../../src/media/fmp4-parser.js';
import { Fmp4Writer } from '../../src/media/fmp4-writer.js';
import { box, u16, u32, zeros } from '../../src/media/mp4-boxes.js';
import type { Sample, TrackInfo } from '../../src/media/sample.js';

const AVCC = Buffer.from([1, 0x4d, 0x40, 0x1f, 0xff, 0xe0, 0x00]);
const videoEntry = box(
  'avc1',
  zeros(6), u16(1), zeros(16), u16(320), u16(240), u32(0x00480000), u32(0x00480000), u32(0), u16(1), zeros(32), u16(0x18), u16(0xffff),
  box('avcC', AVCC),
);
const video: TrackInfo = { id: 1, kind: 'video', codec: 'h264', codecString: 'avc1.4d401f', timescale: 90000, width: 320, height: 240, sampleEntry: videoEntry };

/** 25 fps, keyframe every `gop` frames (one fragment per GOP), payloads of 1000 bytes. */
function frames(n: number, gop: number): Sample[] {
  return Array.from({ length: n }, (_, i) => ({
    track: video, dts: i * 3600, pts: i * 3600, duration: 3600, keyframe: i % gop === 0, pts90k: 1_000_000 + i * 3600,
    data: Buffer.alloc(1000, i & 0xff),
  }));
}

function parse(buf: Buffer): Fmp4Item[] {
  const items: Fmp4Item[] = [];
  const p = new Fmp4Parser((it) => items.push(it));
  p.push(buf);
  p.end();
  return items;
}

/** Makes the writer's `n`-th writev (1-based) write half its bytes, then fail with ENOSPC. */
function failNthWrite(writer: Fmp4Writer, n: number): void {
  const fh = (writer as unknown as { fh: { writev: (b: Buffer[], pos: number) => Promise<{ bytesWritten: number }> } }).fh;
  const real = fh.writev.bind(fh);
  let calls = 0;
  fh.writev = async (bufs, pos) => {
    calls++;
    if (calls < n) return real(bufs, pos);
    const all = Buffer.concat(bufs);
    await real([all.subarray(0, all.length >> 1)], pos); // the disk took part of it
    throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'lva-salvage-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('a write failing mid-fragment: salvage keeps the complete fragments and finishes the clip', () => withDir(async (dir) => {
  const path = join(dir, 'clip.mp4');
  const w = await Fmp4Writer.open(path, [video]);
  failNthWrite(w, 3); // fragments 1 and 2 (GOPs of 25 frames) reach the disk, the 3rd is cut
  const samples = frames(100, 25);
  let failedAt = -1;
  for (const [i, s] of samples.entries()) {
    try {
      await w.write(s);
    } catch (err) {
      assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
      failedAt = i;
      break;
    }
  }
  assert.equal(failedAt, 75, 'the 3rd fragment is flushed when the 4th GOP starts');
  await assert.rejects(w.write(samples[76]!), /ENOSPC/, 'the writer stays failed for new samples');
  const r = await w.salvage();
  assert.equal(r.path, path);
  assert.equal(r.sampleCount, 50, 'two complete GOPs');
  assert.equal(r.firstPts90k, 1_000_000);
  assert.equal(r.lastEndPts90k, 1_000_000 + 50 * 3600);
  assert.equal(r.durationSeconds, 2);
  await assert.rejects(access(`${path}.partial`), 'no .partial left');
  const buf = await readFile(path);
  assert.equal((await stat(path)).size, r.sizeBytes);
  const got = parse(buf).filter((it) => it.kind === 'sample');
  assert.equal(got.length, 50);
  got.forEach((it, i) => {
    if (it.kind !== 'sample') return;
    assert.equal(it.sample.pts, i * 3600);
    assert.ok(it.sample.data.equals(samples[i]!.data), `sample ${i} intact`);
  });
  // The finished clip ends with the mfra index (its last box).
  assert.equal(buf.subarray(buf.length - 16 + 4, buf.length - 16 + 8).toString('latin1'), 'mfro');
}));

test('a failure before any fragment was complete: salvage removes the .partial and throws', () => withDir(async (dir) => {
  const path = join(dir, 'clip.mp4');
  const w = await Fmp4Writer.open(path, [video]);
  failNthWrite(w, 1);
  const samples = frames(30, 25);
  await assert.rejects((async () => {
    for (const s of samples) await w.write(s);
  })(), /ENOSPC/);
  await assert.rejects(w.salvage(), /no complete fragment/);
  await assert.rejects(access(`${path}.partial`));
  await assert.rejects(access(path));
}));

test('close() failing on the last fragment: salvage finishes with the fragments before it', () => withDir(async (dir) => {
  const path = join(dir, 'clip.mp4');
  const w = await Fmp4Writer.open(path, [video]);
  for (const s of frames(40, 25)) await w.write(s); // fragment 1 written; 15 frames pending
  failNthWrite(w, 1);
  await assert.rejects(w.close(), /ENOSPC/);
  const r = await w.salvage();
  assert.equal(r.sampleCount, 25);
  assert.equal(parse(await readFile(path)).filter((it) => it.kind === 'sample').length, 25);
  await assert.rejects(access(`${path}.partial`));
}));

test('salvage after a successful close is refused (nothing to redo)', () => withDir(async (dir) => {
  const w = await Fmp4Writer.open(join(dir, 'clip.mp4'), [video]);
  for (const s of frames(30, 25)) await w.write(s);
  await w.close();
  await assert.rejects(w.salvage(), /already closed/);
}));
