// The relay's protocol details against a scripted camera (the GStreamer fixture answers Digest without
// qop and uses relative control URLs): Digest with qop=auth, a stale nonce mid-session, CSeq mapping,
// absolute camera URLs in Content-Base / SDP / RTP-Info rewritten to the relay, and interleaved `$`
// frames passed through byte-exact in both directions. The camera verifies every Authorization with
// its own straightforward RFC 2617 computation.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RtspCredentialRelay, RtspStreamSplitter, parseChallenges, serializeMessage, headerValue, type RtspItem, type RtspMessage } from '../../src/media/rtsp-relay.js';

const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const USER = 'viewer';
const PASSWORD = `p@ss:${randomBytes(6).toString('hex')}/ü`;
const REALM = 'scripted camera';

function frame(channel: number, payload: Buffer): Buffer {
  const h = Buffer.from([0x24, channel, 0, 0]);
  h.writeUInt16BE(payload.length, 2);
  return Buffer.concat([h, payload]);
}

interface CameraLog {
  requests: Array<{ method: string; uri: string; cseq: string; authorized: boolean; nc?: string; nonce?: string }>;
  framesIn: Buffer[];
  connections: number;
}

/** A camera that wants Digest (qop=auth), makes the nonce stale once, and streams three `$` frames after PLAY. */
function startCamera(framesOut: Buffer[], tlsOptions?: tls.TlsOptions): Promise<{ port: number; log: CameraLog; close(): Promise<void> }> {
  const log: CameraLog = { requests: [], framesIn: [], connections: 0 };
  let nonce = 'nonce-one';
  let staleSent = false;
  const sockets = new Set<net.Socket>();
  const onConnection = (socket: net.Socket) => {
    log.connections++;
    sockets.add(socket);
    const reply = (cseq: string, status: string, headers: Array<[string, string]> = [], body = '') => {
      socket.write(serializeMessage({ kind: 'message', startLine: `RTSP/1.0 ${status}`, headers: [['CSeq', cseq], ...headers], body: Buffer.from(body) }));
    };
    const splitter = new RtspStreamSplitter((item: RtspItem) => {
      if (item.kind === 'interleaved') {
        log.framesIn.push(Buffer.from(item.raw));
        return;
      }
      const [method, uri] = item.startLine.split(' ') as [string, string];
      const cseq = headerValue(item.headers, 'cseq') ?? '';
      const auth = headerValue(item.headers, 'authorization');
      const p = auth ? parseChallenges([auth])[0]?.params ?? {} : {};
      const expected = p.nonce ? md5(`${md5(`${USER}:${REALM}:${PASSWORD}`)}:${p.nonce}:${p.nc}:${p.cnonce}:auth:${md5(`${method}:${p.uri}`)}`) : '';
      const authorized = !!auth && p.username === USER && p.realm === REALM && p.uri === uri && p.qop === 'auth' && p.opaque === 'op4que' && p.response === expected && p.nonce === nonce;
      log.requests.push({ method, uri, cseq, authorized, nc: p.nc, nonce: p.nonce });
      const challenge = (stale: boolean) => reply(cseq, '401 Unauthorized', [['WWW-Authenticate', `Digest realm="${REALM}", nonce="${nonce}", qop="auth,auth-int", algorithm=MD5, opaque="op4que"${stale ? ', stale=TRUE' : ''}`]]);
      if (!authorized) return challenge(false);
      if (method === 'SETUP' && !staleSent) {
        staleSent = true;
        nonce = 'nonce-two';
        return challenge(true);
      }
      const port = (server.address() as net.AddressInfo).port;
      switch (method) {
        case 'OPTIONS':
          return reply(cseq, '200 OK', [['Public', 'OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN']]);
        case 'DESCRIBE': {
          const sdp = `v=0\r\no=- 1 1 IN IP4 10.1.2.3\r\ns=cam\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:rtsp://10.1.2.3:${port}/live/track1\r\n`;
          return reply(cseq, '200 OK', [['Content-Base', `rtsp://10.1.2.3:${port}/live/`], ['Content-Type', 'application/sdp']], sdp);
        }
        case 'SETUP':
          return reply(cseq, '200 OK', [['Session', 'S123;timeout=60'], ['Transport', 'RTP/AVP/TCP;unicast;interleaved=0-1']]);
        case 'PLAY':
          reply(cseq, '200 OK', [['Session', 'S123'], ['RTP-Info', `url=rtsp://10.1.2.3:${port}/live/track1;seq=1;rtptime=0`]]);
          for (const f of framesOut) socket.write(f);
          return undefined;
        default:
          return reply(cseq, '200 OK', [['Session', 'S123']]);
      }
    });
    socket.on('data', (c: Buffer) => splitter.push(c));
    socket.on('error', () => {});
  };
  const server = tlsOptions ? tls.createServer(tlsOptions, onConnection) : net.createServer(onConnection);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    port: (server.address() as net.AddressInfo).port,
    log,
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      for (const s of sockets) s.destroy();
    }),
  })));
}

/** A minimal RTSP client (what ffmpeg does), collecting replies and frames in arrival order. */
class Client {
  readonly items: RtspItem[] = [];
  private readonly socket: net.Socket;
  private waiters: Array<() => void> = [];
  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    const splitter = new RtspStreamSplitter((i) => {
      this.items.push(i.kind === 'interleaved' ? { ...i, raw: Buffer.from(i.raw) } : i);
      for (const w of this.waiters.splice(0)) w();
    });
    this.socket.on('data', (c: Buffer) => splitter.push(c));
    this.socket.on('error', () => {});
  }
  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }
  async request(method: string, uri: string, cseq: number, headers: Array<[string, string]> = []): Promise<RtspMessage> {
    const before = this.items.length;
    this.send(serializeMessage({ kind: 'message', startLine: `${method} ${uri} RTSP/1.0`, headers: [['CSeq', String(cseq)], ['Authorization', 'Basic bm9ib2R5Om5vdGhpbmc='], ...headers], body: Buffer.alloc(0) }));
    return (await this.waitFor(() => this.items.slice(before).find((i): i is RtspMessage => i.kind === 'message'))) as RtspMessage;
  }
  async waitFor<T>(fn: () => T | undefined, timeoutMs = 5000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = fn();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error('timed out');
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }
  close(): void {
    this.socket.destroy();
  }
}

/** A throw-away self-signed certificate for the rtsps:// camera. */
function selfSigned(): { key: Buffer; cert: Buffer } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lva-cert-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem'),
      '-subj', '/CN=127.0.0.1', '-days', '1'], { stdio: 'ignore' });
    return { key: readFileSync(path.join(dir, 'k.pem')), cert: readFileSync(path.join(dir, 'c.pem')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const scheme of ['rtsp', 'rtsps'] as const) describe(`relay protocol handling against a scripted Digest (qop=auth) camera over ${scheme}://`, () => {
  const framesOut = [frame(0, Buffer.from('rtp-1')), frame(1, Buffer.alloc(0)), frame(0, randomBytes(60_000))];
  let camera: Awaited<ReturnType<typeof startCamera>>;
  let relay: RtspCredentialRelay;
  let relayUrl: URL;
  let client: Client;
  before(async () => {
    camera = await startCamera(framesOut, scheme === 'rtsps' ? selfSigned() : undefined);
    relay = new RtspCredentialRelay({ url: `${scheme}://${encodeURIComponent(USER)}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${camera.port}/live` });
    relayUrl = new URL(await relay.start());
    client = new Client(Number(relayUrl.port));
  });
  after(async () => {
    client?.close();
    await relay?.close();
    await camera?.close();
  });

  test('a whole session: challenges answered by the relay, URLs mapped both ways, frames byte-exact', async () => {
    const base = relayUrl.toString();
    const options = await client.request('OPTIONS', base, 1);
    assert.equal(options.startLine, 'RTSP/1.0 200 OK');
    assert.equal(headerValue(options.headers, 'cseq'), '1');

    const describe = await client.request('DESCRIBE', base, 2, [['Accept', 'application/sdp']]);
    assert.equal(describe.startLine, 'RTSP/1.0 200 OK');
    assert.equal(headerValue(describe.headers, 'cseq'), '2');
    const relayBase = `${relayUrl.protocol}//${relayUrl.host}/${relayUrl.pathname.split('/')[1]}`;
    assert.equal(headerValue(describe.headers, 'content-base'), `${relayBase}/live/`);
    assert.match(describe.body.toString(), new RegExp(`a=control:${relayBase.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}/live/track1\r\n`));
    assert.equal(Number(headerValue(describe.headers, 'content-length')), describe.body.length);

    const setup = await client.request('SETUP', `${relayBase}/live/track1`, 3, [['Transport', 'RTP/AVP/TCP;unicast;interleaved=0-1']]);
    assert.equal(setup.startLine, 'RTSP/1.0 200 OK', 'the stale nonce was handled by the relay');
    assert.equal(headerValue(setup.headers, 'cseq'), '3');

    const play = await client.request('PLAY', `${relayBase}/live/`, 4, [['Session', 'S123']]);
    assert.equal(play.startLine, 'RTSP/1.0 200 OK');
    assert.equal(headerValue(play.headers, 'rtp-info'), `url=${relayBase}/live/track1;seq=1;rtptime=0`);
    const frames = await client.waitFor(() => {
      const f = client.items.filter((i) => i.kind === 'interleaved');
      return f.length >= framesOut.length ? f : undefined;
    });
    assert.deepEqual(frames.map((f) => (f.kind === 'interleaved' ? f.raw.toString('hex') : '')), framesOut.map((f) => f.toString('hex')));

    // RTCP from the client goes to the camera untouched.
    const rtcp = frame(1, Buffer.from('receiver-report'));
    client.send(rtcp);
    const keepAlive = await client.request('GET_PARAMETER', `${relayBase}/live/`, 5, [['Session', 'S123']]);
    assert.equal(keepAlive.startLine, 'RTSP/1.0 200 OK');
    assert.deepEqual(camera.log.framesIn.map((b) => b.toString('hex')), [rtcp.toString('hex')]);

    // What the camera saw: its own URLs, one connection, its own CSeq sequence, valid digests (nc counting).
    const seen = camera.log.requests;
    assert.equal(camera.log.connections, 1);
    assert.ok(seen.every((r) => r.uri.startsWith(`${scheme}://127.0.0.1:${camera.port}/live`)), JSON.stringify(seen.map((r) => r.uri)));
    assert.deepEqual(seen.map((r) => r.cseq), seen.map((_, i) => String(i + 1)), 'fresh CSeq per request, also for re-sent ones');
    assert.deepEqual(seen.map((r) => `${r.method}:${r.authorized ? 'ok' : 'challenged'}`), [
      'OPTIONS:challenged', 'OPTIONS:ok', 'DESCRIBE:ok', 'SETUP:ok', 'SETUP:ok', 'PLAY:ok', 'GET_PARAMETER:ok',
    ]);
    // The stale answer was a valid digest for the old nonce; the retry used the new one with nc restarted.
    assert.deepEqual(seen.filter((r) => r.authorized).map((r) => `${r.nonce}/${r.nc}`), [
      'nonce-one/00000001', 'nonce-one/00000002', 'nonce-one/00000003', 'nonce-two/00000001', 'nonce-two/00000002', 'nonce-two/00000003',
    ]);
    // No 401 ever reached the client.
    assert.ok(client.items.every((i) => i.kind !== 'message' || !i.startLine.includes('401')));
  });
});
