// Security lockdown (issue 8): camera URLs cannot become ffmpeg options or read local files, file sink
// paths cannot escape their base directory (also not through a planted symlink), the local API caps
// request bodies and refuses calls without its token. (Secrets everywhere: security-secrets.test.ts.)
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, lstatSync } from 'node:fs';
import { makePlane, type TestPlane } from '../helpers/control-plane.js';
import { readSample } from '../helpers/samples.js';
import { startDaemon, stopAllDaemons, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { assertNoLeftoverFfmpeg } from '../helpers/processes.js';
import { buildIngestArgs } from '../../src/media/ffmpeg-args.js';
import { FfmpegProcess } from '../../src/media/ffmpeg-process.js';
import { Fmp4Writer, recoverPartial } from '../../src/media/fmp4-writer.js';
import { HttpApi } from '../../src/http/server.js';
import type { TrackInfo } from '../../src/media/sample.js';

const PASSWORD = 'Pa55-url-secret-3c1d';

/** URLs that must never reach ffmpeg: other protocols, option-looking strings, whitespace and controls. */
const BAD_URLS: Array<{ url: string; code: string }> = [
  { url: 'file:/etc/passwd', code: 'RtspEndpointUrlInvalidScheme' },
  { url: 'file:///etc/passwd', code: 'RtspEndpointUrlInvalidScheme' },
  { url: 'concat:/etc/passwd|/etc/hosts', code: 'RtspEndpointUrlInvalidScheme' },
  { url: 'subfile:,start,0,end,0,:/etc/passwd', code: 'RtspEndpointUrlInvalidScheme' },
  { url: 'pipe:0', code: 'RtspEndpointUrlInvalidScheme' },
  { url: 'data:text/plain,hello', code: 'RtspEndpointUrlInvalidScheme' },
  { url: 'http://example.com/x', code: 'RtspEndpointUrlInvalidScheme' },
  { url: 'tcp://127.0.0.1:554', code: 'RtspEndpointUrlInvalidScheme' },
  { url: '-i x', code: 'RtspEndpointUrlInvalidScheme' },
  { url: '-f lavfi', code: 'RtspEndpointUrlInvalidScheme' },
  { url: '-rtsp://camera/x', code: 'RtspEndpointUrlInvalidScheme' },
  { url: '/etc/passwd', code: 'RtspEndpointUrlInvalidScheme' },
  { url: 'rtsp://camera/x -f lavfi -i testsrc', code: 'ModuleValidationError' },
  { url: 'rtsp://camera/x\t-y', code: 'ModuleValidationError' },
  { url: 'rtsp://camera/a\nb', code: 'ModuleValidationError' },
  { url: 'rtsp://camera/a\u0000b', code: 'ModuleValidationError' },
  { url: 'rtsp://camera/a%00b', code: 'ModuleValidationError' },
  { url: 'rtsp:/etc/passwd', code: 'ModuleValidationError' },
  { url: `rtsp://admin:${PASSWORD}@camera:99999/x`, code: 'ModuleValidationError' },
];

function motionTopology(name: string, url: string): any {
  const t = readSample('topologies/2.0/motion-detection.topology.json');
  t.name = name;
  t.properties.sources[0].endpoint.url = url;
  return t;
}

describe('RTSP source URLs cannot inject ffmpeg options or read local files', () => {
  let t: TestPlane;
  before(async () => {
    t = makePlane();
    await t.plane.load();
    assert.equal((await t.call('GraphTopologySet', motionTopology('Param', '${rtspUrl}'))).status, 201);
  });
  after(() => t.cleanup());

  for (const { url, code } of BAD_URLS) {
    test(`${JSON.stringify(url)} → 400 ${code}, at GraphTopologySet and at Activate`, async () => {
      const set = await t.call('GraphTopologySet', motionTopology('Literal', url));
      assert.equal(set.status, 400, JSON.stringify(set.payload));
      assert.equal(set.payload.error.code, 'InvalidResource');
      assert.equal(set.payload.error.details[0].code, code);
      assert.ok(!JSON.stringify(set.payload).includes(PASSWORD), 'no password in the error');

      // The same URL through a parameter: the instance is stored, Activate refuses it.
      const name = 'inst';
      const inst = await t.call('GraphInstanceSet', { name, properties: { topologyName: 'Param', parameters: [{ name: 'rtspUrl', value: url }] } });
      const reply = inst.status >= 400 ? inst : await t.call('GraphInstanceActivate', { name });
      assert.equal(reply.status, 400, JSON.stringify(reply.payload));
      assert.equal(reply.payload.error.details[0].code, code);
      assert.ok(!JSON.stringify(reply.payload).includes(PASSWORD), 'no password in the error');
      await t.call('GraphInstanceDelete', { name });
    });
  }

  test('the instant runtime never started a graph with a bad URL', () => {
    assert.equal(t.started.length, 0);
  });

  test('ffmpeg argv: the URL is one argument after -i, behind a protocol whitelist; bad inputs throw', () => {
    const url = 'rtsp://camera.local:554/stream1?channel=1&subtype=0';
    const args = buildIngestArgs({ input: url, inputKind: 'rtsp', audio: false });
    const i = args.indexOf('-i');
    assert.equal(args[i + 1], url);
    assert.equal(args.filter((a) => a === url).length, 1);
    const w = args.indexOf('-protocol_whitelist');
    assert.ok(w >= 0 && w < i, 'whitelist is an input option');
    assert.deepEqual(args[w + 1]!.split(',').sort(), ['http', 'https', 'rtp', 'rtsp', 'rtsps', 'tcp', 'tls', 'udp']);
    const file = buildIngestArgs({ input: '/clips/a.mp4', inputKind: 'file', audio: false });
    assert.equal(file[file.indexOf('-protocol_whitelist') + 1], 'file');
    for (const bad of ['file:/etc/passwd', 'concat:a|b', '-i', '-f', 'rtsp://h/ -f x', 'rtsp://h/\nx', 'http://h/x', 'subfile:x']) {
      assert.throws(() => buildIngestArgs({ input: bad, inputKind: 'rtsp', audio: false }), /IngestArgsError|must|not|contains|whitespace/i, bad);
    }
    assert.throws(() => buildIngestArgs({ input: 'concat:/etc/passwd|/etc/hosts', inputKind: 'file', audio: false }), /looks like a URL/);
  });

  test('defence in depth: even a smuggled protocol is refused by ffmpeg itself (real ffmpeg)', async () => {
    const args = buildIngestArgs({ input: 'rtsp://127.0.0.1:9/x', inputKind: 'rtsp', audio: false });
    for (const smuggled of ['concat:/etc/passwd|/etc/hosts', 'file:/etc/passwd', 'subfile:,start,0,end,0,:/etc/passwd', 'data:text/plain;base64,AAAA']) {
      const a = [...args];
      a[a.indexOf('-i') + 1] = smuggled;
      const proc = new FfmpegProcess({ args: a, stallTimeoutMs: 0 });
      proc.stdout?.resume();
      const exit = await proc.exited;
      assert.notEqual(exit.code, 0, smuggled);
      assert.match(exit.stderrTail.join('\n'), /not on whitelist/, smuggled);
    }
    await assertNoLeftoverFfmpeg();
  });
});

describe('file sink paths stay inside baseDirectoryPath', () => {
  let t: TestPlane;
  before(async () => {
    t = makePlane();
    await t.plane.load();
    const param = readSample('topologies/2.0/evr-hubMessage-files.topology.json');
    param.name = 'FileParam';
    param.properties.parameters.push({ name: 'dir', type: 'String', default: '/var/media' }, { name: 'pattern', type: 'String', default: 'clip' });
    param.properties.sinks[0].baseDirectoryPath = '${dir}';
    param.properties.sinks[0].fileNamePattern = 'evr-${pattern}-${System.DateTime}';
    assert.equal((await t.call('GraphTopologySet', param)).status, 201);
  });
  after(() => t.cleanup());

  const BAD: Array<{ base: string; pattern: string; why: string }> = [
    { base: '/var/media', pattern: '../escape', why: 'parent segment in the name' },
    { base: '/var/media', pattern: '../../../../etc/cron.d/x', why: 'deep parent escape' },
    { base: '/var/media', pattern: '/etc/passwd', why: 'absolute name' },
    { base: '/var/media', pattern: 'sub/clip', why: 'separator in the name' },
    { base: '/var/media', pattern: 'sub\\clip', why: 'backslash separator' },
    { base: '/var/media', pattern: '..', why: 'the parent itself' },
    { base: '/var/media', pattern: '.', why: 'the directory itself' },
    { base: '/var/media', pattern: '${System.DateTime}/../x', why: 'system variable with an escape' },
    { base: '/var/media', pattern: 'x\u0000.mp4', why: 'NUL byte' },
    { base: '/var/media', pattern: 'x\ny', why: 'newline' },
    { base: '/var/media', pattern: '${System.Nope}', why: 'unknown system variable' },
    { base: 'var/media', pattern: 'clip', why: 'relative base' },
    { base: '/var/../etc', pattern: 'clip', why: 'parent segment in the base' },
    { base: '/var/media/..', pattern: 'clip', why: 'trailing parent segment in the base' },
    { base: '/var/media\u0000/x', pattern: 'clip', why: 'NUL in the base' },
  ];

  for (const { base, pattern, why } of BAD) {
    test(`${why}: ${JSON.stringify(base)} + ${JSON.stringify(pattern)} → 400 at GraphTopologySet`, async () => {
      const topo = readSample('topologies/2.0/evr-hubMessage-files.topology.json');
      topo.name = 'FileLiteral';
      topo.properties.sinks[0].baseDirectoryPath = base;
      topo.properties.sinks[0].fileNamePattern = pattern;
      const r = await t.call('GraphTopologySet', topo);
      assert.equal(r.status, 400, JSON.stringify(r.payload));
      assert.ok(['InvalidResource', 'BadRequest'].includes(r.payload.error.code), r.payload.error.code);
      assert.match(r.payload.error.message, /fileNamePattern|baseDirectoryPath|FileNamePattern|BaseDirectoryPath|system variable/);
    });
  }

  for (const [dir, pattern] of [['/var/media', '../../x'], ['/var/media', 'a/b'], ['/var/../../etc', 'x'], ['relative', 'x'], ['/var/media', 'x\u0000']]) {
    test(`through parameters: dir=${JSON.stringify(dir)} pattern=${JSON.stringify(pattern)} → 400 at Activate`, async () => {
      const inst = await t.call('GraphInstanceSet', {
        name: 'f', properties: { topologyName: 'FileParam', parameters: [{ name: 'rtspUrl', value: 'rtsp://camera/x' }, { name: 'dir', value: dir }, { name: 'pattern', value: pattern }] },
      });
      const r = inst.status >= 400 ? inst : await t.call('GraphInstanceActivate', { name: 'f' });
      assert.equal(r.status, 400, JSON.stringify(r.payload));
      assert.match(r.payload.error.message, /fileNamePattern|baseDirectoryPath/);
      await t.call('GraphInstanceDelete', { name: 'f' });
    });
  }

  test('nothing was started', () => assert.equal(t.started.length, 0));
});

describe('a symlink planted inside the sink directory cannot redirect a write or a recovery', () => {
  const dir = tempDir('lva-symlink-');
  const outside = tempDir('lva-outside-');
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });
  const track: TrackInfo = { id: 1, kind: 'video', codec: 'avc1.42c01e', timescale: 90000, width: 64, height: 64, sampleEntry: Buffer.alloc(0) } as unknown as TrackInfo;

  test('the clip writer refuses a .partial that is a symlink (O_NOFOLLOW); the target is untouched', async () => {
    const victim = path.join(outside, 'victim.txt');
    writeFileSync(victim, 'precious');
    const clip = path.join(dir, 'clip.mp4');
    symlinkSync(victim, `${clip}.partial`);
    await assert.rejects(Fmp4Writer.open(clip, [track]), (err: NodeJS.ErrnoException) => err.code === 'ELOOP');
    assert.equal(readFileSync(victim, 'utf8'), 'precious');
    assert.ok(lstatSync(`${clip}.partial`).isSymbolicLink(), 'the link itself is left alone');
  });

  test('crash recovery ignores a .partial symlink: nothing outside is read into the sink or deleted', async () => {
    const victim = path.join(outside, 'other-users-clip.mp4');
    writeFileSync(victim, Buffer.alloc(1000, 1));
    const partial = path.join(dir, 'stolen.mp4.partial');
    symlinkSync(victim, partial);
    const r = await recoverPartial(partial);
    assert.equal(r.ok, false);
    assert.deepEqual(readdirSync(dir).sort(), ['clip.mp4.partial', 'stolen.mp4.partial']);
    assert.equal(readFileSync(victim).length, 1000);
  });
});

describe('the local API: body caps and the token', () => {
  let d: DaemonHandle;
  const token = 'api-token-for-security-test-0123456789';
  before(async () => {
    mkdirSync(tempDir(), { recursive: true });
    d = await startDaemon({ env: { LVA_API_TOKEN: token } });
  });
  after(async () => {
    await stopAllDaemons();
  });

  /** Raw request with full control over headers and framing. */
  const raw = (urlPath: string, body: Buffer | null, headers: Record<string, string>, chunked = false) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request(`${d.url}${urlPath}`, { method: 'POST', headers: { ...headers, ...(chunked ? { 'transfer-encoding': 'chunked' } : {}) }, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      });
      req.on('error', (err) => reject(err));
      if (body && chunked) {
        // Several chunks, no Content-Length: the cap must apply while reading.
        for (let i = 0; i < body.length; i += 256 * 1024) req.write(body.subarray(i, i + 256 * 1024));
        req.end();
      } else req.end(body ?? undefined);
    });

  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

  test('no token or a wrong one → 401 with an OData error body; /healthz stays open', async () => {
    for (const headers of [{} as Record<string, string>, { authorization: 'Bearer nope' }, { authorization: `Bearer ${token}x` }, { authorization: token }, { authorization: `Basic ${Buffer.from(`u:${token}`).toString('base64')}` }]) {
      const r = await raw('/v1/methods/GraphTopologyList', Buffer.from('{"@apiVersion":"2.0"}'), headers);
      assert.equal(r.status, 401, JSON.stringify(headers));
      const body = JSON.parse(r.text);
      assert.equal(body.error.code, 'Unauthorized');
      assert.equal(typeof body.error.message, 'string');
      assert.ok(!r.text.includes(token));
    }
    const ok = await raw('/v1/methods/GraphTopologyList', Buffer.from('{"@apiVersion":"2.0"}'), auth);
    assert.equal(ok.status, 200);
    assert.equal((await d.request('GET', '/healthz')).status, 200);
  });

  test('a non-loopback bind without a token is refused', () => {
    const deps = { control: {} as never, bus: {} as never, inputs: {} as never, port: 0 };
    for (const host of ['0.0.0.0', '::', '192.168.1.10', 'example.com']) {
      assert.throws(() => new HttpApi({ ...deps, host }), /non-loopback.*token|LVA_API_TOKEN/);
    }
    for (const host of ['127.0.0.1', '::1', 'localhost']) new HttpApi({ ...deps, host });
    new HttpApi({ ...deps, host: '0.0.0.0', token: 'x'.repeat(32) });
  });

  for (const chunked of [false, true]) {
    test(`an oversized body (${chunked ? 'chunked, no Content-Length' : 'Content-Length over the cap'}) → 413 with an OData body; the API keeps serving`, async () => {
      const big = Buffer.from(JSON.stringify({ '@apiVersion': '2.0', name: 'big', properties: { description: 'x'.repeat(3 * 1024 * 1024) } }));
      for (const route of ['/v1/methods/GraphTopologySet', '/v1/inputs/recordingTrigger']) {
        const r = await raw(route, big, auth, chunked).catch((err: NodeJS.ErrnoException) => ({ status: -1, text: String(err.code ?? err.message) }));
        assert.equal(r.status, 413, `${route}: ${r.text.slice(0, 200)}`);
        const body = JSON.parse(r.text);
        assert.equal(body.status, 413);
        assert.equal(typeof body.payload.error.code, 'string');
        assert.match(body.payload.error.message, /exceeds \d+ bytes/);
      }
      const list = await raw('/v1/methods/GraphTopologyList', Buffer.from('{"@apiVersion":"2.0"}'), auth);
      assert.equal(list.status, 200);
      assert.ok(!JSON.parse(list.text).payload.value.some((x: any) => x.name === 'big'));
    });
  }

  test('a client that sends a huge Content-Length and then nothing does not hold the server', async () => {
    const url = new URL(d.url);
    const text = await new Promise<string>((resolve, reject) => {
      const s = net.connect(Number(url.port), url.hostname);
      let got = '';
      s.on('data', (c) => (got += c.toString('latin1')));
      s.on('close', () => resolve(got));
      s.on('error', reject);
      s.write(`POST /v1/methods/GraphTopologySet HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n{`);
      setTimeout(() => s.end(), 2000);
    });
    assert.match(text, /^HTTP\/1\.1 413 /);
    assert.equal((await d.request('GET', '/healthz')).status, 200);
  });
});

describe('log redaction', () => {
  test('URL passwords and key=value credentials are masked in messages, fields, nested fields and errors', async () => {
    const { createLogger, redactText } = await import('../../src/util/logger.js');
    const { PassThrough } = await import('node:stream');
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString('utf8')));
    const log = createLogger(out, 'debug').child({ instance: 'i1', node: 'rtspSource' });
    const pw = 'Log-Secret-7a6b5c';
    log.info(`connecting to rtsp://admin:${pw}@10.0.0.5:554/stream`);
    log.warn({ url: `rtsp://admin:${pw}@cam/x`, nested: { cs: `DefaultEndpointsProtocol=https;AccountName=a;AccountKey=${pw};` } }, 'camera lost');
    log.error({ err: new Error(`request to https://acct.blob.core.windows.net/c?sv=1&sig=${pw} failed; rtsp://u:${pw}@h`) }, 'upload failed');
    log.info({ password: pw, credentials: { password: pw }, headerValue: pw }, 'structured secrets');
    log.debug('%s then %s', `rtsp://x:${pw}@h`, 'rest');
    await new Promise((r) => setImmediate(r));
    assert.ok(text.split('\n').filter(Boolean).length >= 5, text);
    assert.ok(!text.includes(pw), text);
    assert.match(text, /rtsp:\/\/admin:\*\*\*@10\.0\.0\.5:554\/stream/);
    assert.equal(redactText(`a rtsp://u:p@h b AccountKey=k; sig=s&x client_secret=c`), 'a rtsp://u:***@h b AccountKey=***; sig=***&x client_secret=***');
    assert.equal(redactText('rtsp://camera:554/x and http://host/path'), 'rtsp://camera:554/x and http://host/path');
  });
});
