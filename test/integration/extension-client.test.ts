import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { HttpExtensionClient } from '../../src/extension/client.js';
import type { EncodedImage } from '../../src/media/sample.js';
import { makeTestPki, startLoopbackServer, type TestPki } from '../helpers/extension-servers.js';
import { freePort } from '../helpers/ports.js';

// The HTTP extension client against real loopback HTTP/HTTPS servers: request shape, credentials,
// TLS verification (and refusal), and a server that is slow, down, returns garbage or 503.

const image: EncodedImage = { width: 4, height: 2, contentType: 'image/jpeg', content: { l: 0, t: 0, w: 1, h: 1 }, data: Buffer.from('fake-jpeg-bytes') };
const entity = { type: 'entity', entity: { tag: { value: 'truck', confidence: 0.8 }, box: { l: 0.1, t: 0.1, w: 0.2, h: 0.2 } } };
const ok = (res: import('node:http').ServerResponse) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ inferences: [entity] }));

let pki: TestPki;
before(() => {
  pki = makeTestPki();
});

describe('HTTP extension client', () => {
  test('POSTs the image bytes with the LVA headers, path and query kept', async () => {
    const s = await startLoopbackServer((_req, _b, res) => ok(res));
    const c = new HttpExtensionClient({ endpoint: { url: s.url } });
    const raw: EncodedImage = { ...image, contentType: 'image/x-raw', pixelFormat: 'bgr24', stride: 12 };
    assert.deepEqual(await c.post(image), { kind: 'inferences', inferences: [entity] });
    await c.post(raw);
    c.close();
    await s.close();
    const [r, rr] = s.requests;
    assert.equal(r!.url, '/score?camera=1');
    assert.equal(r!.headers['content-type'], 'image/jpeg');
    assert.equal(r!.headers['content-length'], String(image.data.length));
    assert.equal(r!.headers['user-agent'], 'Azure Media Services');
    assert.equal(r!.headers.accept, 'application/json, */*');
    assert.match(String(r!.headers['x-ms-client-request-id']), /^[0-9a-f-]{36}$/);
    assert.deepEqual(r!.body, image.data);
    assert.equal(r!.headers.authorization, undefined);
    assert.equal(rr!.headers['content-type'], 'image/x-raw');
    assert.equal(rr!.headers['x-ms-image-width'], '4');
    assert.equal(rr!.headers['x-ms-image-height'], '2');
    assert.equal(rr!.headers['x-ms-image-stride'], '12');
    assert.equal(rr!.headers['x-ms-image-pixel-format'], 'bgr24');
  });

  test('credentials: UsernamePassword → Basic; HttpHeaderCredentials → that header', async () => {
    const s = await startLoopbackServer((_req, _b, res) => ok(res));
    const basic = new HttpExtensionClient({ endpoint: { url: s.url, credentials: { kind: 'usernamePassword', username: 'ümlaut', password: 'p:ss w0rd' } } });
    const header = new HttpExtensionClient({ endpoint: { url: s.url, credentials: { kind: 'httpHeader', headerName: 'Authorization', headerValue: 'Bearer tok-123' } } });
    const custom = new HttpExtensionClient({ endpoint: { url: s.url, credentials: { kind: 'httpHeader', headerName: 'x-api-key', headerValue: 'k-456' } } });
    await basic.post(image);
    await header.post(image);
    await custom.post(image);
    for (const c of [basic, header, custom]) c.close();
    await s.close();
    assert.equal(s.requests[0]!.headers.authorization, 'Basic ' + Buffer.from('ümlaut:p:ss w0rd', 'utf8').toString('base64'));
    assert.equal(s.requests[1]!.headers.authorization, 'Bearer tok-123');
    assert.equal(s.requests[2]!.headers['x-api-key'], 'k-456');
  });

  test('401 / 403 → AuthenticationError / AuthorizationError', async () => {
    const s = await startLoopbackServer((_req, _b, res, n) => res.writeHead(n === 0 ? 401 : 403).end());
    const c = new HttpExtensionClient({ endpoint: { url: s.url, credentials: { kind: 'usernamePassword', username: 'u', password: 'wrong' } } });
    const a = await c.post(image);
    const b = await c.post(image);
    c.close();
    await s.close();
    assert.ok(a.kind === 'failed' && a.problem.name === 'AuthenticationError', JSON.stringify(a));
    assert.ok(b.kind === 'failed' && b.problem.name === 'AuthorizationError', JSON.stringify(b));
    assert.ok(!JSON.stringify([a, b]).includes('wrong'), 'the password never appears in an outcome');
  });

  test('TLS: verified against trustedCertificates; refused with the wrong CA, the default store, or a wrong host', async () => {
    const s = await startLoopbackServer((_req, _b, res) => ok(res), { cert: pki.serverCert, key: pki.serverKey });
    const tls = (o: Partial<{ trustedCertificates: string[]; ignoreHostname: boolean; ignoreSignature: boolean }>, url = s.url) =>
      new HttpExtensionClient({ endpoint: { url, tls: { ignoreHostname: false, ignoreSignature: false, ...o } } });
    const good = tls({ trustedCertificates: [pki.caCert] });
    const viaName = tls({ trustedCertificates: [pki.caCert] }, s.url.replace('127.0.0.1', 'localhost'));
    const wrongCa = tls({ trustedCertificates: [pki.otherCaCert] });
    const platform = tls({});
    const ignoreSig = tls({ ignoreSignature: true });
    assert.equal((await good.post(image)).kind, 'inferences');
    assert.equal((await viaName.post(image)).kind, 'inferences');
    for (const [name, c] of [['wrong CA', wrongCa], ['platform store', platform]] as const) {
      const o = await c.post(image);
      assert.ok(o.kind === 'failed' && o.problem.name === 'ProtocolError', `${name}: ${JSON.stringify(o)}`);
      assert.match(o.kind === 'failed' ? o.problem.errorCode : '', /CERT|SIGNED|VERIFY/);
    }
    assert.equal((await ignoreSig.post(image)).kind, 'inferences', 'ignoreSignature accepts an untrusted certificate');
    for (const c of [good, viaName, wrongCa, platform, ignoreSig]) c.close();
    await s.close();
  });

  test('TLS hostname: a certificate for another name is refused unless ignoreHostname', async () => {
    const elsewhere = makeTestPki('DNS:camera-ai.example');
    const s = await startLoopbackServer((_req, _b, res) => ok(res), { cert: elsewhere.serverCert, key: elsewhere.serverKey });
    const strict = new HttpExtensionClient({ endpoint: { url: s.url, tls: { trustedCertificates: [elsewhere.caCert], ignoreHostname: false, ignoreSignature: false } } });
    const lax = new HttpExtensionClient({ endpoint: { url: s.url, tls: { trustedCertificates: [elsewhere.caCert], ignoreHostname: true, ignoreSignature: false } } });
    const a = await strict.post(image);
    const b = await lax.post(image);
    strict.close();
    lax.close();
    await s.close();
    assert.ok(a.kind === 'failed' && a.problem.errorCode === 'ERR_TLS_CERT_ALTNAME_INVALID', JSON.stringify(a));
    assert.equal(b.kind, 'inferences', JSON.stringify(b));
  });

  test('slow server → Timeout; down → ConnectionRefused; cut reply → ConnectionLost; then recovers', async () => {
    let mode = 'slow';
    const s = await startLoopbackServer((_req, _b, res) => {
      if (mode === 'slow') setTimeout(() => ok(res), 2500);
      else if (mode === 'cut') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
        res.write('{"inferences":');
        setTimeout(() => res.destroy(), 20);
      } else ok(res);
    });
    const short = new HttpExtensionClient({ endpoint: { url: s.url }, timeoutMs: 800 });
    const slow = await short.post(image);
    short.close();
    assert.ok(slow.kind === 'failed' && slow.problem.errorCode === 'Timeout', JSON.stringify(slow));
    const c = new HttpExtensionClient({ endpoint: { url: s.url } });
    mode = 'cut';
    const cut = await c.post(image);
    assert.ok(cut.kind === 'failed' && cut.problem.name === 'NetworkError', JSON.stringify(cut));
    mode = 'ok';
    assert.equal((await c.post(image)).kind, 'inferences');
    c.close();
    await s.close();
    const down = new HttpExtensionClient({ endpoint: { url: `http://127.0.0.1:${await freePort()}/score` }, timeoutMs: 2000 });
    const d = await down.post(image);
    down.close();
    assert.ok(d.kind === 'failed' && d.problem.errorCode === 'ConnectionRefused', JSON.stringify(d));
  });

  test('503 with Retry-After → busy; garbage → ProtocolError; oversized reply cut off', async () => {
    const replies = [
      (res: import('node:http').ServerResponse) => res.writeHead(503, { 'retry-after': '4' }).end(),
      (res: import('node:http').ServerResponse) => res.writeHead(200, { 'content-type': 'application/json' }).end('{{{garbage'),
      (res: import('node:http').ServerResponse) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        let sent = 0;
        const pump = () => {
          while (sent < 4 * 1024 * 1024) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        res.on('error', () => {});
        pump();
      },
    ];
    const s = await startLoopbackServer((_req, _b, res, n) => replies[n]!(res));
    const c = new HttpExtensionClient({ endpoint: { url: s.url } });
    assert.deepEqual(await c.post(image), { kind: 'busy', retryAfterMs: 4000 });
    const g = await c.post(image);
    assert.ok(g.kind === 'failed' && g.problem.errorCode === 'InvalidJson');
    const big = await c.post(image);
    assert.ok(big.kind === 'failed' && big.problem.errorCode === 'ResponseTooLarge', JSON.stringify(big).slice(0, 200));
    c.close();
    await s.close();
  });
});

after(() => {});
