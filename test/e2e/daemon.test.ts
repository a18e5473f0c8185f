// End-to-end tests of the real `lva-edge run` process and the CLI (interfaces.md "lva-edge run",
// "validate", "invoke", "Local HTTP API"; lva-spec §1). The in-process method semantics are covered by
// test/integration/control-plane.test.ts; here the transport, the process boundary and durability are
// under test.
import { validateFiles } from '../../src/cli/validate.js';
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mapLimit, runCli, startDaemon, stopAllDaemons, tempDir, type DaemonHandle, type MethodReply } from '../helpers/daemon.js';
import { allTopologyFiles, readSample, samplesDir } from '../helpers/samples.js';
import { freePort } from '../helpers/ports.js';
import { assertNoLeftoverFfmpeg, listFfmpegPids } from '../helpers/processes.js';

const EVR_MOTION = 'topologies/2.0/evr-motion-files.topology.json';
const EVR_HUB = 'topologies/2.0/evr-hubMessage-files.topology.json';
const GRPC = 'topologies/2.0/cvr-with-grpcExtension.topology.json';

const dirs: string[] = [];
function scratch(prefix: string): string {
  const d = tempDir(prefix);
  dirs.push(d);
  return d;
}

after(async () => {
  await stopAllDaemons();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The reply contract of the local API: body is exactly {status, payload} and HTTP status = status. */
function assertEnvelope(r: MethodReply, expected?: number): void {
  assert.deepEqual(Object.keys(r.body).sort(), ['payload', 'status'], `reply body keys: ${JSON.stringify(r.body).slice(0, 300)}`);
  assert.equal(r.httpStatus, r.status, 'HTTP status code equals the reply status');
  if (expected !== undefined) assert.equal(r.status, expected, JSON.stringify(r.payload).slice(0, 1000));
}

function assertLvaError(payload: any): void {
  assert.equal(typeof payload?.error?.code, 'string', JSON.stringify(payload));
  assert.equal(typeof payload.error.message, 'string');
}

function instancePayload(name: string, topologyName: string, params: Record<string, string>) {
  return {
    '@apiVersion': '2.0',
    name,
    properties: { topologyName, parameters: Object.entries(params).map(([n, value]) => ({ name: n, value })) },
  };
}

/** Polls `check` until it holds; fails after `timeoutMs` (a liveness bound, not a performance threshold). */
async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Every page of a List method. */
async function listAll(d: DaemonHandle, method: 'GraphTopologyList' | 'GraphInstanceList'): Promise<any[]> {
  const out: any[] = [];
  let token: string | undefined;
  for (let page = 0; page < 100; page++) {
    const r = await d.call(method, { '@apiVersion': '2.0', ...(token ? { '@continuationToken': token } : {}) });
    assertEnvelope(r, 200);
    out.push(...r.payload.value);
    token = r.payload['@continuationToken'];
    if (!token) return out;
  }
  throw new Error('List did not terminate');
}

describe('local HTTP API of the daemon process', () => {
  let d: DaemonHandle;
  before(async () => {
    d = await startDaemon({ dataDir: scratch('lva-e2e-api-') });
  });
  after(async () => {
    if (d) assert.equal(await d.stop(), 0, `graceful stop exits 0\n${d.stderr()}`);
  });

  const seen = new Set<string>();
  for (const f of allTopologyFiles()) {
    test(`${f.rel}: GraphTopologySet (file sent verbatim) 201/200, Get and List over HTTP`, async () => {
      const raw = readFileSync(path.join(samplesDir(), f.rel));
      const first = await d.call('GraphTopologySet', raw.toString('utf8'));
      // 1.0 and legacy files reuse the 2.0 files' names: those are updates of the same topology.
      assertEnvelope(first, seen.has(f.json.name) ? 200 : 201);
      seen.add(f.json.name);
      assert.equal(first.payload.name, f.json.name);
      const again = await d.call('GraphTopologySet', raw.toString('utf8'));
      assertEnvelope(again, 200);
      const got = await d.call('GraphTopologyGet', { '@apiVersion': f.json['@apiVersion'] ?? '2.0', name: f.json.name });
      assertEnvelope(got, 200);
      assert.equal(got.payload.name, f.json.name);
      assert.deepEqual(got.payload.properties, again.payload.properties);
      const all = await listAll(d, 'GraphTopologyList');
      assert.ok(all.some((x) => x.name === f.json.name), 'List contains the topology');
    });
  }

  test('Get of an unknown name → 404 NotFound envelope', async () => {
    const r = await d.call('GraphTopologyGet', { '@apiVersion': '2.0', name: 'does-not-exist' });
    assertEnvelope(r, 404);
    assertLvaError(r.payload);
  });

  test('unknown method → 501', async () => {
    const r = await d.call('GraphTopologyFrobnicate', { '@apiVersion': '2.0' });
    assertEnvelope(r, 501);
    assertLvaError(r.payload);
  });

  test('malformed JSON body → 400 with an LVA error body', async () => {
    for (const body of ['{"@apiVersion": "2.0", "name": ', 'not json', '{"a":1}}']) {
      const r = await d.call('GraphTopologyGet', body);
      assertEnvelope(r, 400);
      assertLvaError(r.payload);
      assert.equal(r.payload.error.code, 'BadRequest');
    }
  });

  test('a body over the 1 MiB cap → 413; the daemon keeps serving', async () => {
    const big = JSON.stringify({ '@apiVersion': '2.0', name: 'big', properties: { description: 'x'.repeat(1024 * 1024 + 10) } });
    const r = await d.call('GraphTopologySet', big);
    assertEnvelope(r, 413);
    assertLvaError(r.payload);
    const list = await d.call('GraphTopologyList', { '@apiVersion': '2.0' });
    assertEnvelope(list, 200);
    assert.ok(!list.payload.value.some((x: any) => x.name === 'big'));
  });

  test('GET on a method route → 405; unknown route → 404', async () => {
    assert.equal((await d.request('GET', '/v1/methods/GraphTopologyList')).status, 405);
    assert.equal((await d.request('GET', '/v1/nope')).status, 404);
  });

  test('/healthz → 200 JSON; /metrics → Prometheus text with lva_active_graph_instances', async () => {
    const h = await d.request('GET', '/healthz');
    assert.equal(h.status, 200);
    assert.equal(JSON.parse(h.text).status, 'ok');
    const m = await d.request('GET', '/metrics');
    assert.equal(m.status, 200);
    assert.match(String(m.headers['content-type']), /^text\/plain/);
    assert.match(m.text, /^lva_active_graph_instances \d+$/m);
    assert.match(m.text, /^lva_graph_topologies [1-9]\d*$/m);
  });

  describe('lva-edge invoke', () => {
    test('invoke METHOD FILE --url prints the reply and exits 0 for 2xx', async () => {
      const file = path.join(samplesDir(), EVR_MOTION);
      const r = await runCli(['invoke', 'GraphTopologySet', file, '--url', d.url]);
      assert.equal(r.code, 0, r.stderr);
      const reply = JSON.parse(r.stdout);
      assert.equal(reply.status, 200); // set by the sample loop above
      assert.equal(reply.payload.name, readSample(EVR_MOTION).name);
    });

    test('invoke METHOD - reads the payload from stdin; exit 1 for non-2xx', async () => {
      const name = readSample(EVR_MOTION).name;
      const ok = await runCli(['invoke', 'GraphTopologyGet', '-', '--url', d.url], { input: JSON.stringify({ '@apiVersion': '2.0', name }) });
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(JSON.parse(ok.stdout).payload.name, name);
      const missing = await runCli(['invoke', 'GraphTopologyGet', '-', '--url', d.url], { input: '{"@apiVersion":"2.0","name":"nope"}' });
      assert.equal(missing.code, 1);
      const reply = JSON.parse(missing.stdout);
      assert.equal(reply.status, 404);
      assertLvaError(reply.payload);
      const unknown = await runCli(['invoke', 'NoSuchMethod', '-', '--url', d.url], { input: '{"@apiVersion":"2.0"}' });
      assert.equal(unknown.code, 1);
      assert.equal(JSON.parse(unknown.stdout).status, 501);
    });

    test('invoke without a payload sends {"@apiVersion":"2.0"}; an unreachable URL exits 1', async () => {
      const r = await runCli(['invoke', 'GraphTopologyList', '--url', d.url]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(Array.isArray(JSON.parse(r.stdout).payload.value));
      const port = await freePort();
      const down = await runCli(['invoke', 'GraphTopologyList', '--url', `http://127.0.0.1:${port}`]);
      assert.equal(down.code, 1);
      assert.match(down.stderr, /cannot reach/);
    });
  });
});

describe('lva-edge validate agrees with the daemon', () => {
  let d: DaemonHandle;
  let work: string;
  before(async () => {
    work = scratch('lva-e2e-validate-');
    d = await startDaemon({ dataDir: path.join(work, 'data') });
  });
  after(async () => {
    if (d) assert.equal(await d.stop(), 0, d.stderr());
  });

  test('every sample topology: validate exits 0 ⇔ the daemon accepts it', async () => {
    const files = allTopologyFiles();
    // The command itself is spawned for one sample per folder (a process start costs ~1 s under load);
    // every sample goes through the same function the command prints, in process.
    const spawned = new Set([...new Map(files.map((f) => [path.dirname(f.rel), f.rel])).values()]);
    const cli = await mapLimit(files, Math.max(2, os.availableParallelism()), async (f) => {
      const file = path.join(samplesDir(), f.rel);
      if (spawned.has(f.rel)) return runCli(['validate', file]);
      const r = await validateFiles(file, undefined, {});
      if (r.kind === 'unreadable') return { code: 2, stdout: '', stderr: r.message };
      return r.kind === 'invalid'
        ? { code: 1, stdout: JSON.stringify(r.error.toODataBody()), stderr: '' }
        : { code: 0, stdout: JSON.stringify({ valid: true, topology: r.topologyName }), stderr: '' };
    });
    assert.ok(spawned.size >= 3, `spawned the command for ${spawned.size} samples`);
    for (const [i, f] of files.entries()) {
      const api = await d.call('GraphTopologySet', readFileSync(path.join(samplesDir(), f.rel), 'utf8'));
      const accepted = api.status >= 200 && api.status < 300;
      assert.equal(cli[i]!.code === 0, accepted, `${f.rel}: validate exit ${cli[i]!.code} (${cli[i]!.stdout.trim()}), API ${api.status}`);
      if (accepted) assert.deepEqual(JSON.parse(cli[i]!.stdout), { valid: true, topology: f.json.name });
      else assert.deepEqual(JSON.parse(cli[i]!.stdout), api.payload);
    }
  });

  function invalidTopologies(): Array<[string, unknown]> {
    const evr = readSample(EVR_MOTION);
    const withBadInput = structuredClone(evr);
    withBadInput.name = 'bad-input';
    withBadInput.properties.sinks[0].inputs[0].nodeName = 'noSuchNode';
    const withUnknownType = structuredClone(evr);
    withUnknownType.name = 'bad-type';
    withUnknownType.properties.processors[0]['@type'] = '#Microsoft.Media.MediaGraphTeleporter';
    const undeclaredParam = structuredClone(evr);
    undeclaredParam.name = 'bad-param';
    undeclaredParam.properties.sources[0].endpoint.url = '${cameraUrlNotDeclared}';
    const noSinks = structuredClone(evr);
    noSinks.name = 'no-sinks';
    noSinks.properties.sinks = [];
    return [
      ['invalid name', { ...structuredClone(evr), name: '-bad name-' }],
      ['unsupported @apiVersion', { ...structuredClone(evr), '@apiVersion': '9.9', name: 'bad-version' }],
      ['sink input names an unknown node', withBadInput],
      ['unknown node @type', withUnknownType],
      ['undeclared parameter reference', undeclaredParam],
      ['no sinks', noSinks],
      ['payload is an array', [1, 2, 3]],
    ];
  }

  for (const [label, payload] of invalidTopologies()) {
    test(`invalid topology (${label}): validate exits 1 and prints the API's error body`, async () => {
      const file = path.join(work, `${label.replace(/\W+/g, '-')}.json`);
      writeFileSync(file, JSON.stringify(payload));
      const api = await d.call('GraphTopologySet', payload);
      assertEnvelope(api);
      assert.ok(api.status >= 400 && api.status < 500, `API status ${api.status}`);
      assertLvaError(api.payload);
      const r = await runCli(['validate', file]);
      assert.equal(r.code, 1, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), api.payload);
    });
  }

  test('--instance: a matching instance → 0; invalid instances → 1 with the API\'s GraphInstanceSet error body', async () => {
    const topo = readSample(EVR_MOTION);
    const topoFile = path.join(samplesDir(), EVR_MOTION);
    assert.ok([200, 201].includes((await d.call('GraphTopologySet', topo)).status));
    const good = instancePayload('inst-ok', topo.name, { rtspUrl: 'rtsp://127.0.0.1:554/x' });
    const goodFile = path.join(work, 'good.instance.json');
    writeFileSync(goodFile, JSON.stringify(good));
    const ok = await runCli(['validate', topoFile, '--instance', goodFile]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout), { valid: true, topology: topo.name, instance: 'inst-ok' });
    const apiOk = await d.call('GraphInstanceSet', good);
    assertEnvelope(apiOk, 201);

    const invalid: Array<[string, unknown]> = [
      ['missing required parameter', instancePayload('inst-missing', topo.name, {})],
      ['undeclared parameter', instancePayload('inst-extra', topo.name, { rtspUrl: 'rtsp://127.0.0.1:554/x', bogusParam: '1' })],
      ['bad instance name', instancePayload('bad_name!', topo.name, { rtspUrl: 'rtsp://127.0.0.1:554/x' })],
    ];
    for (const [label, payload] of invalid) {
      const file = path.join(work, `inst-${label.replace(/\W+/g, '-')}.json`);
      writeFileSync(file, JSON.stringify(payload));
      const api = await d.call('GraphInstanceSet', payload);
      assertEnvelope(api);
      assert.ok(api.status >= 400 && api.status < 500, `${label}: API status ${api.status}`);
      const r = await runCli(['validate', topoFile, '--instance', file]);
      assert.equal(r.code, 1, `${label}: ${r.stdout}${r.stderr}`);
      assert.deepEqual(JSON.parse(r.stdout), api.payload, label);
    }

    // An instance of another topology is refused, as the API refuses an unknown topology.
    const other = instancePayload('inst-other', 'SomeOtherTopology', { rtspUrl: 'rtsp://127.0.0.1:554/x' });
    const otherFile = path.join(work, 'other.instance.json');
    writeFileSync(otherFile, JSON.stringify(other));
    const r = await runCli(['validate', topoFile, '--instance', otherFile]);
    assert.equal(r.code, 1);
    assert.equal(JSON.parse(r.stdout).error.details[0].code, 'TopologyNotFound');
  });

  test('unreadable input → exit 2 (missing file, invalid JSON, unreadable instance file)', async () => {
    const missing = await runCli(['validate', path.join(work, 'nope.json')]);
    assert.equal(missing.code, 2);
    assert.equal(missing.stdout, '');
    assert.match(missing.stderr, /nope\.json/);
    const garbled = path.join(work, 'garbled.json');
    writeFileSync(garbled, '{"@apiVersion": "2.0", "name": ');
    const g = await runCli(['validate', garbled]);
    assert.equal(g.code, 2);
    assert.match(g.stderr, /not valid JSON/);
    const i = await runCli(['validate', path.join(samplesDir(), EVR_MOTION), '--instance', path.join(work, 'missing-instance.json')]);
    assert.equal(i.code, 2);
  });
});

describe('activation of a node type the runtime does not implement', () => {
  let d: DaemonHandle;
  before(async () => {
    d = await startDaemon({ dataDir: scratch('lva-e2e-unsupported-') });
  });
  after(async () => {
    if (d) assert.equal(await d.stop(), 0, d.stderr());
    await assertNoLeftoverFfmpeg();
  });

  test('Activate → 400 ModuleValidationError naming the node; the instance stays Inactive', async () => {
    // The gRPC extension runs now; the Cognitive Services vision extension is still not implemented,
    // so the sample's extension node becomes one (it validates: same endpoint and image properties).
    const topo = readSample(GRPC);
    const grpcNode = [...(topo.properties.processors ?? [])].find((n: any) => /GrpcExtension/.test(n['@type']));
    assert.ok(grpcNode, 'the sample has a gRPC extension processor');
    grpcNode['@type'] = '#Microsoft.Media.MediaGraphCognitiveServicesVisionExtension';
    delete grpcNode.dataTransfer;
    delete grpcNode.samplingOptions;
    assertEnvelope(await d.call('GraphTopologySet', topo), 201);
    const port = await freePort();
    assertEnvelope(await d.call('GraphInstanceSet', instancePayload('grpc-1', topo.name, { rtspUrl: `rtsp://127.0.0.1:${port}/x` })), 201);
    const r = await d.call('GraphInstanceActivate', { '@apiVersion': '2.0', name: 'grpc-1' });
    assertEnvelope(r, 400);
    assertLvaError(r.payload);
    const detail = (r.payload.error.details ?? []).find((x: any) => x.code === 'ModuleValidationError');
    assert.ok(detail, `a ModuleValidationError detail: ${JSON.stringify(r.payload)}`);
    assert.ok(detail.message.includes(grpcNode.name), `the message names node '${grpcNode.name}': ${detail.message}`);
    const got = await d.call('GraphInstanceGet', { '@apiVersion': '2.0', name: 'grpc-1' });
    assertEnvelope(got, 200);
    assert.equal(got.payload.properties.state, 'Inactive');
    const m = await d.request('GET', '/metrics');
    assert.match(m.text, /^lva_active_graph_instances 0$/m);
  });
});

describe('persistence under SIGKILL', () => {
  const NAMES = 40;
  const CALLS = 200;
  const KILL_AFTER_ACKS = 100;
  const CONCURRENCY = 8; // < NAMES, so two calls for the same name are never in flight together
  let dataDir: string;
  let d: DaemonHandle | undefined;
  after(async () => {
    if (d) await d.kill();
  });

  test(`${CALLS} rapid GraphTopologySet calls over ${NAMES} names, SIGKILL after ~${KILL_AFTER_ACKS} acks: nothing acknowledged is lost, nothing older comes back`, async (t) => {
    dataDir = scratch('lva-e2e-kill-');
    d = await startDaemon({ dataDir });
    const base = readSample(EVR_MOTION);
    const nameOf = (i: number) => `kill-t-${String(i % NAMES).padStart(2, '0')}`;
    const payloadOf = (i: number) => {
      const p = structuredClone(base);
      p.name = nameOf(i);
      p.properties.description = `call-${i}`;
      return p;
    };
    type CallState = 'unsent' | 'inflight' | 'acked' | 'failed';
    const states: CallState[] = new Array(CALLS).fill('unsent');
    let acks = 0;
    let killed = false;
    let killing: Promise<void> | undefined;
    let inflightAtKill = 0;
    let next = 0;
    const daemon = d;
    const worker = async () => {
      while (!killed && next < CALLS) {
        const i = next++;
        states[i] = 'inflight';
        try {
          const r = await daemon.call('GraphTopologySet', payloadOf(i));
          assertEnvelope(r);
          assert.ok(r.status === 200 || r.status === 201, `call ${i}: ${JSON.stringify(r.payload)}`);
          states[i] = 'acked';
          acks++;
          if (acks === KILL_AFTER_ACKS && !killed) {
            killed = true;
            inflightAtKill = states.filter((s) => s === 'inflight').length;
            killing = daemon.kill('SIGKILL');
          }
        } catch (err) {
          if (!killed) throw err;
          states[i] = 'failed'; // in flight when the daemon died: may or may not have been applied
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    await killing;
    assert.ok(killed, 'the daemon was killed mid-stream');
    assert.ok(inflightAtKill > 0, 'calls were in flight at the kill');
    const { signal } = await daemon.exited;
    assert.equal(signal, 'SIGKILL');
    const failed = states.filter((s) => s === 'failed').length;
    t.diagnostic(`acks ${acks}, in flight at the kill ${inflightAtKill}, failed by the kill ${failed}, never sent ${states.filter((s) => s === 'unsent').length}`);

    // Expected per name: the last acknowledged description, or the one call after it if that was in flight.
    const allowed = new Map<string, Set<string>>();
    for (let n = 0; n < NAMES; n++) {
      const calls = [...Array(CALLS).keys()].filter((i) => i % NAMES === n);
      const lastAcked = calls.filter((i) => states[i] === 'acked').pop();
      assert.notEqual(lastAcked, undefined, `name ${n} had an acknowledged Set`);
      const ok = new Set([`call-${lastAcked}`]);
      for (const i of calls) if (i > lastAcked! && states[i] === 'failed') ok.add(`call-${i}`);
      allowed.set(nameOf(n), ok);
    }

    // Every completed store file parses as it stands after the crash.
    const topoDir = path.join(dataDir, 'lva-edge', 'topologies');
    const filesBefore = readdirSync(topoDir).filter((f) => f.endsWith('.json') && !f.startsWith('.'));
    assert.equal(filesBefore.length, NAMES);
    for (const f of filesBefore) JSON.parse(readFileSync(path.join(topoDir, f), 'utf8'));

    d = await startDaemon({ dataDir });
    const all = await listAll(d, 'GraphTopologyList');
    assert.deepEqual(all.map((t) => t.name).sort(), [...allowed.keys()].sort(), 'List returns every topology');
    let appliedInFlight = 0;
    for (const topo of all) {
      const ok = allowed.get(topo.name)!;
      const stored = topo.properties.description;
      assert.ok(ok.has(stored), `${topo.name}: stored '${stored}', expected one of ${[...ok].join(', ')}`);
      if (ok.size > 1 && stored !== [...ok][0]) appliedInFlight++;
      const got = await d.call('GraphTopologyGet', { '@apiVersion': '2.0', name: topo.name });
      assertEnvelope(got, 200);
      assert.equal(got.payload.properties.description, stored);
    }
    t.diagnostic(`names whose in-flight (unacknowledged) Set was applied: ${appliedInFlight}`);

    // Files: mode 0600 (they can hold secrets), directory 0700, no temp or corrupt files left.
    const filesAfter = readdirSync(topoDir);
    assert.deepEqual(filesAfter.filter((f) => !f.endsWith('.json') || f.startsWith('.')), [], 'no stray temp/corrupt files after restart');
    for (const f of filesAfter) assert.equal(statSync(path.join(topoDir, f)).mode & 0o777, 0o600, `${f} is mode 0600`);
    assert.equal(statSync(topoDir).mode & 0o777, 0o700);
    assert.equal(await d.stop(), 0, d.stderr());
    d = undefined;
  });
});

describe('Active instances are restored after a restart', () => {
  let dataDir: string;
  let d: DaemonHandle | undefined;
  // A "camera" that accepts TCP connections and never answers: the RTSP source's ffmpeg stays connected
  // (so a leftover child would be visible), and each accepted connection proves the source is running.
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const camera = net.createServer((sock) => {
    connections++;
    sockets.add(sock);
    sock.on('error', () => {});
    sock.on('close', () => sockets.delete(sock));
  });
  after(async () => {
    if (d) assert.equal(await d.stop(), 0, d.stderr());
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => camera.close(() => resolve()));
    await assertNoLeftoverFfmpeg();
  });

  test('Activate, SIGTERM (exit 0), restart → Active again; Deactivate → 200 and no ffmpeg left', async () => {
    await new Promise<void>((resolve, reject) => {
      camera.once('error', reject);
      camera.listen(0, '127.0.0.1', () => resolve());
    });
    const cameraPort = (camera.address() as net.AddressInfo).port;
    dataDir = scratch('lva-e2e-restore-');
    const media = path.join(dataDir, 'media');
    const topo = readSample(EVR_HUB);
    for (const s of topo.properties.sinks) if (s.baseDirectoryPath !== undefined) s.baseDirectoryPath = media;
    // The sample declares rtspUrl but hard-codes rtsp://rtspsim:554/… in the source: use the parameter.
    topo.properties.sources[0].endpoint.url = '${rtspUrl}';
    d = await startDaemon({ dataDir });
    assertEnvelope(await d.call('GraphTopologySet', topo), 201);
    assertEnvelope(await d.call('GraphInstanceSet', instancePayload('cam-1', topo.name, { rtspUrl: `rtsp://127.0.0.1:${cameraPort}/x` })), 201);
    assertEnvelope(await d.call('GraphInstanceActivate', { '@apiVersion': '2.0', name: 'cam-1' }), 200);
    const active = await d.call('GraphInstanceGet', { '@apiVersion': '2.0', name: 'cam-1' });
    assert.equal(active.payload.properties.state, 'Active');
    assert.match((await d.request('GET', '/metrics')).text, /^lva_active_graph_instances 1$/m);
    await waitFor('the RTSP source connects to the camera', () => connections > 0);
    assert.equal(await d.stop(), 0, `graceful stop exits 0\n${d.stderr()}`);
    await assertNoLeftoverFfmpeg();

    const before = connections;
    d = await startDaemon({ dataDir });
    await waitFor('the instance is Active again after the restart', async () => {
      const r = await d!.call('GraphInstanceGet', { '@apiVersion': '2.0', name: 'cam-1' });
      assertEnvelope(r, 200);
      return r.payload.properties.state === 'Active';
    }, 10_000);
    await waitFor('the restored RTSP source connects to the camera', () => connections > before);
    assert.ok(listFfmpegPids().length > 0, 'the restored source runs an ffmpeg child');

    assertEnvelope(await d.call('GraphInstanceDeactivate', { '@apiVersion': '2.0', name: 'cam-1' }), 200);
    const inactive = await d.call('GraphInstanceGet', { '@apiVersion': '2.0', name: 'cam-1' });
    assert.equal(inactive.payload.properties.state, 'Inactive');
    await assertNoLeftoverFfmpeg();
    assert.equal(await d.stop(), 0, d.stderr());

    // Deactivated by the user → not re-activated on the next start.
    d = await startDaemon({ dataDir });
    const again = await d.call('GraphInstanceGet', { '@apiVersion': '2.0', name: 'cam-1' });
    assertEnvelope(again, 200);
    assert.equal(again.payload.properties.state, 'Inactive');
  });
});

describe('local API security', () => {
  let d: DaemonHandle | undefined;
  after(async () => {
    if (d) assert.equal(await d.stop(), 0, d.stderr());
  });

  test('--http 0.0.0.0:0 without LVA_API_TOKEN → non-zero exit with a clear message', async () => {
    const r = await runCli(['run', '--http', '0.0.0.0:0', '--data-dir', scratch('lva-e2e-sec-')]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /LVA_API_TOKEN/);
    assert.doesNotMatch(r.stdout, /"ready":true/);
  });

  test('with LVA_API_TOKEN: no/wrong bearer → 401, right bearer → 2xx; /healthz stays open', async () => {
    const token = 'e2e-secret-token-0123456789';
    d = await startDaemon({ dataDir: scratch('lva-e2e-sec-'), http: '0.0.0.0:0', env: { LVA_API_TOKEN: token } });
    assert.equal(d.host, '0.0.0.0');
    const none = await d.call('GraphTopologyList', { '@apiVersion': '2.0' }, { token: null });
    assert.equal(none.httpStatus, 401);
    const wrong = await d.call('GraphTopologyList', { '@apiVersion': '2.0' }, { token: 'e2e-secret-token-0123456788' });
    assert.equal(wrong.httpStatus, 401);
    const shorter = await d.call('GraphTopologyList', { '@apiVersion': '2.0' }, { token: 'e2e' });
    assert.equal(shorter.httpStatus, 401);
    const ok = await d.call('GraphTopologyList', { '@apiVersion': '2.0' });
    assertEnvelope(ok, 200);
    const set = await d.call('GraphTopologySet', readSample(EVR_MOTION));
    assertEnvelope(set, 201);
    assert.equal((await d.request('GET', '/metrics')).status, 401);
    assert.equal((await d.request('GET', '/metrics', { headers: { authorization: `Bearer ${token}` } })).status, 200);
    assert.equal((await d.request('GET', '/v1/events')).status, 401);
    assert.equal((await d.request('GET', '/healthz')).status, 200);
    // The CLI picks the token up from the environment.
    const inv = await runCli(['invoke', 'GraphTopologyList', '--url', d.url], { env: { LVA_API_TOKEN: token } });
    assert.equal(inv.code, 0, inv.stderr);
    const noTok = await runCli(['invoke', 'GraphTopologyList', '--url', d.url]);
    assert.equal(noTok.code, 1);
  });
});
