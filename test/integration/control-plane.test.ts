import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { makePlane, type TestPlane } from '../helpers/control-plane.js';
import { allInstancePayloads, allTopologyFiles, readSample } from '../helpers/samples.js';
import { MAX_INSTANCES, MAX_TOPOLOGIES } from '../../src/api/methods.js';

const EVR = 'topologies/2.0/evr-motion-files.topology.json';

function instancePayload(name: string, topologyName: string, params: Record<string, string> = { rtspUrl: 'rtsp://cam.example/stream' }) {
  return {
    '@apiVersion': '2.0',
    name,
    properties: { topologyName, parameters: Object.entries(params).map(([n, value]) => ({ name: n, value })) },
  };
}

describe('direct methods over every LVA sample (lva-spec §1.4)', () => {
  let t: TestPlane;
  const seen = new Set<string>();
  before(async () => {
    t = makePlane();
    await t.plane.load();
  });
  after(() => t.cleanup());

  for (const f of allTopologyFiles()) {
    test(`${f.rel}: Set 201, Set again 200, Get and List read it back without secrets`, async () => {
      const first = await t.call('GraphTopologySet', f.json);
      // 1.0 and legacy files reuse the 2.0 files' names: those are updates of the same topology.
      assert.equal(first.status, seen.has(f.json.name) ? 200 : 201, JSON.stringify(first.payload));
      seen.add(f.json.name);
      assert.equal(first.payload.name, f.json.name);
      assert.ok(first.payload.systemData?.createdAt && first.payload.systemData?.lastModifiedAt);
      const again = await t.call('GraphTopologySet', f.json);
      assert.equal(again.status, 200);
      assert.equal(again.payload.systemData.createdAt, first.payload.systemData.createdAt);
      assert.ok(again.payload.systemData.lastModifiedAt >= first.payload.systemData.lastModifiedAt);
      const got = await t.call('GraphTopologyGet', { '@apiVersion': f.json['@apiVersion'] ?? '2.0', name: f.json.name });
      assert.equal(got.status, 200);
      assert.deepEqual(got.payload.properties, again.payload.properties);
      const text = JSON.stringify(got.payload);
      assert.doesNotMatch(text, /"password":/i, 'passwords are never echoed');
      assert.doesNotMatch(text, /"headerValue":/i);
      for (const n of [...got.payload.properties.processors, ...got.payload.properties.sinks]) {
        for (const i of n.inputs) assert.ok(Array.isArray(i.outputSelectors), 'every input has outputSelectors');
      }
      for (const s of got.payload.properties.sources) {
        if (s['@type'] === '#Microsoft.Media.MediaGraphRtspSource') assert.ok(['Tcp', 'Http'].includes(s.transport), 'transport default materialised');
      }
      const list = await t.call('GraphTopologyList', {});
      assert.equal(list.status, 200);
      assert.ok(list.payload.value.some((x: any) => x.name === f.json.name));
    });
  }

  test('instance payloads of operations/*.json and ref-apps are accepted against their topologies', async () => {
    const topologies = new Set((await t.call('GraphTopologyList', {})).payload.value.map((x: any) => x.name));
    let accepted = 0;
    for (const p of allInstancePayloads()) {
      const body = structuredClone(p.json);
      if (!topologies.has(body.properties.topologyName)) continue; // e.g. the 1.0 gRPC sample topology is not among the files
      if (!body.name) body.name = `inst-${accepted}`; // the IoT Central gateway fills names and values in
      for (const prm of body.properties.parameters ?? []) {
        if (prm.value === '') prm.value = /inferenc|http|score/i.test(prm.name) ? 'http://127.0.0.1:8080/score'
          : prm.name.toLowerCase().includes('url') ? 'rtsp://cam.example/stream'
          : prm.name.toLowerCase().includes('sensitivity') ? 'medium' : 'x';
      }
      const r = await t.call('GraphInstanceSet', body);
      assert.ok(r.status === 201 || r.status === 200, `${p.rel}: ${JSON.stringify(r.payload)}`);
      assert.equal(r.payload.properties.state, 'Inactive');
      accepted++;
    }
    assert.ok(accepted >= 3, `accepted ${accepted}`);
  });
});

describe('method statuses and conflicts', () => {
  let t: TestPlane;
  before(async () => {
    t = makePlane();
    await t.plane.load();
    assert.equal((await t.call('GraphTopologySet', readSample(EVR))).status, 201);
  });
  after(() => t.cleanup());

  test('unknown method → 501', async () => {
    const r = await t.call('GraphTopologyFrobnicate', {});
    assert.equal(r.status, 501);
  });

  test('unsupported or missing @apiVersion → 400 InvalidVersion', async () => {
    for (const v of ['3.0', '1.5', '', 2]) {
      const r = await t.plane.invoke('GraphTopologyList', { '@apiVersion': v });
      assert.equal(r.status, 400);
      assert.equal((r.payload as any).error.code, 'InvalidVersion');
    }
    const r = await t.plane.invoke('GraphTopologyList', {});
    assert.equal(r.status, 400);
  });

  test('non-object payloads → 400 with an OData body', async () => {
    for (const p of [null, 'x', 42, [1, 2]]) {
      const r = await t.plane.invoke('GraphTopologyGet', p);
      assert.equal(r.status, 400, JSON.stringify(p));
      assert.equal(typeof (r.payload as any).error.code, 'string');
    }
  });

  test('Get of unknown names → 404; Delete of unknown names → 204 with null payload', async () => {
    assert.equal((await t.call('GraphTopologyGet', { name: 'nope' })).status, 404);
    assert.equal((await t.call('GraphInstanceGet', { name: 'nope' })).status, 404);
    const d1 = await t.call('GraphTopologyDelete', { name: 'nope' });
    assert.deepEqual(d1, { status: 204, payload: null });
    const d2 = await t.call('GraphInstanceDelete', { name: 'nope' });
    assert.deepEqual(d2, { status: 204, payload: null });
    assert.equal((await t.call('GraphInstanceActivate', { name: 'nope' })).status, 404);
    assert.equal((await t.call('GraphInstanceDeactivate', { name: 'nope' })).status, 404);
  });

  test('invalid names → 400', async () => {
    for (const name of ['-a', 'a-', 'a b', 'x'.repeat(33), 'ä', '']) {
      const r = await t.call('GraphTopologyGet', { name });
      assert.equal(r.status, 400, name);
    }
  });

  test('instance naming an unknown topology → 400 TopologyNotFound', async () => {
    const r = await t.call('GraphInstanceSet', instancePayload('i0', 'NoSuchTopology'));
    assert.equal(r.status, 400);
    assert.equal(r.payload.error.details[0].code, 'TopologyNotFound');
  });

  test('instance lifecycle: set, activate, 409s while active, deactivate, delete', async () => {
    const set = await t.call('GraphInstanceSet', instancePayload('g1', 'EVRToFilesOnMotionDetection'));
    assert.equal(set.status, 201);
    assert.equal(set.payload.properties.state, 'Inactive');
    assert.equal((await t.call('GraphInstanceSet', instancePayload('g1', 'EVRToFilesOnMotionDetection'))).status, 200);
    const act = await t.call('GraphInstanceActivate', { name: 'g1' });
    assert.deepEqual(act, { status: 200, payload: null });
    assert.equal((await t.call('GraphInstanceGet', { name: 'g1' })).payload.properties.state, 'Active');
    // idempotent activate
    assert.equal((await t.call('GraphInstanceActivate', { name: 'g1' })).status, 200);
    // delete while active
    const del = await t.call('GraphInstanceDelete', { name: 'g1' });
    assert.equal(del.status, 409);
    assert.equal(del.payload.error.details[0].code, 'OperationNotAllowedInState');
    // change parameters while active
    const upd = await t.call('GraphInstanceSet', instancePayload('g1', 'EVRToFilesOnMotionDetection', { rtspUrl: 'rtsp://other/x' }));
    assert.equal(upd.status, 409);
    // description only is fine while active
    const descr = instancePayload('g1', 'EVRToFilesOnMotionDetection') as any;
    descr.properties.description = 'new words';
    const ok = await t.call('GraphInstanceSet', descr);
    assert.equal(ok.status, 200, JSON.stringify(ok.payload));
    assert.equal(ok.payload.properties.description, 'new words');
    assert.equal(ok.payload.properties.state, 'Active');
    // topology update / delete while referenced
    const tUpd = await t.call('GraphTopologySet', readSample(EVR));
    assert.equal(tUpd.status, 409);
    assert.equal(tUpd.payload.error.details[0].code, 'OperationNotAllowedInState');
    const tDel = await t.call('GraphTopologyDelete', { name: 'EVRToFilesOnMotionDetection' });
    assert.equal(tDel.status, 409);
    assert.equal(tDel.payload.error.details[0].code, 'GraphTopologyInUse');
    // deactivate (twice: idempotent), then delete
    assert.deepEqual(await t.call('GraphInstanceDeactivate', { name: 'g1' }), { status: 200, payload: null });
    assert.deepEqual(await t.call('GraphInstanceDeactivate', { name: 'g1' }), { status: 200, payload: null });
    // topology update allowed now that every user is Inactive
    assert.equal((await t.call('GraphTopologySet', readSample(EVR))).status, 200);
    // still in use (Inactive instance references it)
    assert.equal((await t.call('GraphTopologyDelete', { name: 'EVRToFilesOnMotionDetection' })).payload.error.details[0].code, 'GraphTopologyInUse');
    assert.deepEqual(await t.call('GraphInstanceDelete', { name: 'g1' }), { status: 200, payload: null });
    assert.deepEqual(await t.call('GraphTopologyDelete', { name: 'EVRToFilesOnMotionDetection' }), { status: 200, payload: null });
    assert.deepEqual(await t.call('GraphTopologySet', readSample(EVR)).then((r) => r.status), 201);
  });

  test('SecretString values and credentials are never echoed', async () => {
    const topo = readSample(EVR);
    topo.name = 'SecretTopo';
    topo.properties.parameters.find((p: any) => p.name === 'rtspPassword').type = 'SecretString';
    assert.equal((await t.call('GraphTopologySet', topo)).status, 201);
    const set = await t.call('GraphInstanceSet', instancePayload('sec1', 'SecretTopo', { rtspUrl: 'rtsp://cam/x', rtspPassword: 'hunter2-planted' }));
    assert.equal(set.status, 201, JSON.stringify(set.payload));
    for (const r of [set, await t.call('GraphInstanceGet', { name: 'sec1' }), await t.call('GraphInstanceList', {})]) {
      assert.doesNotMatch(JSON.stringify(r.payload), /hunter2-planted/);
    }
    // while the store keeps it (owner-only file) so the instance can run
    const files = readdirSync(path.join(t.dir, 'lva-edge', 'instances'));
    const file = path.join(t.dir, 'lva-edge', 'instances', files.find((f) => f.startsWith('sec1'))!);
    assert.match(readFileSync(file, 'utf8'), /hunter2-planted/);
    assert.equal(statSync(file).mode & 0o077, 0, 'store files are readable by the owner only');
  });
});

describe('concurrency and activation through the runtime', () => {
  test('concurrent Activate calls build one runtime; Deactivate during Activating is 409', async () => {
    let builds = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const t = makePlane(() => {
      builds++;
      return { start: () => gate, stop: async () => {} };
    });
    try {
      await t.plane.load();
      await t.call('GraphTopologySet', readSample(EVR));
      await t.call('GraphInstanceSet', instancePayload('c1', 'EVRToFilesOnMotionDetection'));
      const a = [t.call('GraphInstanceActivate', { name: 'c1' }), t.call('GraphInstanceActivate', { name: 'c1' })];
      await new Promise((r) => setImmediate(r));
      assert.equal((await t.call('GraphInstanceGet', { name: 'c1' })).payload.properties.state, 'Activating');
      const d = await t.call('GraphInstanceDeactivate', { name: 'c1' });
      assert.equal(d.status, 409);
      const del = await t.call('GraphInstanceDelete', { name: 'c1' });
      assert.equal(del.status, 409);
      release();
      const results = await Promise.all(a);
      assert.deepEqual(results.map((r) => r.status), [200, 200]);
      assert.equal(builds, 1);
    } finally {
      t.cleanup();
    }
  });

  test('an activation failure answers the runtime error and leaves the instance Inactive', async () => {
    const { moduleValidationError } = await import('../../src/api/errors.js');
    const t = makePlane(() => { throw moduleValidationError("Node 'x' is not supported", '$.Properties.Sinks[0]'); });
    try {
      await t.plane.load();
      await t.call('GraphTopologySet', readSample(EVR));
      await t.call('GraphInstanceSet', instancePayload('f1', 'EVRToFilesOnMotionDetection'));
      const r = await t.call('GraphInstanceActivate', { name: 'f1' });
      assert.equal(r.status, 400);
      assert.equal(r.payload.error.details[0].code, 'ModuleValidationError');
      assert.equal((await t.call('GraphInstanceGet', { name: 'f1' })).payload.properties.state, 'Inactive');
    } finally {
      t.cleanup();
    }
  });

  test('persistence: state survives a reopen and Active instances are restored', async () => {
    const t = makePlane();
    try {
      await t.plane.load();
      await t.call('GraphTopologySet', readSample(EVR));
      await t.call('GraphInstanceSet', instancePayload('p1', 'EVRToFilesOnMotionDetection'));
      await t.call('GraphInstanceSet', instancePayload('p2', 'EVRToFilesOnMotionDetection'));
      await t.call('GraphInstanceActivate', { name: 'p1' });
      const { plane, restored } = await t.reopen();
      assert.deepEqual(restored, ['p1']);
      assert.equal((await t.call('GraphInstanceGet', { name: 'p1' })).payload.properties.state, 'Inactive');
      await plane.restoreActive(restored);
      assert.equal((await t.call('GraphInstanceGet', { name: 'p1' })).payload.properties.state, 'Active');
      assert.equal((await t.call('GraphInstanceGet', { name: 'p2' })).payload.properties.state, 'Inactive');
      assert.equal((await t.call('GraphTopologyList', {})).payload.value.length, 1);
    } finally {
      t.cleanup();
    }
  });
});

describe('lists and quotas', () => {
  test(`at most ${MAX_TOPOLOGIES} topologies and ${MAX_INSTANCES} instances; lists page under 128 KB with continuation tokens`, async () => {
    const t = makePlane();
    try {
      await t.plane.load();
      const base = readSample(EVR);
      for (let i = 0; i < MAX_TOPOLOGIES; i++) {
        const r = await t.call('GraphTopologySet', { ...base, name: `topo-${String(i).padStart(2, '0')}` });
        assert.equal(r.status, 201);
      }
      const over = await t.call('GraphTopologySet', { ...base, name: 'one-too-many' });
      assert.equal(over.status, 409);
      assert.equal(over.payload.error.details[0].code, 'QuotaExceeded');
      for (let i = 0; i < MAX_INSTANCES; i++) {
        const r = await t.call('GraphInstanceSet', instancePayload(`inst-${String(i).padStart(4, '0')}`, `topo-${String(i % MAX_TOPOLOGIES).padStart(2, '0')}`));
        assert.equal(r.status, 201);
      }
      const overI = await t.call('GraphInstanceSet', instancePayload('inst-x', 'topo-00'));
      assert.equal(overI.status, 409);
      for (const method of ['GraphTopologyList', 'GraphInstanceList']) {
        const names: string[] = [];
        let token: string | undefined;
        let pages = 0;
        do {
          const r = await t.call(method, token ? { '@continuationToken': token } : { '@query': '$orderby=name asc' });
          assert.equal(r.status, 200);
          assert.ok(Buffer.byteLength(JSON.stringify(r.payload)) < 128 * 1024, 'a page fits a direct-method reply');
          names.push(...r.payload.value.map((x: any) => x.name));
          token = r.payload['@continuationToken'];
          pages++;
        } while (token && pages < 100);
        const expected = method === 'GraphTopologyList' ? MAX_TOPOLOGIES : MAX_INSTANCES;
        assert.equal(names.length, expected);
        assert.deepEqual(names, [...names].sort());
        assert.equal(new Set(names).size, expected);
      }
      const bad = await t.call('GraphTopologyList', { '@query': "$filter=name eq 'x'" });
      assert.equal(bad.status, 400);
      const badToken = await t.call('GraphTopologyList', { '@continuationToken': '%%%' });
      assert.equal(badToken.status, 400);
    } finally {
      t.cleanup();
    }
  });
});
