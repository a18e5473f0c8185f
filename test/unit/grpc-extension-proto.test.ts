import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeMessage, encodeMessage, type PbMediaStreamMessage } from '../../src/extension/grpc/proto.js';
import { inferenceFromProto, inferenceToProto } from '../../src/extension/grpc/convert.js';
import { classifyStatus, grpcTarget, sampleFormatOf } from '../../src/extension/grpc/client.js';
import { ShmRing } from '../../src/extension/grpc/shared-memory.js';
import type { Inference } from '../../src/nodes/node.js';

/** A minimal protobuf wire reader: field number → values (varint as number, length-delimited as Buffer, fixed32 as float). */
function fields(b: Buffer): Map<number, Array<number | Buffer>> {
  const out = new Map<number, Array<number | Buffer>>();
  let i = 0;
  const varint = () => {
    let v = 0, shift = 0, byte: number;
    do {
      byte = b[i++]!;
      v += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    return v;
  };
  while (i < b.length) {
    const key = varint();
    const field = Math.floor(key / 8), wire = key & 7;
    let value: number | Buffer;
    if (wire === 0) value = varint();
    else if (wire === 2) {
      const len = varint();
      value = b.subarray(i, i + len);
      i += len;
    } else if (wire === 5) {
      value = b.readFloatLE(i);
      i += 4;
    } else throw new Error(`wire type ${wire}`);
    out.set(field, [...(out.get(field) ?? []), value]);
  }
  return out;
}
const one = (m: Map<number, Array<number | Buffer>>, n: number) => {
  const v = m.get(n);
  assert.ok(v && v.length === 1, `field ${n} present once (fields: ${[...m.keys()].join(',')})`);
  return v[0]!;
};
const sub = (m: Map<number, Array<number | Buffer>>, n: number) => fields(one(m, n) as Buffer);

describe('wire compatibility with LVA’s published contract (field numbers)', () => {
  test('MediaStreamMessage with a descriptor: 1, 2, 5 → graph_identifier 1 {1,2,3}, extension_configuration 3, media_descriptor 5 {timescale 1, video_frame_sample_format 5 {1,2,3 {1,2},4}}, shared memory 10 {1,2}', () => {
    const b = encodeMessage({
      sequence_number: 1, ack_sequence_number: 7,
      media_stream_descriptor: {
        graph_identifier: { media_services_arm_id: 'arm', graph_instance_name: 'inst', graph_node_name: 'node' },
        extension_configuration: 'cfg',
        media_descriptor: { timescale: 90_000, video_frame_sample_format: { encoding: 'RAW', pixel_format: 'BGR24', dimensions: { width: 416, height: 234 }, stride_bytes: 1248 } },
        shared_memory_buffer_transfer_properties: { handle_name: 'lva-edge-x', length_bytes: 5 * 1024 * 1024 },
      },
    });
    const m = fields(b);
    assert.equal(one(m, 1), 1);
    assert.equal(one(m, 2), 7);
    const d = sub(m, 5);
    const g = sub(d, 1);
    assert.deepEqual([one(g, 1), one(g, 2), one(g, 3)].map(String), ['arm', 'inst', 'node']);
    assert.equal(String(one(d, 3)), 'cfg');
    const md = sub(d, 5);
    assert.equal(one(md, 1), 90_000);
    const f = sub(md, 5);
    assert.equal(one(f, 1), 3, 'RAW = 3');
    assert.equal(one(f, 2), 61, 'BGR24 = 61');
    const dim = sub(f, 3);
    assert.deepEqual([one(dim, 1), one(dim, 2)], [416, 234]);
    assert.equal(one(f, 4), 1248);
    const shm = sub(d, 10);
    assert.equal(String(one(shm, 1)), 'lva-edge-x');
    assert.equal(one(shm, 2), 5 * 1024 * 1024);
    // The server's descriptor: extension_identifier = 2.
    assert.equal(String(one(sub(fields(encodeMessage({ sequence_number: 1, media_stream_descriptor: { extension_identifier: 'ext' } })), 5), 2)), 'ext');
  });

  test('MediaSample 6: timestamp 1, content_bytes 5 {1}, content_reference 6 {1,2}, inferences 10', () => {
    const ts = 1_614_834_367_000 * 90;
    const emb = sub(fields(encodeMessage({ sequence_number: 2, media_sample: { timestamp: ts, content_bytes: { bytes: Buffer.from('pic') } } })), 6);
    assert.equal(one(emb, 1), ts, '64-bit timestamp survives');
    assert.equal(String(one(sub(emb, 5), 1)), 'pic');
    const ref = sub(fields(encodeMessage({ sequence_number: 3, media_sample: { timestamp: 1, content_reference: { address_offset: 4096, length_bytes: 519_168 } } })), 6);
    const r = sub(ref, 6);
    assert.deepEqual([one(r, 1), one(r, 2)], [4096, 519_168]);
    const withInf = sub(fields(encodeMessage({ sequence_number: 4, media_sample: { inferences: [inferenceToProto({ type: 'motion', motion: { box: { l: 0.5, t: 0.25, w: 0.125, h: 1 } } })] } })), 6);
    const inf = sub(withInf, 10);
    assert.equal(one(inf, 1), 2, 'MOTION = 2');
    const box = sub(sub(inf, 6), 1);
    assert.deepEqual([one(box, 1), one(box, 2), one(box, 3), one(box, 4)], [0.5, 0.25, 0.125, 1]);
  });

  test('Inference: type 1, subtype 2, inference_id 3, related 4, sequence_id 14, entity 7 {tag 1 {value 2, confidence 3}, attributes 2 {1,2,3}, box 3, id 4}, extensions 15, other 13 {1,2}, event 9 {1, properties 7}, text 8 {1,2,5,6}, classification 5', () => {
    const e = fields(Buffer.from(encodeMessage({ media_sample: { inferences: [{
      type: 'ENTITY', subtype: 'vehicle', inference_id: 'i1', related_inferences: ['i0'], sequence_id: 's1',
      entity: { tag: { value: 'car', confidence: 0.5 }, attributes: [{ name: 'color', value: 'red', confidence: 0.25 }], box: { l: 0, t: 0, w: 1, h: 1 }, id: 'e1' },
      extensions: { k: 'v' },
    }] } })));
    const inf = sub(sub(e, 6), 10);
    assert.equal(one(inf, 1), 3, 'ENTITY = 3');
    assert.deepEqual([2, 3, 4, 14].map((n) => String(one(inf, n))), ['vehicle', 'i1', 'i0', 's1']);
    const ent = sub(inf, 7);
    const tag = sub(ent, 1);
    assert.deepEqual([String(one(tag, 2)), one(tag, 3)], ['car', 0.5]);
    const attr = sub(ent, 2);
    assert.deepEqual([String(one(attr, 1)), String(one(attr, 2)), one(attr, 3)], ['color', 'red', 0.25]);
    assert.ok(inf.get(15), 'extensions map = 15');
    assert.equal(String(one(ent, 4)), 'e1');
    const kinds = (i: Record<string, unknown>) => sub(sub(fields(encodeMessage({ media_sample: { inferences: [i] } })), 6), 10);
    const other = kinds({ type: 'OTHER', other: { content_type: 'text/plain', content_bytes: Buffer.from('x') } });
    assert.equal(one(other, 1), 15, 'OTHER = 15');
    assert.deepEqual([String(one(sub(other, 13), 1)), String(one(sub(other, 13), 2))], ['text/plain', 'x']);
    const ev = kinds({ type: 'EVENT', event: { name: 'n', properties: { a: 'b' } } });
    assert.equal(one(ev, 1), 5);
    assert.equal(String(one(sub(ev, 9), 1)), 'n');
    assert.ok(sub(ev, 9).get(7));
    const text = kinds({ type: 'TEXT', text: { value: 'hi', language: 'en', start_timestamp: 5, end_timestamp: 6 } });
    assert.equal(one(text, 1), 4);
    const t = sub(text, 8);
    assert.deepEqual([String(one(t, 1)), String(one(t, 2)), one(t, 5), one(t, 6)], ['hi', 'en', 5, 6]);
    const cls = kinds({ type: 'CLASSIFICATION', classification: { tag: { value: 'day' } } });
    assert.equal(one(cls, 1), 1);
    assert.equal(String(one(sub(sub(cls, 5), 1), 2)), 'day');
  });

  test('decode(encode(m)) = m for messages the graph and the reference server exchange', () => {
    const m: PbMediaStreamMessage = { sequence_number: 9, ack_sequence_number: 8, media_sample: { timestamp: 123_456_789_012, content_reference: { address_offset: 10, length_bytes: 20 } } };
    const d = decodeMessage(encodeMessage(m));
    assert.equal(d.payload, 'media_sample');
    assert.equal(d.media_sample?.content, 'content_reference');
    assert.deepEqual({ s: d.sequence_number, a: d.ack_sequence_number, t: d.media_sample?.timestamp, r: d.media_sample?.content_reference }, { s: 9, a: 8, t: 123_456_789_012, r: { address_offset: 10, length_bytes: 20 } });
    assert.throws(() => decodeMessage(Buffer.from([0x32, 0x10])), /index out of range/, 'a truncated sample is refused');
    assert.throws(() => decodeMessage(Buffer.from([0x07])), /wire type/, 'a bad wire type is refused');
  });
});

describe('inference conversion (protobuf ⇄ LVA JSON)', () => {
  const roundTrip = (i: Inference) => {
    const pb = decodeMessage(encodeMessage({ media_sample: { inferences: [inferenceToProto(i)] } })).media_sample!.inferences![0]!;
    return inferenceFromProto(pb);
  };
  test('every inference kind survives JSON → protobuf (wire) → JSON, floats rounded to 6 decimals', () => {
    const cases: Inference[] = [
      { type: 'entity', entity: { tag: { value: 'red', confidence: 0.3 }, box: { l: 0.1, t: 0.2, w: 0.3, h: 0.4 } } },
      { type: 'entity', subtype: 'car', inferenceId: 'a', relatedInferences: ['b'], entity: { tag: { value: 'car', confidence: 0.9 }, attributes: [{ name: 'color', value: 'red', confidence: 0.7 }], box: { l: 0, t: 0, w: 1, h: 1 }, id: 'x' }, extensions: { k: 'v' } },
      { type: 'classification', classification: { tag: { value: 'day', confidence: 0.6 }, attributes: [{ name: 'bw', value: 'false', confidence: 1 }] } },
      { type: 'motion', motion: { box: { l: 0.125, t: 0.5, w: 0.25, h: 0.1 } } },
      { type: 'text', text: { value: 'hello', language: 'en-US', startTimestamp: 900, endTimestamp: 1800 } },
      { type: 'event', event: { name: 'lineCrossed', properties: { direction: 'in', count: '3' } } },
      { type: 'other', other: { contentType: 'application/xml', contentBytes: Buffer.from('<a/>').toString('base64') } },
    ];
    for (const c of cases) assert.deepEqual(roundTrip(c), c);
  });

  test('AUTO takes its type from the value; a declared type without its value falls back to the value; no value = dropped', () => {
    assert.equal(inferenceFromProto({ type: 'AUTO', motion: { box: { l: 0.5 } } })?.type, 'motion');
    assert.deepEqual(inferenceFromProto({ type: 'AUTO', motion: { box: { l: 0.5 } } })?.motion, { box: { l: 0.5, t: 0, w: 0, h: 0 } });
    assert.equal(inferenceFromProto({ type: 'ENTITY', event: { name: 'e' } })?.type, 'event');
    assert.equal(inferenceFromProto({ type: 3, entity: { tag: { value: 'x' } } })?.type, 'entity', 'numeric enum');
    assert.equal(inferenceFromProto({ type: 'ENTITY' }), undefined);
    assert.equal(inferenceFromProto({}), undefined);
  });

  test('property: any entity with boxes in [0,1] converts to JSON the inference schema accepts, within 1e-6', () => {
    const unit = fc.double({ min: 0, max: 1, noNaN: true });
    fc.assert(fc.property(fc.string(), unit, unit, unit, unit, unit, (tag, c, l, t, w, h) => {
      const out = roundTrip({ type: 'entity', entity: { tag: { value: tag, confidence: c }, box: { l, t, w, h } } })!;
      const e = out.entity as any;
      assert.equal(e.tag.value, tag);
      for (const [a, b] of [[e.box.l, l], [e.box.t, t], [e.box.w, w], [e.box.h, h], [e.tag.confidence, c]] as const) {
        assert.ok(Math.abs(a - b) <= 1e-6 + 1e-7 * b, `${a} vs ${b}`);
        assert.ok(a >= 0 && a <= 1);
      }
    }), { numRuns: 300 });
  });
});

describe('client pure parts', () => {
  test('sample format from the image ffmpeg made', () => {
    const img = (contentType: string, extra: object = {}) => ({ width: 416, height: 234, contentType, content: { l: 0, t: 0, w: 1, h: 1 }, data: Buffer.alloc(0), ...extra });
    assert.deepEqual(sampleFormatOf(img('image/jpeg')), { encoding: 'JPG', pixel_format: 'NONE', dimensions: { width: 416, height: 234 } });
    assert.deepEqual(sampleFormatOf(img('image/bmp')).encoding, 'BMP');
    assert.deepEqual(sampleFormatOf(img('image/png')).encoding, 'PNG');
    const raw = { rgb24: 'RGB24', bgr24: 'BGR24', yuv420p: 'YUV420P', rgb565be: 'RGB565BE', rgb565le: 'RGB565LE', rgb555be: 'RGB555BE', rgb555le: 'RGB555LE', argb: 'ARGB', rgba: 'RGBA', abgr: 'ABGR', bgra: 'BGRA' };
    for (const [ff, pb] of Object.entries(raw)) {
      assert.deepEqual(sampleFormatOf(img('image/x-raw', { pixelFormat: ff, stride: 1248 })), { encoding: 'RAW', pixel_format: pb, dimensions: { width: 416, height: 234 }, stride_bytes: 1248 });
    }
  });

  test('tcp:// URLs become grpc targets', () => {
    assert.equal(grpcTarget('tcp://yolov3:44000'), 'yolov3:44000');
    assert.equal(grpcTarget('tcp://127.0.0.1:5001'), '127.0.0.1:5001');
    assert.equal(grpcTarget('tcp://[::1]:5001'), '[::1]:5001');
  });

  test('gRPC statuses → LVA diagnostics', () => {
    const c = (code: number, details: string) => classifyStatus({ code, details }, 'tcp://x:1');
    assert.deepEqual([c(14, 'connect ECONNREFUSED').name, c(14, 'connect ECONNREFUSED').errorCode], ['NetworkError', 'ConnectionRefused']);
    assert.equal(c(14, 'dns').errorCode, 'Unavailable');
    assert.equal(c(16, 'bad').name, 'AuthenticationError');
    assert.equal(c(7, 'no').name, 'AuthorizationError');
    assert.equal(c(4, 'slow').errorCode, 'Timeout');
    assert.equal(c(13, 'Failed to parse server response').errorCode, 'InvalidMessage');
    assert.equal(c(13, 'Response message parsing error: index out of range').errorCode, 'InvalidMessage', 'grpc-js wording');
    assert.deepEqual([c(14, 'self-signed certificate in chain').protocol, c(14, 'x509 certificate').name], ['tls', 'ProtocolError']);
    assert.equal(c(3, 'bad arg').errorCode, 'INVALID_ARGUMENT');
    assert.equal(c(8, 'Received message larger than max (20000000 vs 16777216)').errorCode, 'MessageTooLarge');
    assert.equal(c(8, 'queue full').errorCode, 'ResourceExhausted');
  });
});

describe('shared memory ring allocator', () => {
  test('in order: fills, refuses when full, reclaims from the oldest end, wraps without splitting a picture', () => {
    const r = new ShmRing(100);
    assert.equal(r.allocate(1, 40), 0);
    assert.equal(r.allocate(2, 40), 40);
    assert.equal(r.allocate(3, 30), undefined, 'only 20 bytes left at the end, none at the start');
    assert.ok(r.release(1));
    assert.equal(r.allocate(3, 30), 0, 'wraps to the start: [0,40) is free, the end has only 20');
    assert.equal(r.allocate(4, 15), undefined, 'wrapped: only [30,40) free');
    assert.equal(r.allocate(4, 10), 30);
    assert.ok(r.release(2));
    assert.equal(r.allocate(5, 50), 40, 'past the wrap point again: [40,100) free');
    assert.ok(!r.release(2), 'a repeated ack is ignored');
    assert.ok(!r.release(99), 'an unknown ack is ignored');
    for (const id of [3, 4, 5]) r.release(id);
    assert.equal(r.liveRegions, 0);
    assert.equal(r.allocate(6, 100), 0, 'empty: the whole ring');
    assert.equal(r.allocate(7, 101), undefined, 'larger than the ring');
    assert.equal(r.allocate(8, 0), undefined, 'empty pictures take no region');
  });

  test('an early ack waits for the regions before it', () => {
    const r = new ShmRing(90);
    r.allocate(1, 30);
    r.allocate(2, 30);
    r.allocate(3, 30);
    r.release(2);
    assert.equal(r.allocate(4, 30), undefined, 'region 1 still holds the oldest end');
    r.release(1);
    assert.equal(r.allocate(4, 60), 0);
  });

  test('property: live regions never overlap and stay inside the ring, whatever the order of acks', () => {
    fc.assert(fc.property(
      fc.integer({ min: 16, max: 4096 }),
      fc.array(fc.oneof(fc.record({ op: fc.constant('alloc' as const), len: fc.integer({ min: 1, max: 1500 }) }), fc.record({ op: fc.constant('ack' as const), pick: fc.nat() })), { maxLength: 200 }),
      (size, ops) => {
        const r = new ShmRing(size);
        const live = new Map<number, [number, number]>();
        let id = 0;
        for (const o of ops) {
          if (o.op === 'alloc') {
            const off = r.allocate(++id, o.len);
            if (off === undefined) {
              if (live.size === 0) assert.ok(o.len > size, 'an empty ring refuses only what cannot fit at all');
              continue;
            }
            assert.ok(off >= 0 && off + o.len <= size);
            for (const [a, len] of live.values()) assert.ok(off + o.len <= a || a + len <= off, 'no overlap');
            live.set(id, [off, o.len]);
          } else if (live.size > 0) {
            const keys = [...live.keys()];
            const k = keys[o.pick % keys.length]!;
            assert.ok(r.release(k));
            live.delete(k);
          }
        }
      },
    ), { numRuns: 400 });
  });
});
