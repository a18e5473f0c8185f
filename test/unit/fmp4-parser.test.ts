import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Fmp4Parser, Mp4FormatError, type Fmp4Item } from '../../src/media/fmp4-parser.js';
import { box, fullBox, i32, i64, u16, u32, u64, zeros } from '../../src/media/mp4-boxes.js';

// ---- hand-built boxes ----

const AVCC = Buffer.from([1, 0x64, 0x00, 0x1f, 0xff, 0xe0, 0x00]);

function avc1Entry(width: number, height: number): Buffer {
  const visual = Buffer.concat([
    zeros(6), u16(1), // reserved, data_reference_index
    zeros(16), u16(width), u16(height), u32(0x00480000), u32(0x00480000), u32(0), u16(1),
    zeros(32), u16(0x18), u16(0xffff),
  ]);
  return box('avc1', visual, box('avcC', AVCC));
}

function mp4aEntry(): Buffer {
  // ES_Descriptor -> DecoderConfigDescriptor (0x40 = AAC) -> DecoderSpecificInfo (AAC LC, 48 kHz, stereo)
  const dsi = Buffer.from([0x05, 2, 0x11, 0x90]);
  const dcd = Buffer.concat([Buffer.from([0x04, 13 + dsi.length, 0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), dsi]);
  const esd = Buffer.concat([Buffer.from([0x03, 3 + dcd.length + 3, 0, 1, 0]), dcd, Buffer.from([0x06, 1, 2])]);
  return box('mp4a', zeros(6), u16(1), zeros(8), u16(2), u16(16), u16(0), u16(0), u32(48000 << 16), fullBox('esds', 0, 0, esd));
}

function trak(id: number, handler: 'vide' | 'soun', timescale: number, entry: Buffer, elst?: Buffer): Buffer {
  const tkhd = fullBox('tkhd', 0, 3, u32(0), u32(0), u32(id), u32(0), u32(0), zeros(8), zeros(8), zeros(36), u32(0), u32(0));
  const mdhd = fullBox('mdhd', 0, 0, u32(0), u32(0), u32(timescale), u32(0), u16(0x55c4), u16(0));
  const hdlr = fullBox('hdlr', 0, 0, u32(0), Buffer.from(handler), zeros(12), Buffer.from('h\0'));
  const stbl = box('stbl', fullBox('stsd', 0, 0, u32(1), entry));
  const parts = [tkhd];
  if (elst) parts.push(box('edts', elst));
  parts.push(box('mdia', mdhd, hdlr, box('minf', stbl)));
  return box('trak', ...parts);
}

function moov(withAudio: boolean, elst?: Buffer): Buffer {
  const mvhd = fullBox('mvhd', 0, 0, u32(0), u32(0), u32(1000), u32(0), zeros(80));
  const traks = [trak(1, 'vide', 90000, avc1Entry(64, 48), elst)];
  const trex = [fullBox('trex', 0, 0, u32(1), u32(1), u32(3000), u32(0), u32(0x01010000))];
  if (withAudio) {
    traks.push(trak(2, 'soun', 48000, mp4aEntry()));
    trex.push(fullBox('trex', 0, 0, u32(2), u32(1), u32(1024), u32(4), u32(0x02000000)));
  }
  return box('moov', mvhd, ...traks, box('mvex', ...trex));
}

/** A moof+mdat: video run with all per-sample fields (v1, negative cto) and an audio run on defaults. */
function fragment(moofStartOffset: number, withAudio: boolean): Buffer {
  const video = [Buffer.from('AAAAAAAAAA'), Buffer.from('BBBB'), Buffer.from('CCCCCC')];
  const audio = [Buffer.from('a1a1'), Buffer.from('a2a2')];
  const build = (vOff: number, aOff: number): Buffer => {
    const vtraf = box(
      'traf',
      fullBox('tfhd', 0, 0x020000, u32(1)),
      fullBox('tfdt', 1, 0, u64(6000)),
      fullBox(
        'trun', 1, 0x1 | 0x4 | 0x100 | 0x200 | 0x400 | 0x800,
        u32(3), i32(vOff), u32(0x02000000),
        u32(3000), u32(10), u32(0x01010000), i32(3000),
        u32(3000), u32(4), u32(0x01010000), i32(-3000),
        u32(3000), u32(6), u32(0x01010000), i32(0),
      ),
    );
    const atraf = box(
      'traf',
      fullBox('tfhd', 0, 0x020000 | 0x8, u32(2), u32(1024)), // default duration here, size from trex
      fullBox('tfdt', 0, 0, u32(3200)),
      fullBox('trun', 0, 0x1, u32(2), i32(aOff)),
    );
    return box('moof', fullBox('mfhd', 0, 0, u32(1)), vtraf, ...(withAudio ? [atraf] : []));
  };
  const probe = build(0, 0);
  const vOff = probe.length + 8;
  const aOff = vOff + 20;
  const moofBox = build(vOff, aOff);
  void moofStartOffset;
  return Buffer.concat([moofBox, box('mdat', ...video, ...(withAudio ? audio : []))]);
}

function stream(withAudio = true, elst?: Buffer): Buffer {
  const ftyp = box('ftyp', Buffer.from('isom'), u32(0x200), Buffer.from('isom'));
  const init = Buffer.concat([ftyp, moov(withAudio, elst)]);
  return Buffer.concat([init, fragment(init.length, withAudio)]);
}

function parseAll(chunks: Buffer[]): Fmp4Item[] {
  const items: Fmp4Item[] = [];
  const p = new Fmp4Parser((it) => items.push(it));
  for (const c of chunks) p.push(c);
  p.end();
  return items;
}

function summary(items: Fmp4Item[]): unknown[] {
  return items.map((it) =>
    it.kind === 'init'
      ? { init: it.tracks.map((t) => [t.id, t.kind, t.codec, t.codecString, t.timescale, t.width, t.height, t.sampleRate, t.channels]) }
      : [it.sample.track.id, it.sample.dts, it.sample.pts, it.sample.pts90k, it.sample.duration, it.sample.keyframe, it.sample.data.toString()],
  );
}

test('parser: init and samples of a hand-built fragment (trun v1 negative cto, first-sample-flags, tfhd/trex defaults)', () => {
  const items = parseAll([stream()]);
  assert.deepEqual(summary(items), [
    { init: [[1, 'video', 'h264', 'avc1.64001f', 90000, 64, 48, undefined, undefined], [2, 'audio', 'aac', 'mp4a.40.2', 48000, undefined, undefined, 48000, 2]] },
    // interleaved by decode time: video 66.7, 100, 133 ms; audio 66.7 ms (tie: traf order), 88 ms
    [1, 6000, 9000, 9000, 3000, true, 'AAAAAAAAAA'],
    [2, 3200, 3200, 6000, 1024, true, 'a1a1'],
    [2, 4224, 4224, 7920, 1024, true, 'a2a2'],
    [1, 9000, 6000, 6000, 3000, false, 'BBBB'],
    [1, 12000, 12000, 12000, 3000, false, 'CCCCCC'],
  ]);
  const init = items[0]!;
  assert.ok(init.kind === 'init');
  assert.equal(init.tracks[0]!.sampleEntry.subarray(4, 8).toString(), 'avc1');
  assert.deepEqual(init.tracks[0]!.sampleEntry, avc1Entry(64, 48));
});

test('parser: the edit list shifts media time to presentation time (ffmpeg delay_moov B-frame shift)', () => {
  const elst = fullBox('elst', 1, 0, u32(2), u64(500), i64(-1), u32(0x10000), u64(0), i64(3000), u32(0x10000));
  const items = parseAll([stream(false, elst)]);
  const samples = items.filter((i) => i.kind === 'sample').map((i) => (i.kind === 'sample' ? i.sample : null)!);
  // shift = 0.5 s empty edit (45000) - media_time 3000 = +42000
  assert.deepEqual(samples.map((s) => [s.dts, s.pts, s.pts90k]), [[48000, 51000, 51000], [51000, 48000, 48000], [54000, 54000, 54000]]);
});

test('parser: the same items whatever the chunking (split at every byte boundary, and byte by byte)', () => {
  const whole = stream();
  const expected = summary(parseAll([whole]));
  for (let k = 1; k < whole.length; k++) {
    assert.deepEqual(summary(parseAll([whole.subarray(0, k), whole.subarray(k)])), expected, `split at ${k}`);
  }
  const bytes: Buffer[] = [];
  for (let i = 0; i < whole.length; i++) bytes.push(whole.subarray(i, i + 1));
  assert.deepEqual(summary(parseAll(bytes)), expected);
});

test('parser: 64-bit box sizes at top level and inside moof; unknown boxes are skipped', () => {
  const whole = stream(false);
  const ftypLen = whole.readUInt32BE(0);
  const moovLen = whole.readUInt32BE(ftypLen);
  const init = whole.subarray(0, ftypLen + moovLen);
  const frag = whole.subarray(ftypLen + moovLen);
  const moofLen = frag.readUInt32BE(0);
  const moof = frag.subarray(0, moofLen);
  const mdat = frag.subarray(moofLen);
  const large = (b: Buffer): Buffer => {
    const out = Buffer.alloc(b.length + 8);
    out.writeUInt32BE(1, 0);
    b.copy(out, 4, 4, 8);
    out.writeBigUInt64BE(BigInt(b.length + 8), 8);
    b.copy(out, 16, 8);
    return out;
  };
  // moof grows by 8 bytes: the trun data offset (relative to the moof start) must follow.
  const moof64 = large(moof);
  const pos = moof64.indexOf('trun') + 4 + 8;
  moof64.writeInt32BE(moof64.readInt32BE(pos) + 8, pos);
  // mdat with a 64-bit size: payload starts 8 bytes later, so the data offset moves again.
  moof64.writeInt32BE(moof64.readInt32BE(pos) + 8, pos);
  const junk = box('free', Buffer.alloc(100, 7));
  const uuid = box('uuid', Buffer.alloc(20, 1));
  const items = parseAll([junk, init, uuid, moof64, large(mdat), junk]);
  assert.deepEqual(
    summary(items).slice(1),
    summary(parseAll([whole])).slice(1),
  );
});

test('parser: a second moov re-initialises (codec change) and later fragments use the new tracks', () => {
  const a = stream(false);
  const b = stream(true);
  const items = parseAll([a, b]);
  const inits = items.filter((i) => i.kind === 'init');
  assert.equal(inits.length, 2);
  assert.ok(inits[1]!.kind === 'init' && inits[1]!.tracks.length === 2);
  assert.equal(items.filter((i) => i.kind === 'sample').length, 3 + 5);
});

function expectFormatError(chunks: Buffer[], pattern: RegExp): void {
  assert.throws(() => parseAll(chunks), (err: unknown) => err instanceof Mp4FormatError && pattern.test(err.message));
}

test('parser: malformed input ends in a clear Mp4FormatError', () => {
  const whole = stream();
  expectFormatError([Buffer.from('this is not an mp4 file at all, just text')], /not printable|invalid size|above the/);
  const tiny = Buffer.from(whole);
  tiny.writeUInt32BE(4, 0);
  expectFormatError([tiny], /invalid size 4/);
  const huge = Buffer.from(whole);
  huge.writeUInt32BE(0xfffffff0, 0);
  expectFormatError([huge], /above the 67108864-byte limit/);
  const zero = Buffer.from(whole);
  zero.writeUInt32BE(0, 0);
  expectFormatError([zero], /size 0/);
  // a child box that overruns its parent
  const overrun = Buffer.from(whole);
  const mvhdAt = overrun.indexOf('mvhd') - 4;
  overrun.writeUInt32BE(0x7fff, mvhdAt);
  expectFormatError([overrun], /overruns its parent/);
  // a trun claiming more samples than it holds
  const trunCount = Buffer.from(whole);
  const trunAt = trunCount.indexOf('trun');
  trunCount.writeUInt32BE(100000, trunAt + 8);
  expectFormatError([trunCount], /overrun the box/);
  // a data offset pointing outside the mdat
  const badOffset = Buffer.from(whole);
  badOffset.writeInt32BE(100000, trunAt + 12);
  expectFormatError([badOffset], /outside the mdat/);
  // fragment before any init
  const ftypLen = whole.readUInt32BE(0);
  const moovLen = whole.readUInt32BE(ftypLen);
  expectFormatError([whole.subarray(ftypLen + moovLen)], /before any moov/);
  // stream cut inside a box
  expectFormatError([whole.subarray(0, whole.length - 3)], /stream ended inside a box/);
});

test('parser: stays failed after an error and never loops on random garbage', () => {
  const whole = stream();
  let state = 12345;
  const rand = (n: number): number => {
    state = (state * 1103515245 + 12345) >>> 0;
    return state % n;
  };
  let errors = 0;
  for (let round = 0; round < 500; round++) {
    const mutated = Buffer.from(whole);
    for (let k = 0; k < 1 + rand(4); k++) mutated[rand(mutated.length)] = rand(256);
    const p = new Fmp4Parser(() => undefined);
    try {
      for (let i = 0; i < mutated.length; i += 7) p.push(mutated.subarray(i, i + 7));
      p.end();
    } catch (err) {
      assert.ok(err instanceof Mp4FormatError, `unexpected ${String(err)}`);
      errors++;
      assert.throws(() => p.push(Buffer.from([0])), Mp4FormatError);
    }
  }
  assert.ok(errors > 0);
});

test('parser: buffering is bounded by the box size cap', () => {
  const p = new Fmp4Parser(() => undefined, { maxBoxBytes: 1024 });
  const head = Buffer.alloc(8);
  head.writeUInt32BE(2048, 0);
  head.write('mdat', 4);
  assert.throws(() => p.push(head), /above the 1024-byte limit/);
});
