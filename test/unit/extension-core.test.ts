import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RateLimiter, Sampler } from '../../src/extension/sampling.js';
import { mapBoxesToFrame } from '../../src/extension/boxes.js';
import { interpretReply, parseRetryAfter, DEFAULT_RETRY_AFTER_MS, MAX_RETRY_AFTER_MS } from '../../src/extension/reply.js';
import { PictureJoiner } from '../../src/media/picture-join.js';
import { buildIngestArgs, imageFilters, imageEncoding, jpegQscale, padContent, RAW_PIXEL_FORMATS, IngestArgsError } from '../../src/media/ffmpeg-args.js';
import { findColouredBlobs, readBmp, readRaw, ANALYSIS_SIZE } from '../../src/tools/inference-server.js';
import { imageRequestKey } from '../../src/nodes/node.js';

const S = 90_000;

describe('RateLimiter / Sampler (media time)', () => {
  test('at most one frame per 1/rate slot: ≤ ceil(rate) in every aligned second, ≤ rate·T + 2 over any span', () => {
    fc.assert(fc.property(
      fc.double({ min: 0.1, max: 30, noNaN: true }),
      fc.array(fc.integer({ min: 1, max: 20_000 }), { minLength: 1, maxLength: 400 }),
      (rate, steps) => {
        const r = new RateLimiter(rate);
        let t = 0;
        const taken: number[] = [];
        for (const d of steps) {
          t += d;
          if (r.take(t)) taken.push(t);
        }
        const perSecond = new Map<number, number>();
        for (const x of taken) perSecond.set(Math.floor(x / S), (perSecond.get(Math.floor(x / S)) ?? 0) + 1);
        for (const [, n] of perSecond) assert.ok(n <= Math.ceil(rate), `${n} in one second at ${rate}/s`);
        for (let i = 0; i < taken.length; i++) {
          for (let j = i + 1; j < taken.length; j++) {
            assert.ok(j - i + 1 < rate * ((taken[j]! - taken[i]!) / S) + 2, `${j - i + 1} frames over ${(taken[j]! - taken[i]!) / S} s at ${rate}/s`);
          }
        }
      },
    ), { numRuns: 200 });
  });

  test('a grid at exactly the rate (pts rounded to 90 kHz ticks) passes every frame', () => {
    for (const rate of [1, 5, 7, 15, 29.97]) {
      const r = new RateLimiter(rate);
      let passed = 0;
      for (let n = 0; n < 300; n++) if (r.take(Math.round((n * S) / rate))) passed++;
      assert.equal(passed, 300, `rate ${rate}`);
    }
  });

  test('25 fps thinned to 5/s keeps every 5th frame; no limit keeps all', () => {
    const r = new RateLimiter(5);
    const kept = Array.from({ length: 50 }, (_, n) => n * 3600).filter((t) => r.take(t));
    assert.deepEqual(kept, [0, 18000, 36000, 54000, 72000, 90000, 108000, 126000, 144000, 162000]);
    const all = new RateLimiter(undefined);
    assert.ok([0, 1, 2].every((t) => all.take(t)));
    assert.throws(() => new RateLimiter(0), RangeError);
  });

  test('Sampler: annotation filter, rate counted on sent frames only, 503 back-off on media time', () => {
    const s = new Sampler({ maximumSamplesPerSecond: 2, skipSamplesWithoutAnnotation: true });
    assert.equal(s.decide(0, false), 'annotation');
    assert.equal(s.decide(0, true), 'send');
    assert.equal(s.decide(1000, true), 'send', 'not recorded until sent()');
    s.sent(1000);
    assert.equal(s.decide(30_000, true), 'rate', 'same half-second slot');
    assert.equal(s.decide(46_000, true), 'send', 'next slot');
    s.sent(46_000);
    s.backOff(46_000, 3000);
    assert.equal(s.decide(46_000 + 3 * S - 1, true), 'backoff');
    assert.equal(s.decide(46_000 + 3 * S, true), 'send');
  });
});

describe('Pad boxes → frame boxes', () => {
  test("lva-spec §5.2 example: 0.2 padding left/right, (0.2,0,0.6,1) → (0,0,1,1)", () => {
    const out = mapBoxesToFrame([{ type: 'entity', entity: { tag: { value: 'x' }, box: { l: 0.2, t: 0, w: 0.6, h: 1 } } }], { l: 0.2, t: 0, w: 0.6, h: 1 });
    assert.deepEqual((out[0] as any).entity.box, { l: 0, t: 0, w: 1, h: 1 });
  });
  test('boxes on the bars are clipped; inferences without boxes and the input are untouched', () => {
    const input = [
      { type: 'motion', motion: { box: { l: 0, t: 0.1, w: 0.3, h: 0.2 } } },
      { type: 'classification', classification: { tag: { value: 'car' } } },
    ];
    const copy = structuredClone(input);
    const out = mapBoxesToFrame(input, { l: 0.1, t: 0, w: 0.8, h: 1 });
    assert.deepEqual((out[0] as any).motion.box, { l: 0, t: 0.1, w: 0.25, h: 0.2 });
    assert.deepEqual(out[1], input[1]);
    assert.deepEqual(input, copy);
    assert.deepEqual(mapBoxesToFrame(input), input);
  });
  test('padContent mirrors ffmpeg: 640x360 into 416x416 → 416x234 centred (even offset for yuv)', () => {
    const c = padContent(640, 360, 416, 416, 'yuvj420p');
    assert.equal(c.w, 1);
    assert.equal(Math.round(c.h * 416), 234);
    assert.equal(Math.round(c.t * 416), 90);
    const p = padContent(360, 640, 416, 416, 'rgb24');
    assert.equal(Math.round(p.w * 416), 234);
    assert.equal(Math.round(p.l * 416), 91);
  });
});

describe('reply interpretation (lva-spec §5.1)', () => {
  const json = (body: unknown, status = 200, type = 'application/json') => interpretReply({ status, headers: { 'content-type': type }, body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)) });
  const entity = { type: 'entity', entity: { tag: { value: 'truck', confidence: 0.9 }, box: { l: 0.1, t: 0.2, w: 0.3, h: 0.4 } } };
  test('200 + valid inferences; 204 and empty list = nothing', () => {
    assert.deepEqual(json({ inferences: [entity] }), { kind: 'inferences', inferences: [entity] });
    assert.equal(interpretReply({ status: 204, headers: {}, body: Buffer.alloc(0) }).kind, 'nothing');
    assert.equal(json({ inferences: [] }).kind, 'nothing');
    assert.equal(json('', 200).kind, 'nothing');
    assert.equal(json({ inferences: [entity] }, 200, 'application/json; charset=utf-8').kind, 'inferences');
  });
  test('bad JSON, wrong shapes, oversize → ProtocolError with a code per kind', () => {
    const code = (o: ReturnType<typeof interpretReply>) => (o.kind === 'failed' ? o.problem.errorCode : o.kind);
    assert.equal(code(json('{"inferences": [')), 'InvalidJson');
    assert.equal(code(json({ inferences: [{ type: 'entity' }] })), 'InvalidInferenceSchema');
    assert.equal(code(json({ inferences: [{ type: 'entity', entity: { tag: { value: 'x' }, box: { l: 2, t: 0, w: 1, h: 1 } } }] })), 'InvalidInferenceSchema');
    assert.equal(code(json([1, 2])), 'InvalidInferenceSchema');
    assert.equal(code(json('null')), 'InvalidInferenceSchema');
    assert.equal(code(interpretReply({ status: 200, headers: {}, body: Buffer.alloc(0), tooLarge: true })), 'ResponseTooLarge');
    assert.equal(code(json({}, 500)), '500');
    assert.equal(code(json({}, 400)), '400');
    const a = json({}, 401);
    assert.ok(a.kind === 'failed' && a.problem.name === 'AuthenticationError');
    const b = json({}, 403);
    assert.ok(b.kind === 'failed' && b.problem.name === 'AuthorizationError');
  });
  test("non-JSON content type → one opaque 'other' inference plus a notice", () => {
    const o = json('hello', 200, 'text/plain');
    assert.equal(o.kind, 'inferences');
    assert.ok(o.kind === 'inferences' && o.problem?.errorCode === 'UnexpectedContentType');
    assert.deepEqual(o.kind === 'inferences' && o.inferences, [{ type: 'other', other: { contentType: 'text/plain', contentBytes: Buffer.from('hello').toString('base64') } }]);
  });
  test('503 + Retry-After: seconds, HTTP date, missing or garbage → default, clamped', () => {
    const now = Date.parse('2024-01-01T00:00:00Z');
    assert.deepEqual(interpretReply({ status: 503, headers: { 'retry-after': '3' }, body: Buffer.alloc(0) }, now), { kind: 'busy', retryAfterMs: 3000 });
    assert.equal(parseRetryAfter('Mon, 01 Jan 2024 00:00:05 GMT', now), 5000);
    assert.equal(parseRetryAfter(undefined, now), DEFAULT_RETRY_AFTER_MS);
    assert.equal(parseRetryAfter('soon', now), DEFAULT_RETRY_AFTER_MS);
    assert.equal(parseRetryAfter('100000', now), MAX_RETRY_AFTER_MS);
    assert.equal(parseRetryAfter('Sun, 31 Dec 2023 00:00:00 GMT', now), 0);
  });
});

describe('PictureJoiner', () => {
  test('joins parts of the same pts across outputs, whatever the arrival interleaving', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 30, maxLength: 30 }), (order) => {
      const got: number[][] = [];
      const j = new PictureJoiner<{ pts90k: number; o: number }>(3, (parts) => got.push(parts.map((p) => p.pts90k)));
      const next = [0, 0, 0];
      // Feed 10 pictures per output in an arbitrary interleaving (each output in order).
      const seq = [...order.map((o) => o), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2];
      for (const o of seq) if (next[o]! < 10) j.push(o, { pts90k: next[o]!++ * 3600, o });
      assert.deepEqual(got, Array.from({ length: 10 }, (_, n) => [n * 3600, n * 3600, n * 3600]));
      assert.equal(j.unmatched, 0);
    }), { numRuns: 100 });
  });
  test('a part without partners is dropped and counted instead of stalling', () => {
    const got: number[] = [];
    const j = new PictureJoiner<{ pts90k: number }>(2, (p) => got.push(p[0]!.pts90k));
    j.push(0, { pts90k: 0 });
    j.push(0, { pts90k: 10 });
    j.push(1, { pts90k: 10 });
    assert.deepEqual(got, [10]);
    assert.equal(j.unmatched, 1);
  });
});

describe('image outputs of the ingest ffmpeg', () => {
  test('filters per scale mode', () => {
    assert.equal(imageFilters({ scale: { mode: 'Stretch', width: 300, height: 200 }, format: { encoding: 'Png' } }, 'rgb24'), 'scale=300:200,setsar=1,format=rgb24');
    assert.match(imageFilters({ scale: { mode: 'Pad', width: 416, height: 416 }, format: { encoding: 'Jpeg' } }, 'yuvj420p'), /force_original_aspect_ratio=decrease.*format=yuvj420p,pad=416:416/);
    assert.match(imageFilters({ scale: { mode: 'PreserveAspectRatio', width: 416 }, format: { encoding: 'Bmp' } }, 'bgr24'), /^scale=416:-1,/);
    assert.match(imageFilters({ scale: { mode: 'PreserveAspectRatio', height: 100 }, format: { encoding: 'Bmp' } }, 'bgr24'), /^scale=-1:100,/);
    assert.equal(imageFilters({ format: { encoding: 'Bmp' } }, 'bgr24'), 'format=bgr24');
    assert.throws(() => imageFilters({ scale: { mode: 'Pad', width: 416 }, format: { encoding: 'Bmp' } }, 'bgr24'), IngestArgsError);
    assert.throws(() => imageFilters({ scale: { mode: 'Stretch', width: 0, height: 5 }, format: { encoding: 'Bmp' } }, 'bgr24'), IngestArgsError);
  });
  test('encodings: JPEG quality → qscale, all eleven raw formats, content types', () => {
    assert.equal(jpegQscale(100), 2);
    assert.equal(jpegQscale(0), 31);
    assert.deepEqual(imageEncoding({ format: { encoding: 'Jpeg', quality: 50 } }).args.slice(-2), ['-q:v', String(jpegQscale(50))]);
    assert.equal(Object.keys(RAW_PIXEL_FORMATS).length, 11);
    for (const [lva, pf] of Object.entries(RAW_PIXEL_FORMATS)) {
      const e = imageEncoding({ format: { encoding: 'Raw', pixelFormat: lva } });
      assert.equal(e.pixelFormat, pf);
      assert.equal(e.contentType, 'image/x-raw');
    }
    assert.throws(() => imageEncoding({ format: { encoding: 'Raw', pixelFormat: 'Gray' } }), IngestArgsError);
    assert.throws(() => imageEncoding({ format: { encoding: 'Jpeg', quality: 101 } }), IngestArgsError);
  });
  test('one decode, fps before split, gray on pipe:3 then one pipe per image', () => {
    const args = buildIngestArgs({ input: '/x.mp4', inputKind: 'file', audio: false, decode: { width: 320, height: 180, fps: 5, images: [
      { format: { encoding: 'Jpeg', quality: 90 } }, { scale: { mode: 'Stretch', width: 64, height: 64 }, format: { encoding: 'Raw', pixelFormat: 'Bgr24' } },
    ] } });
    const fc2 = args[args.indexOf('-filter_complex') + 1]!;
    assert.match(fc2, /^\[0:v:0\]select='isnan\(prev_selected_t\)\+gt\(floor\(\(t\+0\.00001\)\*5\),floor\(\(prev_selected_t\+0\.00001\)\*5\)\)',split=3\[p0\]\[p1\]\[p2\];/);
    assert.ok(['pipe:1', 'pipe:3', 'pipe:4', 'pipe:5'].every((p) => args.includes(p)));
    assert.ok(!args.includes('-skip_loop_filter'), 'images are decoded with the loop filter');
    const noGray = buildIngestArgs({ input: '/x.mp4', inputKind: 'file', audio: false, decode: { width: 0, height: 0, images: [{ format: { encoding: 'Png' } }] } });
    assert.match(noGray[noGray.indexOf('-filter_complex') + 1]!, /^\[0:v:0\]null\[p0\];\[p0\]format=rgb24\[img0\]$/);
    assert.ok(noGray.includes('pipe:3') && !noGray.includes('pipe:4'));
  });
  test('image request keys: equal images share an output', () => {
    const a = imageRequestKey({ scale: { mode: 'Pad', width: 416, height: 416 }, format: { encoding: 'Jpeg', quality: 90 } });
    assert.equal(a, imageRequestKey({ scale: { mode: 'Pad', width: 416, height: 416 }, format: { encoding: 'Jpeg', quality: 90 } }));
    assert.notEqual(a, imageRequestKey({ scale: { mode: 'Pad', width: 416, height: 416 }, format: { encoding: 'Jpeg', quality: 80 } }));
  });
});

describe('reference server core', () => {
  const picture = (boxes: Array<{ x: number; y: number; w: number; h: number; rgb: [number, number, number] }>) => {
    const n = ANALYSIS_SIZE;
    const rgb = new Uint8Array(n * n * 3).fill(128);
    for (const b of boxes) for (let y = b.y; y < b.y + b.h; y++) for (let x = b.x; x < b.x + b.w; x++) rgb.set(b.rgb, (y * n + x) * 3);
    return rgb;
  };
  test('finds each coloured blob with a normalised box; gray finds nothing; specks are ignored', () => {
    const found = findColouredBlobs(picture([
      { x: 48, y: 96, w: 24, h: 48, rgb: [230, 20, 20] }, { x: 150, y: 10, w: 10, h: 10, rgb: [20, 20, 230] }, { x: 2, y: 2, w: 2, h: 2, rgb: [20, 200, 20] },
    ]));
    assert.equal(found.length, 2);
    const red = found.find((f) => f.entity.tag.value === 'red')!;
    assert.deepEqual(red.entity.box, { l: 0.25, t: 0.5, w: 0.125, h: 0.25 });
    assert.equal(red.entity.tag.confidence, 1);
    assert.ok(found.some((f) => f.entity.tag.value === 'blue'));
    assert.deepEqual(findColouredBlobs(picture([])), []);
  });
  test('BMP and raw readers (24-bit bottom-up BMP; rgb565le, yuv420p)', () => {
    // 2x2 BMP: bottom row blue, top row red.
    const row = (b: number, g: number, r: number) => [b, g, r, b, g, r, 0, 0];
    const bmp = Buffer.alloc(54 + 16);
    bmp.write('BM', 0, 'latin1');
    bmp.writeUInt32LE(54, 10); bmp.writeUInt32LE(40, 14); bmp.writeInt32LE(2, 18); bmp.writeInt32LE(2, 22); bmp.writeUInt16LE(1, 26); bmp.writeUInt16LE(24, 28);
    Buffer.from([...row(255, 0, 0), ...row(0, 0, 255)]).copy(bmp, 54);
    const src = readBmp(bmp);
    const px = [0, 0, 0];
    src.rgbAt(0, 0, px);
    assert.deepEqual(px, [255, 0, 0]);
    src.rgbAt(1, 1, px);
    assert.deepEqual(px, [0, 0, 255]);
    const r565 = Buffer.alloc(2);
    r565.writeUInt16LE(0xf800);
    readRaw(r565, 1, 1, 'rgb565le').rgbAt(0, 0, px);
    assert.deepEqual(px, [255, 0, 0]);
    const yuv = Buffer.from([81, 81, 81, 81, 90, 240]); // BT.601 red
    readRaw(yuv, 2, 2, 'yuv420p').rgbAt(1, 1, px);
    assert.ok(px[0]! > 230 && px[1]! < 20 && px[2]! < 20, String(px));
    assert.throws(() => readRaw(Buffer.alloc(1), 2, 2, 'rgb24'));
    assert.throws(() => readBmp(Buffer.from('nope')));
  });
});
