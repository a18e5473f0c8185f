import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { InstanceLifecycle, type GraphRuntime } from '../../src/runtime/instance.js';
import { LvaError } from '../../src/api/errors.js';
import type { InstanceState } from '../../src/graph/model.js';

/** A runtime whose start/stop complete only when the test says so. */
function gatedRuntime() {
  let releaseStart!: () => void;
  let failStart!: (e: Error) => void;
  let releaseStop!: () => void;
  const calls: string[] = [];
  const started = new Promise<void>((res, rej) => { releaseStart = res; failStart = rej; });
  const stopped = new Promise<void>((res) => { releaseStop = res; });
  const runtime: GraphRuntime = {
    start: async () => { calls.push('start'); await started; },
    stop: async () => { calls.push('stop'); await stopped; },
  };
  return { runtime, calls, releaseStart: () => releaseStart(), failStart: (e: Error) => failStart(e), releaseStop: () => releaseStop() };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('graph instance state machine (lva-spec §1.5)', () => {
  test('Inactive → Activating → Active → Deactivating → Inactive, with state events', async () => {
    const states: InstanceState[] = [];
    const lc = new InstanceLifecycle('g1', (s) => states.push(s));
    const g = gatedRuntime();
    const act = lc.activate(() => g.runtime);
    assert.equal(lc.state, 'Activating');
    await tick();
    g.releaseStart();
    await act;
    assert.equal(lc.state, 'Active');
    const deact = lc.deactivate();
    assert.equal(lc.state, 'Deactivating');
    await tick();
    g.releaseStop();
    await deact;
    assert.equal(lc.state, 'Inactive');
    assert.deepEqual(states, ['Activating', 'Active', 'Deactivating', 'Inactive']);
    assert.deepEqual(g.calls, ['start', 'stop']);
  });

  test('Activate on Active returns at once without building a new runtime', async () => {
    const lc = new InstanceLifecycle('g1');
    let builds = 0;
    await lc.activate(() => { builds++; return { start: async () => {}, stop: async () => {} }; });
    await lc.activate(() => { builds++; return { start: async () => {}, stop: async () => {} }; });
    assert.equal(builds, 1);
    assert.equal(lc.state, 'Active');
  });

  test('Activate while Activating joins the running activation', async () => {
    const lc = new InstanceLifecycle('g1');
    const g = gatedRuntime();
    let builds = 0;
    const a1 = lc.activate(() => { builds++; return g.runtime; });
    const a2 = lc.activate(() => { builds++; return g.runtime; });
    let a2done = false;
    void a2.then(() => { a2done = true; });
    await tick();
    assert.equal(a2done, false, 'the second Activate must wait for the first to finish');
    g.releaseStart();
    await Promise.all([a1, a2]);
    assert.equal(builds, 1);
    assert.equal(lc.state, 'Active');
  });

  test('Deactivate while Activating is 409 OperationNotAllowedInState', async () => {
    const lc = new InstanceLifecycle('g1');
    const g = gatedRuntime();
    const a = lc.activate(() => g.runtime);
    await assert.rejects(lc.deactivate(), (e: unknown) => e instanceof LvaError && e.status === 409 && e.detailCode === 'OperationNotAllowedInState');
    g.releaseStart();
    await a;
    assert.equal(lc.state, 'Active');
  });

  test('Activate while Deactivating is 409; Deactivate while Deactivating joins', async () => {
    const lc = new InstanceLifecycle('g1');
    const g = gatedRuntime();
    g.releaseStart();
    await lc.activate(() => g.runtime);
    const d1 = lc.deactivate();
    const d2 = lc.deactivate();
    await assert.rejects(lc.activate(() => g.runtime), (e: unknown) => e instanceof LvaError && e.status === 409);
    let d2done = false;
    void d2.then(() => { d2done = true; });
    await tick();
    assert.equal(d2done, false);
    g.releaseStop();
    await Promise.all([d1, d2]);
    assert.equal(lc.state, 'Inactive');
  });

  test('Deactivate on Inactive returns at once', async () => {
    const lc = new InstanceLifecycle('g1');
    await lc.deactivate();
    assert.equal(lc.state, 'Inactive');
  });

  test('a failed start ends Inactive, stops what started, and rethrows the error', async () => {
    const lc = new InstanceLifecycle('g1');
    const g = gatedRuntime();
    g.releaseStop();
    const a = lc.activate(() => g.runtime);
    g.failStart(new LvaError(400, 'InvalidResource', 'camera url unreachable'));
    await assert.rejects(a, (e: unknown) => e instanceof LvaError && e.status === 400);
    assert.equal(lc.state, 'Inactive');
    assert.deepEqual(g.calls, ['start', 'stop']);
    // and it can be activated again afterwards
    await lc.activate(() => ({ start: async () => {}, stop: async () => {} }));
    assert.equal(lc.state, 'Active');
  });

  test('a failing build (validation at Activate) leaves the instance Inactive', async () => {
    const lc = new InstanceLifecycle('g1');
    await assert.rejects(lc.activate(() => { throw new LvaError(400, 'InvalidResource', 'unsupported node'); }));
    assert.equal(lc.state, 'Inactive');
  });

  test('a failing stop still ends Inactive', async () => {
    const lc = new InstanceLifecycle('g1');
    await lc.activate(() => ({ start: async () => {}, stop: async () => { throw new Error('ffmpeg would not die'); } }));
    await assert.rejects(lc.deactivate());
    assert.equal(lc.state, 'Inactive');
  });
});
