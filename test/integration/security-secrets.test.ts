// Secrets everywhere: a real daemon runs with secrets planted in every place one can be given (RTSP URL
// userinfo, usernamePassword credentials through a SecretString parameter, an HTTP extension's header
// credential, the Media Services AAD secret and a Blob AccountKey in the settings, a URL in an invalid
// request). Methods are exercised against a real digest-auth camera (right password, wrong password,
// camera down). Then every place a secret could leak is searched: stdout/stderr logs at debug level,
// every method reply, every SSE event, `ps -eo args` sampled during the whole run, and every file the
// daemon wrote (its data directory, the media root, new entries in the temp directory). A file may hold
// a secret only when nobody else can read it (the graph store must keep SecretString values to restore
// instances after a restart): mode & 0o077 === 0 for the file and every directory above it.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { readdirSync, statSync } from 'node:fs';
import { startDaemon, stopAllDaemons, tempDir, type DaemonHandle, type MethodReply } from '../helpers/daemon.js';
import { startRtspServer, type RtspTestServer } from '../helpers/rtsp-server.js';
import { assertNoLeftoverFfmpeg } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';
import { findSecrets, plantSecret, readText, walk, watchProcessTable } from '../helpers/secrets.js';
import { readSample } from '../helpers/samples.js';

const USER = 'camuser';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Collects the raw SSE stream of /v1/events until close(). */
function openEvents(url: string): Promise<{ text: () => string; lines: () => any[]; close: () => void }> {
  return new Promise((resolve, reject) => {
    let text = '';
    const req = http.get(`${url}/v1/events`, (res) => {
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('error', () => {});
      resolve({
        text: () => text,
        lines: () => text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6))),
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
  });
}

describe('secrets planted in a daemon run appear nowhere they should not', () => {
  const secrets = {
    cameraPassword: plantSecret('campw'),
    urlPassword: plantSecret('urlpw'),
    secretParam: plantSecret('secparam'),
    headerValue: plantSecret('hdrval'),
    extensionPassword: plantSecret('extpw'),
    aadSecret: plantSecret('aadsecret'),
    accountKey: Buffer.from(plantSecret('acctkey')).toString('base64'),
    invalidUrlPassword: plantSecret('badurlpw'),
  };
  const all = Object.values(secrets);
  let camera: RtspTestServer;
  let d: DaemonHandle;
  let dataDir: string;
  const tmpBefore = new Set<string>();
  const replies: Array<{ call: string; reply: MethodReply }> = [];
  let events: Awaited<ReturnType<typeof openEvents>>;
  let ps: ReturnType<typeof watchProcessTable>;

  before(async () => {
    for (const e of readdirSync(os.tmpdir())) tmpBefore.add(e);
    camera = await startRtspServer({ size: '320x240', fps: 15, auth: { method: 'digest', username: USER, password: secrets.cameraPassword } });
    const closedPort = await freePort();
    dataDir = tempDir('lva-secrets-');
    ps = watchProcessTable();
    d = await startDaemon({
      dataDir,
      // Deactivate gives up on the unreachable storage after 2 s instead of 45 s.
      env: { LVA_LOG_LEVEL: 'debug', LVA_ASSET_DRAIN_TIMEOUT_MS: '2000' },
      config: {
        logLevel: 'Verbose',
        outputRootDirectory: path.join(dataDir, 'media'),
        azureMediaServicesArmId: '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Media/mediaServices/ams1',
        aadTenantId: 'tenant', aadServicePrincipalAppId: 'app-id', aadServicePrincipalSecret: secrets.aadSecret,
        aadEndpoint: `http://127.0.0.1:${closedPort}`, armEndpoint: `http://127.0.0.1:${closedPort}`,
        assetStorageConnectionString: `DefaultEndpointsProtocol=http;AccountName=devacct;AccountKey=${secrets.accountKey};BlobEndpoint=http://127.0.0.1:${closedPort}/devacct;`,
      },
    });
    events = await openEvents(d.url);
  });

  after(async () => {
    events?.close();
    ps?.stop();
    await stopAllDaemons();
    await camera?.stop();
    await assertNoLeftoverFfmpeg();
  });

  const call = async (method: string, payload: Record<string, unknown>) => {
    const reply = await d.call(method, { '@apiVersion': '2.0', ...payload });
    replies.push({ call: `${method} ${String(payload.name)}`, reply });
    return reply;
  };

  test('a run with planted secrets leaks none of them', async () => {
    const closedPort = await freePort();
    // Topologies: RTSP credentials through a SecretString parameter; an HTTP extension with a header credential.
    const motion = readSample('topologies/2.0/motion-detection.topology.json');
    for (const p of motion.properties.parameters) if (p.name === 'rtspPassword') { p.type = 'SecretString'; p.default = secrets.secretParam; }
    assert.equal((await call('GraphTopologySet', motion)).status, 201);
    const ext = readSample('topologies/2.0/httpExtension.topology.json');
    ext.properties.processors[0].endpoint.credentials = { '@type': '#Microsoft.Media.MediaGraphHttpHeaderCredentials', headerName: 'x-api-key', headerValue: secrets.headerValue };
    for (const p of ext.properties.parameters) if (p.name === 'rtspPassword' || p.name === 'inferencingPassword') p.type = 'SecretString';
    const extSet = await call('GraphTopologySet', ext);
    assert.ok(extSet.status === 201, JSON.stringify(extSet.payload));
    const asset = readSample('topologies/2.0/cvr-asset.topology.json');
    for (const p of asset.properties.parameters) if (p.name === 'rtspPassword') p.type = 'SecretString';
    assert.equal((await call('GraphTopologySet', asset)).status, 201);

    // An invalid request quoting a URL with a password: the error must not echo it.
    const invalid = structuredClone(motion);
    invalid.name = 'Invalid';
    invalid.properties.sources[0].endpoint.url = `rtsp://${USER}:${secrets.invalidUrlPassword}@127.0.0.1:99999/x`;
    assert.equal((await call('GraphTopologySet', invalid)).status, 400);

    const instance = (name: string, topologyName: string, params: Record<string, string>) => call('GraphInstanceSet', {
      name, properties: { topologyName, parameters: Object.entries(params).map(([n, value]) => ({ name: n, value })) },
    });
    const cameraUrl = camera.url('/test');
    const cameraUrlWithPassword = cameraUrl.replace('rtsp://', `rtsp://${USER}:${secrets.urlPassword}@`);
    assert.equal((await instance('good', 'MotionDetection', { rtspUrl: cameraUrl, rtspUserName: USER, rtspPassword: secrets.cameraPassword })).status, 201);
    assert.equal((await instance('urlpw', 'MotionDetection', { rtspUrl: cameraUrlWithPassword, rtspUserName: USER })).status, 201);
    assert.equal((await instance('down', 'MotionDetection', { rtspUrl: `rtsp://127.0.0.1:${closedPort}/cam`, rtspUserName: USER, rtspPassword: secrets.secretParam })).status, 201);
    assert.equal((await instance('ext', ext.name, {
      rtspUrl: cameraUrl, rtspUserName: USER, rtspPassword: secrets.cameraPassword,
      inferencingUrl: `http://127.0.0.1:${closedPort}/score`, inferencingPassword: secrets.extensionPassword,
    })).status, 201);
    assert.equal((await instance('asset', asset.name, { rtspUrl: cameraUrl, rtspUserName: USER, rtspPassword: secrets.cameraPassword })).status, 201);

    for (const name of ['good', 'urlpw', 'down', 'ext', 'asset']) assert.equal((await call('GraphInstanceActivate', { name })).status, 200, name);
    // Let the cameras connect, fail and retry; let sinks hit their unreachable services.
    const deadline = Date.now() + 30_000;
    const seen = (t: string) => events.lines().some((e) => String(e.applicationProperties?.eventType ?? '').endsWith(t));
    while (Date.now() < deadline && !(seen('MediaSessionEstablished') && seen('AuthenticationError') && seen('NetworkError'))) await sleep(250);
    await sleep(3000);
    for (const name of ['MotionDetection', ext.name, asset.name]) assert.equal((await call('GraphTopologyGet', { name })).status, 200);
    for (const name of ['good', 'urlpw', 'down', 'ext', 'asset']) assert.equal((await call('GraphInstanceGet', { name })).status, 200);
    await call('GraphTopologyList', {});
    await call('GraphInstanceList', {});
    // The asset sink's segment upload fails (StorageError) while it drains at Deactivate.
    for (const name of ['good', 'urlpw', 'down', 'ext', 'asset']) assert.equal((await call('GraphInstanceDeactivate', { name })).status, 200, name);
    await call('GraphInstanceDelete', { name: 'down' });
    const filesWhileUp = walk(dataDir);
    await sleep(500);
    const code = await d.stop();
    const psLines = [...ps.stop()];

    // The run did what it was meant to: media through the relay, a 401, a refused camera.
    assert.equal(code, 0, d.stderr().slice(-2000));
    assert.ok(seen('MediaSessionEstablished'), 'the good camera session was established');
    assert.ok(seen('AuthenticationError'), 'the wrong URL password was reported');
    assert.ok(events.lines().some((e) => e.body?.errorCode === 'ConnectionRefused'), 'the camera that is down was reported');
    assert.ok(seen('StorageError'), 'the asset sink met its unreachable storage');
    assert.ok(events.lines().some((e) => e.body?.url === `http://127.0.0.1:${closedPort}/score`), 'the HTTP extension met its unreachable server');
    assert.ok(psLines.some((l) => /ffmpeg .*-i rtsp:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]{24}\//.test(l)), 'ffmpeg ran through the relay');

    const leaks: string[] = [];
    leaks.push(...findSecrets(d.stdout(), all, 'daemon stdout'));
    leaks.push(...findSecrets(d.stderr(), all, 'daemon stderr'));
    for (const { call: c, reply } of replies) leaks.push(...findSecrets(JSON.stringify(reply.body), all, `reply to ${c}`));
    leaks.push(...findSecrets(events.text(), all, 'SSE events'));
    for (const l of psLines) leaks.push(...findSecrets(l, all, `ps: ${l.slice(0, 80)}`));

    // Files: the daemon's directories, and whatever appeared in the temp directory during the run.
    const roots = [dataDir];
    for (const e of readdirSync(os.tmpdir())) {
      const p = path.join(os.tmpdir(), e);
      if (tmpBefore.has(e) || p === dataDir) continue;
      try {
        if (statSync(p).uid === process.getuid!()) roots.push(p);
      } catch {
        // gone meanwhile
      }
    }
    let storeHoldsSecrets = false;
    for (const root of roots) {
      for (const f of [...walk(root), ...filesWhileUp.filter((x) => x.path.startsWith(root + path.sep))]) {
        if (f.isDirectory) continue;
        const found = findSecrets(readText(f.path), all, f.path);
        if (found.length === 0) continue;
        if (f.path.includes(`${path.sep}lva-edge${path.sep}`)) storeHoldsSecrets = true;
        // Holding a secret is allowed only where no one else can read it.
        const chain = [f];
        for (let dir = path.dirname(f.path); dir.startsWith(root) && dir.length >= root.length; dir = path.dirname(dir)) {
          chain.push({ path: dir, mode: statSync(dir).mode & 0o777, isDirectory: true });
          if (dir === root) break;
        }
        for (const c of chain) {
          if ((c.mode & 0o077) !== 0) leaks.push(`${found.join(', ')} — ${c.path} has mode ${c.mode.toString(8)}`);
        }
      }
    }
    // Control: the scanner does find secrets where they must be (the store keeps SecretString values).
    assert.ok(storeHoldsSecrets, 'the graph store holds the SecretString values (so the scan can find secrets)');
    assert.deepEqual(leaks, []);
  });
});

