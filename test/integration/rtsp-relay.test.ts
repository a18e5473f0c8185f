// The RTSP credential relay against the real GStreamer RTSP server with Basic and Digest auth, and the
// RTSP source node through it: media flows with the right password, a wrong one is a clear
// AuthenticationError, and the password is never on any process's command line.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { FfmpegProcess } from '../../src/media/ffmpeg-process.js';
import { RtspCredentialRelay } from '../../src/media/rtsp-relay.js';
import { startRtspServer, type RtspTestServer } from '../helpers/rtsp-server.js';
import { startRecordingHarness, isType, type RecordingHarness } from '../helpers/recording.js';
import { assertNoLeftoverFfmpeg } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';
import { findSecrets, plantSecret, watchProcessTable } from '../helpers/secrets.js';
import { readSample } from '../helpers/samples.js';

const USER = 'cam-user';

/** ffmpeg reads `seconds` of the URL over TCP-interleaved RTSP and throws the frames away. */
async function pull(url: string, seconds: number): Promise<{ code: number | null; stderr: string; args: readonly string[] }> {
  const args = ['-nostdin', '-hide_banner', '-loglevel', 'info', '-rtsp_transport', 'tcp', '-timeout', '5000000',
    '-i', url, '-t', String(seconds), '-map', '0:v:0', '-c', 'copy', '-f', 'null', '-'];
  const proc = new FfmpegProcess({ args, stdout: 'ignore', stallTimeoutMs: 0, stderrLines: 200 });
  const exit = await proc.exited;
  return { code: exit.code, stderr: exit.stderrTail.join('\n'), args };
}

function withUserinfo(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  return u.toString();
}

for (const method of ['basic', 'digest'] as const) {
  describe(`relay to a camera with ${method} auth`, () => {
    // Characters that need percent-encoding in userinfo, to prove the decoding path.
    const password = plantSecret(`pw:${method}@/%`);
    let camera: RtspTestServer;
    before(async () => {
      camera = await startRtspServer({ size: '320x240', fps: 15, auth: { method, username: USER, password } });
    });
    after(async () => {
      await camera?.stop();
      await assertNoLeftoverFfmpeg();
    });

    test('right password: media flows, the password is on no command line', async () => {
      const relay = new RtspCredentialRelay({ url: withUserinfo(camera.url('/test'), USER, password) });
      const url = await relay.start();
      assert.match(url, /^rtsp:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]{24}\/test$/);
      const ps = watchProcessTable();
      try {
        const r = await pull(url, 2);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /Stream #0:0.*Video: h264/);
        assert.deepEqual(findSecrets(r.args.join(' '), [password], 'ffmpeg argv'), []);
        assert.deepEqual(findSecrets(r.stderr, [password], 'ffmpeg stderr'), []);
      } finally {
        await relay.close();
      }
      assert.deepEqual(findSecrets([...ps.stop()].join('\n'), [password], 'ps -eo args'), []);
    });

    test('RTSP over HTTP tunnelling to the camera (transport Http): media flows, 401 for a wrong password', async () => {
      const relay = new RtspCredentialRelay({ url: withUserinfo(camera.url('/test'), USER, password), tunnel: 'http' });
      const ps = watchProcessTable();
      try {
        const r = await pull(await relay.start(), 2);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /Stream #0:0.*Video: h264/);
      } finally {
        await relay.close();
      }
      assert.deepEqual(findSecrets([...ps.stop()].join('\n'), [password], 'ps -eo args'), []);
      const wrong = new RtspCredentialRelay({ url: withUserinfo(camera.url('/test'), USER, 'nope'), tunnel: 'http' });
      try {
        const r = await pull(await wrong.start(), 1);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /401 Unauthorized/);
      } finally {
        await wrong.close();
      }
    });

    test('wrong password: ffmpeg sees 401 Unauthorized, no secret in its output', async () => {
      const wrong = plantSecret('wrong');
      const relay = new RtspCredentialRelay({ url: withUserinfo(camera.url('/test'), USER, wrong) });
      const url = await relay.start();
      try {
        const r = await pull(url, 1);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /401 Unauthorized/);
        assert.deepEqual(findSecrets(r.stderr, [wrong, password], 'ffmpeg stderr'), []);
      } finally {
        await relay.close();
      }
    });
  });
}

describe('relay refusals', () => {
  test('a request without the token is refused and the camera is never contacted', async () => {
    let cameraConnections = 0;
    const fake = net.createServer((s) => {
      cameraConnections++;
      s.destroy();
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
    const port = (fake.address() as net.AddressInfo).port;
    const relay = new RtspCredentialRelay({ url: `rtsp://u:${plantSecret('pw')}@127.0.0.1:${port}/cam` });
    const url = new URL(await relay.start());
    try {
      for (const path of ['/cam', '/wrongtoken/cam', `/${url.pathname.split('/')[1]!.toLowerCase()}x/cam`]) {
        const reply = await new Promise<string>((resolve, reject) => {
          const s = net.connect(Number(url.port), '127.0.0.1');
          let text = '';
          s.on('data', (d) => (text += d.toString('latin1')));
          s.on('close', () => resolve(text));
          s.on('error', reject);
          s.write(`DESCRIBE rtsp://127.0.0.1:${url.port}${path} RTSP/1.0\r\nCSeq: 7\r\nAccept: application/sdp\r\n\r\n`);
        });
        assert.match(reply, /^RTSP\/1\.0 403 Forbidden\r\nCSeq: 7\r\n/, path);
      }
      assert.equal(cameraConnections, 0);
    } finally {
      await relay.close();
      await new Promise<void>((r) => fake.close(() => r()));
    }
  });

  /** Sends one DESCRIBE to the relay over a fresh connection; resolves with whatever came back before close. */
  const describeOnce = (relayUrl: string, timeoutMs = 3000) => new Promise<string>((resolve, reject) => {
    const u = new URL(relayUrl);
    const s = net.connect(Number(u.port), '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => s.destroy(), timeoutMs);
    s.on('data', (d) => (text += d.toString('latin1')));
    s.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    s.on('error', reject);
    s.write(`DESCRIBE ${relayUrl} RTSP/1.0\r\nCSeq: 2\r\n\r\n`);
  });

  /** A scripted camera that answers every request 200 and counts connections. */
  const countingCamera = async (opts: { omitCseq?: boolean } = {}) => {
    const state = { connections: 0 };
    const server = net.createServer((s) => {
      state.connections++;
      s.on('data', (d) => {
        const cseq = /CSeq: (\d+)/i.exec(d.toString())?.[1] ?? '0';
        s.write(opts.omitCseq ? 'RTSP/1.0 200 OK\r\nServer: sloppy\r\n\r\n' : `RTSP/1.0 200 OK\r\nCSeq: ${cseq}\r\n\r\n`);
      });
      s.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return { state, port: (server.address() as net.AddressInfo).port, close: () => new Promise<void>((r) => { server.close(() => r()); }) };
  };

  test('session URLs are single-use and expire; each sessionUrl() is a new token', async () => {
    const cam = await countingCamera();
    const relay = new RtspCredentialRelay({ url: `rtsp://u:${plantSecret('pw')}@127.0.0.1:${cam.port}/cam`, sessionTtlMs: 1500 });
    try {
      const first = await relay.start();
      const second = relay.sessionUrl();
      assert.notEqual(first, second);
      assert.match(await describeOnce(first, 500), /^RTSP\/1\.0 200 OK\r\nCSeq: 2\r\n/);
      // The same URL again (someone who read it from `ps`): refused, the camera is not contacted again.
      assert.match(await describeOnce(first), /^RTSP\/1\.0 403 Forbidden/);
      assert.equal(cam.state.connections, 1);
      await new Promise((r) => setTimeout(r, 1600));
      assert.match(await describeOnce(second), /^RTSP\/1\.0 403 Forbidden/, 'expired unclaimed');
      assert.equal(cam.state.connections, 1);
    } finally {
      await relay.close();
      await cam.close();
    }
  });

  test('a camera that omits CSeq: responses are matched in order and carry ffmpeg\'s CSeq', async () => {
    const cam = await countingCamera({ omitCseq: true });
    const relay = new RtspCredentialRelay({ url: `rtsp://u:${plantSecret('pw')}@127.0.0.1:${cam.port}/cam` });
    try {
      assert.match(await describeOnce(await relay.start(), 500), /^RTSP\/1\.0 200 OK\r\nCSeq: 2\r\nServer: sloppy\r\n\r\n$/);
    } finally {
      await relay.close();
      await cam.close();
    }
  });

  test('another local user is refused even with a valid token (peer uid from /proc/net/tcp)', { skip: process.getuid?.() !== 0 ? 'needs root to run a client as nobody' : false }, async () => {
    const cam = await countingCamera();
    const relay = new RtspCredentialRelay({ url: `rtsp://u:${plantSecret('pw')}@127.0.0.1:${cam.port}/cam` });
    try {
      const url = await relay.start();
      const u = new URL(url);
      const script = `const s=require('net').connect(${u.port},'127.0.0.1');let t='';s.on('data',d=>t+=d);s.on('close',()=>{process.stdout.write(JSON.stringify(t));});s.on('error',()=>{});s.write('DESCRIBE ${url} RTSP/1.0\\r\\nCSeq: 1\\r\\n\\r\\n');setTimeout(()=>s.destroy(),3000);`;
      const { spawnSync } = await import('node:child_process');
      const r = spawnSync(process.execPath, ['-e', script], { uid: 65534, gid: 65534, encoding: 'utf8', timeout: 10_000, cwd: '/' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout), '', 'no reply at all');
      assert.equal(cam.state.connections, 0);
      // The token was not consumed by the refused attempt: our own client still gets through.
      assert.match(await describeOnce(url), /^RTSP\/1\.0 200 OK/);
      assert.equal(cam.state.connections, 1);
    } finally {
      await relay.close();
      await cam.close();
    }
  });

  test('camera down: ffmpeg reports "Connection refused", as without the relay', async () => {
    const port = await freePort();
    const relay = new RtspCredentialRelay({ url: `rtsp://u:p@127.0.0.1:${port}/cam` });
    const url = await relay.start();
    try {
      const r = await pull(url, 1);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /503 Connection refused/);
    } finally {
      await relay.close();
    }
    await assertNoLeftoverFfmpeg();
  });
});

describe('RTSP source with usernamePassword credentials (digest camera)', () => {
  const password = plantSecret('source-pw');
  let camera: RtspTestServer;
  let h: RecordingHarness;
  before(async () => {
    camera = await startRtspServer({ size: '320x240', fps: 15, auth: { method: 'digest', username: USER, password } });
    h = await startRecordingHarness();
    const topology = readSample('topologies/2.0/motion-detection.topology.json');
    for (const p of topology.properties.parameters) if (p.name === 'rtspPassword') p.type = 'SecretString';
    assert.equal((await h.call('GraphTopologySet', topology)).status, 201);
  });
  after(async () => {
    await h?.close();
    await camera?.stop();
    await assertNoLeftoverFfmpeg();
  });

  const run = async (name: string, pw: string) => {
    const set = await h.call('GraphInstanceSet', {
      name,
      properties: {
        topologyName: 'MotionDetection',
        parameters: [
          { name: 'rtspUrl', value: camera.url('/test') },
          { name: 'rtspUserName', value: USER },
          { name: 'rtspPassword', value: pw },
        ],
      },
    });
    assert.equal(set.status, 201, JSON.stringify(set.payload));
    assert.equal((await h.call('GraphInstanceActivate', { name })).status, 200);
  };

  test('right password: the session is established; the password is on no command line', async () => {
    const ps = watchProcessTable();
    await run('good', password);
    await h.waitFor(isType('MediaSessionEstablished'), 30_000, 'MediaSessionEstablished');
    const lines = [...ps.stop()];
    assert.ok(lines.some((l) => /ffmpeg .*rtsp:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]{24}\/test/.test(l)), 'ffmpeg reads through the relay');
    assert.deepEqual(findSecrets(lines.join('\n'), [password], 'ps -eo args'), []);
    assert.equal((await h.call('GraphInstanceDeactivate', { name: 'good' })).status, 200);
  });

  test('transport Http: ffmpeg talks TCP to the relay, the relay tunnels over HTTP; no password on any command line', async () => {
    const topology = readSample('topologies/2.0/motion-detection.topology.json');
    topology.name = 'MotionOverHttp';
    topology.properties.sources[0].transport = 'http';
    for (const p of topology.properties.parameters) if (p.name === 'rtspPassword') p.type = 'SecretString';
    assert.equal((await h.call('GraphTopologySet', topology)).status, 201);
    const ps = watchProcessTable();
    const before = h.ofType('MediaSessionEstablished').length;
    const set = await h.call('GraphInstanceSet', {
      name: 'tunnel',
      properties: { topologyName: 'MotionOverHttp', parameters: [{ name: 'rtspUrl', value: camera.url('/test') }, { name: 'rtspUserName', value: USER }, { name: 'rtspPassword', value: password }] },
    });
    assert.equal(set.status, 201, JSON.stringify(set.payload));
    assert.equal((await h.call('GraphInstanceActivate', { name: 'tunnel' })).status, 200);
    await h.waitFor(() => h.ofType('MediaSessionEstablished').length > before, 30_000, 'MediaSessionEstablished over the tunnel');
    const lines = [...ps.stop()];
    assert.ok(lines.some((l) => /ffmpeg .*-rtsp_transport tcp .*-i rtsp:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]{24}\/test/.test(l)), 'ffmpeg reads the relay over TCP');
    assert.deepEqual(findSecrets(lines.join('\n'), [password], 'ps -eo args'), []);
    assert.equal((await h.call('GraphInstanceDeactivate', { name: 'tunnel' })).status, 200);
  });

  test('wrong password: an AuthenticationError diagnostic without the secret', async () => {
    const wrong = plantSecret('wrong-pw');
    await run('bad', wrong);
    const e = await h.waitFor((ev) => isType('AuthenticationError')(ev), 30_000, 'AuthenticationError');
    assert.equal(e.body.errorCode, '401');
    assert.deepEqual(findSecrets(JSON.stringify(h.events), [wrong, password], 'events'), []);
    assert.equal((await h.call('GraphInstanceDeactivate', { name: 'bad' })).status, 200);
  });
});
