// Pure parts of the RTSP credential relay: the message/frame splitter over arbitrary chunk boundaries,
// Basic/Digest computation against the RFC 2617 / RFC 7616 examples, challenge parsing and the URL map.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  basicAuthorization,
  chooseChallenge,
  digestAuthorization,
  digestResponse,
  loopbackPeerUid,
  parseChallenges,
  RtspAuthenticator,
  RtspProtocolError,
  RtspStreamSplitter,
  RtspUrlMap,
  serializeMessage,
  urlHasCredentials,
  type RtspItem,
  type RtspMessage,
} from '../../src/media/rtsp-relay.js';

function frame(channel: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head[0] = 0x24;
  head[1] = channel;
  head.writeUInt16BE(payload.length, 2);
  return Buffer.concat([head, payload]);
}

function message(startLine: string, headers: Array<[string, string]>, body = ''): RtspMessage {
  return { kind: 'message', startLine, headers, body: Buffer.from(body, 'utf8') };
}

/** Items in a comparable form. */
function summary(items: RtspItem[]): unknown[] {
  return items.map((i) => (i.kind === 'interleaved'
    ? { f: i.channel, raw: i.raw.toString('hex') }
    : { m: i.startLine, h: i.headers.filter(([k]) => k.toLowerCase() !== 'content-length'), b: i.body.toString('hex') }));
}

function splitAll(chunks: Buffer[]): RtspItem[] {
  const out: RtspItem[] = [];
  const s = new RtspStreamSplitter((i) => out.push(i.kind === 'interleaved' ? { ...i, raw: Buffer.from(i.raw) } : i));
  for (const c of chunks) s.push(c);
  assert.equal(s.buffered, 0, 'nothing left over');
  return out;
}

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=Session\r\nm=video 0 RTP/AVP 96\r\na=control:stream=0\r\n';

describe('RtspStreamSplitter', () => {
  test('a response with a body, frames and a request, in one chunk', () => {
    const items: RtspItem[] = [
      message('RTSP/1.0 200 OK', [['CSeq', '2'], ['Content-Type', 'application/sdp']], SDP),
      { kind: 'interleaved', channel: 0, raw: frame(0, Buffer.from([1, 2, 3])) },
      { kind: 'interleaved', channel: 1, raw: frame(1, Buffer.alloc(0)) },
      message('GET_PARAMETER rtsp://h/x RTSP/1.0', [['CSeq', '9']]),
    ];
    const bytes = Buffer.concat(items.map((i) => (i.kind === 'interleaved' ? i.raw : serializeMessage(i))));
    assert.deepEqual(summary(splitAll([bytes])), summary(items));
  });

  test('any split of any mix of messages and frames yields the same items (property)', () => {
    const header = fc.tuple(fc.constantFrom('CSeq', 'Session', 'Transport', 'X-Thing', 'RTP-Info'), fc.stringMatching(/^[!-~]([ -~]{0,30}[!-~])?$/));
    const msg = fc.record({
      start: fc.constantFrom('RTSP/1.0 200 OK', 'RTSP/1.0 401 Unauthorized', 'OPTIONS * RTSP/1.0', 'SETUP rtsp://h:1/a/stream=0 RTSP/1.0', 'RTSP/1.0 454 Session Not Found'),
      headers: fc.array(header, { maxLength: 6 }),
      body: fc.oneof(fc.constant(''), fc.string({ maxLength: 300 }), fc.constant(SDP)),
    }).map((m): RtspItem => message(m.start, m.headers, m.body));
    const fr = fc.record({ ch: fc.integer({ min: 0, max: 255 }), payload: fc.uint8Array({ maxLength: 3000 }) })
      .map((f): RtspItem => ({ kind: 'interleaved', channel: f.ch, raw: frame(f.ch, Buffer.from(f.payload)) }));
    fc.assert(fc.property(fc.array(fc.oneof(msg, fr), { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 }), (items, cuts) => {
      const bytes = Buffer.concat(items.map((i) => (i.kind === 'interleaved' ? i.raw : serializeMessage(i))));
      const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
      const chunks: Buffer[] = [];
      let prev = 0;
      for (const p of [...points, bytes.length]) {
        chunks.push(bytes.subarray(prev, p));
        prev = p;
      }
      assert.deepEqual(summary(splitAll(chunks)), summary(items));
    }), { numRuns: 300 });
  });

  test('byte-by-byte delivery', () => {
    const items: RtspItem[] = [
      { kind: 'interleaved', channel: 2, raw: frame(2, Buffer.from('rtp')) },
      message('RTSP/1.0 200 OK', [['CSeq', '3'], ['Session', 'abc;timeout=60']]),
      { kind: 'interleaved', channel: 3, raw: frame(3, Buffer.alloc(600, 7)) },
    ];
    const bytes = Buffer.concat(items.map((i) => (i.kind === 'interleaved' ? i.raw : serializeMessage(i))));
    assert.deepEqual(summary(splitAll([...bytes].map((b) => Buffer.from([b])))), summary(items));
  });

  test('bare LF line ends, blank lines between messages and folded headers are accepted', () => {
    const text = '\r\nRTSP/1.0 200 OK\nCSeq: 4\nPublic: OPTIONS,\n  DESCRIBE\n\n';
    const out = splitAll([Buffer.from(text, 'latin1')]);
    assert.equal(out.length, 1);
    const m = out[0] as RtspMessage;
    assert.equal(m.startLine, 'RTSP/1.0 200 OK');
    assert.deepEqual(m.headers, [['CSeq', '4'], ['Public', 'OPTIONS, DESCRIBE']]);
  });

  test('frames lying wholly inside a chunk are views, not copies', () => {
    const chunk = Buffer.concat([frame(0, Buffer.alloc(100, 1)), frame(1, Buffer.alloc(50, 2))]);
    const seen: Buffer[] = [];
    new RtspStreamSplitter((i) => i.kind === 'interleaved' && seen.push(i.raw)).push(chunk);
    assert.equal(seen.length, 2);
    assert.equal(seen[0]!.buffer, chunk.buffer);
  });

  test('garbage is a protocol error, not a hang or a crash', () => {
    const cases = [
      'HELLO\r\n\r\n',
      'RTSP/1.0 200 OK\r\nno colon here\r\n\r\n',
      'RTSP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n',
      'RTSP/1.0 200 OK\r\nContent-Length: 1e3\r\n\r\n',
      `RTSP/1.0 200 OK\r\nContent-Length: ${2 * 1024 * 1024}\r\n\r\n`,
    ];
    for (const c of cases) {
      assert.throws(() => new RtspStreamSplitter(() => {}).push(Buffer.from(c, 'latin1')), RtspProtocolError, JSON.stringify(c));
    }
    // An endless header block is cut off at the limit.
    const s = new RtspStreamSplitter(() => {});
    assert.throws(() => {
      for (let i = 0; i < 100; i++) s.push(Buffer.from('RTSP/1.0 200 OK\r\nX: ' + 'a'.repeat(1000)));
    }, RtspProtocolError);
  });

  test('random bytes never escape as anything but RtspProtocolError (property)', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 10 }), (chunks) => {
      const s = new RtspStreamSplitter(() => {});
      try {
        for (const c of chunks) s.push(Buffer.from(c));
      } catch (err) {
        assert.ok(err instanceof RtspProtocolError, String(err));
      }
    }), { numRuns: 500 });
  });

  test('serializeMessage sets Content-Length from the body and drops a stale one', () => {
    const text = serializeMessage(message('RTSP/1.0 200 OK', [['CSeq', '1'], ['Content-Length', '999']], 'abc')).toString();
    assert.equal(text, 'RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 3\r\n\r\nabc');
    assert.equal(serializeMessage(message('OPTIONS * RTSP/1.0', [['CSeq', '1']])).toString(), 'OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n');
  });
});

describe('authentication', () => {
  test('RFC 2617 §3.5 example (MD5, qop=auth)', () => {
    const challenge = parseChallenges(['Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'])[0]!;
    const r = digestResponse({ username: 'Mufasa', password: 'Circle Of Life', method: 'GET', uri: '/dir/index.html', challenge: challenge.params, nc: 1, cnonce: '0a4f113b' });
    assert.equal(r.response, '6629fae49393a05397450978507c4ef1');
    assert.equal(r.ncText, '00000001');
    const header = digestAuthorization({ username: 'Mufasa', password: 'Circle Of Life', method: 'GET', uri: '/dir/index.html', challenge: challenge.params, nc: 1, cnonce: '0a4f113b' });
    assert.equal(header, 'Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41", qop=auth, nc=00000001, cnonce="0a4f113b"');
  });

  test('RFC 7616 §3.9.1 examples (SHA-256 and MD5, qop=auth)', () => {
    const base = { realm: 'http-auth@example.org', qop: 'auth, auth-int', nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v', opaque: 'FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS' };
    const input = { username: 'Mufasa', password: 'Circle of Life', method: 'GET', uri: '/dir/index.html', nc: 1, cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ' };
    assert.equal(digestResponse({ ...input, challenge: { ...base, algorithm: 'SHA-256' } }).response, '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1');
    assert.equal(digestResponse({ ...input, challenge: { ...base, algorithm: 'MD5' } }).response, '8ca523f5e9506fed4657c9700eebdbec');
  });

  test('no qop (RFC 2069 form) and MD5-sess', () => {
    const noQop = { realm: 'testrealm@host.com', nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093' };
    const r = digestResponse({ username: 'Mufasa', password: 'Circle Of Life', method: 'GET', uri: '/dir/index.html', challenge: noQop, nc: 1, cnonce: 'x' });
    // H(H(A1):nonce:H(A2)), computed independently (Python hashlib).
    assert.deepEqual(r, { response: '670fd8c2df070c60b045671b8b24ff02' });
    const header = digestAuthorization({ username: 'Mufasa', password: 'Circle Of Life', method: 'GET', uri: '/dir/index.html', challenge: noQop, nc: 1, cnonce: 'x' });
    assert.doesNotMatch(header, /qop|nc=|cnonce/);
    const sess = digestResponse({ username: 'u', password: 'p', method: 'DESCRIBE', uri: 'rtsp://cam/x', challenge: { realm: 'r', nonce: 'nonce1', qop: 'auth', algorithm: 'MD5-sess' }, nc: 10, cnonce: 'cn1' });
    assert.equal(sess.response, '7a757a77e61c53d2f0e3d515a0c9374f');
    assert.equal(sess.ncText, '0000000a');
  });

  test('Basic', () => {
    assert.equal(basicAuthorization('Aladdin', 'open sesame'), 'Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==');
    assert.equal(basicAuthorization('ü', 'p:w'), 'Basic ' + Buffer.from('ü:p:w').toString('base64'));
  });

  test('challenge parsing: several challenges, quoting, escapes, unquoted values', () => {
    const c = parseChallenges([
      'Basic realm="cam", Digest realm="a \\"b\\" c", nonce=abc123, algorithm=MD5, stale=TRUE',
      'Digest realm="x",nonce="n2",qop="auth-int"',
    ]);
    assert.deepEqual(c, [
      { scheme: 'basic', params: { realm: 'cam' } },
      { scheme: 'digest', params: { realm: 'a "b" c', nonce: 'abc123', algorithm: 'MD5', stale: 'TRUE' } },
      { scheme: 'digest', params: { realm: 'x', nonce: 'n2', qop: 'auth-int' } },
    ]);
    // auth-int only cannot be answered: the MD5 digest wins, then Basic.
    assert.equal(chooseChallenge(c)?.params.nonce, 'abc123');
    assert.equal(chooseChallenge([c[0]!, c[2]!])?.scheme, 'basic');
    assert.equal(chooseChallenge([c[2]!]), undefined);
    assert.equal(chooseChallenge(parseChallenges(['Digest realm=r, nonce=n, algorithm=SHA-256', 'Digest realm=r, nonce=m']))?.params.algorithm, 'SHA-256');
    assert.equal(chooseChallenge(parseChallenges(['Negotiate', 'Digest realm=r, nonce=n, algorithm=SHA-512-256'])), undefined);
  });

  test('challenge parsing never throws on junk (property)', () => {
    fc.assert(fc.property(fc.array(fc.string({ maxLength: 80 }), { maxLength: 3 }), (values) => {
      parseChallenges(values);
    }), { numRuns: 500 });
  });

  test('RtspAuthenticator: nothing before a challenge; nc counts per nonce and restarts on a new one', () => {
    let n = 0;
    const a = new RtspAuthenticator('u', 'p', () => `c${++n}`);
    assert.equal(a.authorization('OPTIONS', 'rtsp://h/'), undefined);
    assert.equal(a.accept(['Negotiate']), false);
    assert.equal(a.accept(['Digest realm="r", nonce="n1", qop="auth"']), true);
    assert.match(a.authorization('DESCRIBE', 'rtsp://h/x')!, /nc=00000001, cnonce="c1"$/);
    assert.match(a.authorization('SETUP', 'rtsp://h/x/s0')!, /uri="rtsp:\/\/h\/x\/s0".*nc=00000002/);
    a.accept(['Digest realm="r", nonce="n2", qop="auth", stale=true']);
    assert.match(a.authorization('PLAY', 'rtsp://h/x')!, /nonce="n2".*nc=00000001/);
    const b = new RtspAuthenticator('u', 'p');
    b.accept(['Basic realm="cam"']);
    assert.equal(b.authorization('DESCRIBE', 'rtsp://h/x'), 'Basic dTpw');
  });
});

describe('RtspUrlMap', () => {
  const camera = new URL('rtsp://camera.local:8554/live/ch1?subtype=0');
  const map = new RtspUrlMap('127.0.0.1', 4000, 'TOKEN_abc-123', camera);

  test('relay URL keeps path and query behind the token', () => {
    assert.equal(map.relayUrlFor(camera), 'rtsp://127.0.0.1:4000/TOKEN_abc-123/live/ch1?subtype=0');
  });

  test('request-URIs map to the camera; without the exact token they are refused', () => {
    assert.equal(map.toCamera('rtsp://127.0.0.1:4000/TOKEN_abc-123/live/ch1?subtype=0'), 'rtsp://camera.local:8554/live/ch1?subtype=0');
    assert.equal(map.toCamera('rtsp://127.0.0.1:4000/TOKEN_abc-123/live/ch1/trackID=1'), 'rtsp://camera.local:8554/live/ch1/trackID=1');
    assert.equal(map.toCamera('rtsp://127.0.0.1:4000/TOKEN_abc-123'), 'rtsp://camera.local:8554/');
    for (const bad of ['rtsp://127.0.0.1:4000/live/ch1', 'rtsp://127.0.0.1:4000/token_abc-123/live', 'rtsp://127.0.0.1:4000/TOKEN_abc-1234/live',
      'rtsp://127.0.0.1:4000/TOKEN_abc-12', 'rtsp://127.0.0.2:4000/TOKEN_abc-123/live', '']) {
      assert.equal(map.toCamera(bad), null, bad);
    }
  });

  test('camera URLs in responses point back through the relay, whatever the camera calls itself', () => {
    assert.equal(map.toRelay('rtsp://camera.local:8554/live/ch1/'), 'rtsp://127.0.0.1:4000/TOKEN_abc-123/live/ch1/');
    assert.equal(map.toRelay('url=rtsp://10.0.0.5/live/ch1/trackID=0;seq=1;rtptime=2,url=rtsp://10.0.0.5/live/ch1/trackID=1;seq=3'),
      'url=rtsp://127.0.0.1:4000/TOKEN_abc-123/live/ch1/trackID=0;seq=1;rtptime=2,url=rtsp://127.0.0.1:4000/TOKEN_abc-123/live/ch1/trackID=1;seq=3');
    assert.equal(map.toRelay('rtsp://cam'), 'rtsp://127.0.0.1:4000/TOKEN_abc-123/');
    assert.equal(map.toRelay('trackID=1'), 'trackID=1');
    // Round trip: what the relay hands out maps back to the camera.
    assert.equal(map.toCamera(map.toRelay('rtsp://whatever:1/live/ch1/trackID=0')), 'rtsp://camera.local:8554/live/ch1/trackID=0');
  });

  test('urlHasCredentials', () => {
    assert.equal(urlHasCredentials('rtsp://u:p@h/x'), true);
    assert.equal(urlHasCredentials('rtsp://u@h/x'), true);
    assert.equal(urlHasCredentials('rtsp://h/x'), false);
    assert.equal(urlHasCredentials('not a url'), false);
  });
});

describe('loopbackPeerUid', () => {
  const table = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0000000000000000 100 0 0 10 0',
    '   1: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000 65534        0 2222 1 0000000000000000 20 4 30 10 -1',
    '   2: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 3333 1 0000000000000000 20 4 30 10 -1',
    '   3: 0100007F:0050 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 4444 1 0000000000000000 20 4 30 10 -1',
  ].join('\n');

  test('finds the client end of the connection and its owner', () => {
    assert.equal(loopbackPeerUid(0xd431, 8080, table), 65534);
    assert.equal(loopbackPeerUid(80, 8080, table), 1000);
  });

  test('unknown connection, no port: undefined (the caller then relies on the token alone)', () => {
    assert.equal(loopbackPeerUid(1234, 8080, table), undefined);
    assert.equal(loopbackPeerUid(undefined, 8080, table), undefined);
    assert.equal(loopbackPeerUid(0xd431, 8081, table), undefined);
  });
});
