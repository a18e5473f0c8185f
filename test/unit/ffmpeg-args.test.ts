import { test } from 'node:test';
import assert from 'node:assert/strict';

import { buildIngestArgs, redactUrl, IngestArgsError } from '../../src/media/ffmpeg-args.js';
import { avcCodecString, hevcCodecString, isH264Idr, isH265Irap, nalUnitTypes } from '../../src/media/h264.js';

test('ingest args: rtsp input with transport, timeout, copy to pipe:1 and gray decode to pipe:3', () => {
  const args = buildIngestArgs({
    input: 'rtsp://user:secret@cam.local:554/stream1',
    inputKind: 'rtsp',
    decode: { width: 320, height: 180 },
    audio: true,
  });
  const at = (flag: string, from = 0): string => args[args.indexOf(flag, from) + 1]!;
  assert.equal(at('-rtsp_transport'), 'tcp');
  assert.equal(at('-timeout'), '5000000');
  assert.equal(at('-i'), 'rtsp://user:secret@cam.local:554/stream1');
  assert.ok(args.indexOf('-skip_loop_filter') < args.indexOf('-i'), 'decoder options go before -i');
  assert.ok(args.includes('-copyts'));
  assert.equal(args.filter((a) => a === 'pipe:1').length, 1);
  assert.equal(args.filter((a) => a === 'pipe:3').length, 1);
  assert.ok(args.includes('0:a:0?'));
  assert.equal(at('-vf'), 'scale=320:180:flags=fast_bilinear,format=gray');
  assert.equal(args.filter((a) => a === 'empty_moov+delay_moov+default_base_moof').length, 2);
  assert.equal(args.filter((a) => a === '-frag_duration').length, 2);
});

test('ingest args: file input becomes file:<absolute path>; realtime adds -re; no decode means no pipe:3', () => {
  const args = buildIngestArgs({ input: 'clips/a.mp4', inputKind: 'file', realtime: true, audio: false });
  assert.equal(args[args.indexOf('-i') + 1], 'file:' + process.cwd() + '/clips/a.mp4');
  assert.ok(args.includes('-re'));
  assert.ok(!args.includes('pipe:3'));
  assert.ok(!args.includes('0:a:0?'));
  const fps = buildIngestArgs({ input: '/x.mkv', inputKind: 'file', audio: false, decode: { width: 160, height: 90, fps: 5 } });
  assert.equal(fps[fps.indexOf('-vf') + 1], 'fps=5,scale=160:90:flags=fast_bilinear,format=gray');
});

test('ingest args: option and protocol injection is rejected', () => {
  const bad: [string, 'rtsp' | 'file'][] = [
    ['-f lavfi', 'rtsp'],
    ['-i', 'file'],
    ['http://cam/stream', 'rtsp'],
    ['concat:a.mp4|b.mp4', 'file'],
    ['http://evil/x.mp4', 'file'],
    ['rtsp://cam/stream\n-y', 'rtsp'],
    ['not a url', 'rtsp'],
  ];
  for (const [input, inputKind] of bad) {
    assert.throws(() => buildIngestArgs({ input, inputKind, audio: false }), IngestArgsError, input);
  }
  // A name that only looks like a protocol stays a file name behind the file: prefix.
  const sub = buildIngestArgs({ input: '/tmp/subfile,,start,0,end,1,,:x', inputKind: 'file', audio: false });
  assert.equal(sub[sub.indexOf('-i') + 1], 'file:/tmp/subfile,,start,0,end,1,,:x');
  assert.throws(() => buildIngestArgs({ input: '/a.mp4', inputKind: 'file', audio: false, decode: { width: 321, height: 180 } }), IngestArgsError);
  assert.doesNotThrow(() => buildIngestArgs({ input: 'rtsps://cam/s', inputKind: 'rtsp', rtspTransport: 'http', audio: false }));
});

test('redactUrl hides the password only', () => {
  assert.equal(redactUrl('rtsp://admin:p%40ss@10.0.0.2:554/h264'), 'rtsp://admin:***@10.0.0.2:554/h264');
  assert.equal(redactUrl('rtsp://10.0.0.2/h264'), 'rtsp://10.0.0.2/h264');
  assert.equal(redactUrl('rtsp://admin@10.0.0.2/h264'), 'rtsp://admin@10.0.0.2/h264');
  assert.equal(redactUrl('rtsp://u:p w@[bad/x'), 'rtsp://u:***@[bad/x');
});

test('h264 helpers: NAL types, IDR / IRAP detection, codec strings', () => {
  const au = (...nals: number[][]): Buffer =>
    Buffer.concat(nals.map((n) => Buffer.concat([Buffer.from([0, 0, 0, n.length]), Buffer.from(n)])));
  const idr = au([0x09, 0xf0], [0x67, 1, 2], [0x68, 3], [0x65, 0x88, 0x84]);
  const p = au([0x09, 0x30], [0x41, 0x9a]);
  assert.deepEqual(nalUnitTypes(idr, 'h264'), [9, 7, 8, 5]);
  assert.equal(isH264Idr(idr), true);
  assert.equal(isH264Idr(p), false);
  const cra = au([0x40, 0x01], [0x2a, 0x01, 0xaf]); // VPS (32), CRA (21)
  const trail = au([0x02, 0x01, 0xd0]); // TRAIL_R (1)
  assert.equal(isH265Irap(cra), true);
  assert.equal(isH265Irap(trail), false);
  assert.equal(isH264Idr(Buffer.from([0, 0, 0, 9, 0x65])), false, 'truncated NAL is not trusted');
  assert.equal(avcCodecString(Buffer.from([1, 0x64, 0x00, 0x28, 0xff])), 'avc1.640028');
  // x265 Main, level 3.1 (93), tier Main, compat flags 0x60000000, constraint 0xb0
  const hvcC = Buffer.alloc(23);
  hvcC[0] = 1;
  hvcC[1] = 0x01;
  hvcC.writeUInt32BE(0x60000000, 2);
  hvcC[6] = 0xb0;
  hvcC[12] = 93;
  assert.equal(hevcCodecString(hvcC), 'hvc1.1.6.L93.B0');
});
