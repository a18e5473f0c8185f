// Chaos: bad input at volume (issue 8). 10,000 fuzzed direct-method payloads through the real
// ControlPlane, 10,000 fuzzed module-twin documents through the twin validator and settings path, and
// 2,000 fuzzed calls (payloads and raw junk bodies) through a real daemon's local API. Checked: every
// call answered with a status, ≥ 400 with an LVA OData error body, nothing throws, Object.prototype is
// never polluted, secrets never echo back from the twin path, and the daemon is still up afterwards.
// (The quick 500-case version runs in npm test: test/unit/fuzz-methods.test.ts.)
//
// Env: LVA_CHAOS_FUZZ_RUNS (default 10000), LVA_CHAOS_FUZZ_HTTP_RUNS (default 2000), LVA_FUZZ_SEED.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { makePlane } from '../helpers/control-plane.js';
import { startDaemon, stopAllDaemons } from '../helpers/daemon.js';
import { assertNoLeftoverFfmpeg } from '../helpers/processes.js';
import { assertMethodReply, assertNotPolluted, assertODataError, fuzzOverHttp, methodName, methodPayload, twinDocument } from '../helpers/method-fuzz.js';
import { checkDesired, describeError, reportableSettings } from '../../src/hub/twin-settings.js';
import { resolveSettings } from '../../src/config/settings.js';
import { recordChaosResult } from './lib.js';

const RUNS = Number(process.env.LVA_CHAOS_FUZZ_RUNS ?? 10_000);
const HTTP_RUNS = Number(process.env.LVA_CHAOS_FUZZ_HTTP_RUNS ?? 2_000);
const SEED = Number(process.env.LVA_FUZZ_SEED ?? Date.now() % 1_000_000);

describe('bad input at volume', () => {
  after(async () => {
    await stopAllDaemons();
    await assertNoLeftoverFfmpeg();
  });

  test(`${RUNS} fuzzed direct-method payloads through the ControlPlane`, async () => {
    const t = makePlane();
    await t.plane.load();
    const violations: string[] = [];
    const started = Date.now();
    try {
      const samples = fc.sample(fc.tuple(methodName, methodPayload), { numRuns: RUNS, seed: SEED });
      for (const [method, payload] of samples) {
        try {
          assertMethodReply(await t.plane.invoke(method, payload), method);
          assertNotPolluted();
        } catch (err) {
          violations.push(`${method}: ${(err as Error).message.slice(0, 300)}`);
        }
      }
      const alive = await t.call('GraphTopologyList', {});
      if (alive.status !== 200) violations.push(`List after the storm answered ${alive.status}`);
    } finally {
      t.cleanup();
    }
    recordChaosResult({
      fault: 'input: fuzzed direct-method payloads (ControlPlane)', trials: RUNS, recovered: RUNS - violations.length,
      dataLost: 'n/a', worstRecoveryMs: null, detail: `seed ${SEED}; ${Math.round((Date.now() - started) / 1000)} s; every call answered, errors OData`,
    });
    assert.deepEqual(violations.slice(0, 10), [], `seed ${SEED}`);
  });

  test(`${RUNS} fuzzed module-twin documents through the twin validator and settings`, () => {
    const secret = 'TWIN-SECRET-chaos-41b7c0';
    const violations: string[] = [];
    const samples = fc.sample(twinDocument(secret), { numRuns: RUNS, seed: SEED });
    for (const doc of samples) {
      try {
        const check = checkDesired(doc);
        if (check.ok) {
          resolveSettings(check.settings);
          const text = JSON.stringify(reportableSettings(check.settings));
          assert.ok(!text.includes(secret), 'secret in reported properties');
        } else {
          assertODataError(check.error.toODataBody(), 'twin');
          assert.ok(!JSON.stringify([check.error.toODataBody(), describeError(check.error)]).includes(secret), 'secret in twin error');
        }
        assertNotPolluted();
      } catch (err) {
        violations.push((err as Error).message.slice(0, 300));
      }
    }
    recordChaosResult({
      fault: 'input: fuzzed module-twin documents', trials: RUNS, recovered: RUNS - violations.length,
      dataLost: 'n/a', worstRecoveryMs: null, detail: `seed ${SEED}; accepted or rejected with an LVA error, no secret echoed`,
    });
    assert.deepEqual(violations.slice(0, 10), [], `seed ${SEED}`);
  });

  test(`${HTTP_RUNS} fuzzed calls through a real daemon's local API; the daemon survives`, async () => {
    const d = await startDaemon();
    const outcome = await fuzzOverHttp(d.request, HTTP_RUNS, SEED);
    const health = await d.request('GET', '/healthz');
    if (health.status !== 200) outcome.violations.push(`healthz after the storm: ${health.status}`);
    // Whatever got activated: stop it, then a clean shutdown.
    const list = await d.call('GraphInstanceList', { '@apiVersion': '2.0' });
    for (const i of list.payload?.value ?? []) await d.call('GraphInstanceDeactivate', { '@apiVersion': '2.0', name: i.name });
    const code = await d.stop();
    if (code !== 0) outcome.violations.push(`daemon exit code ${code}`);
    recordChaosResult({
      fault: 'input: fuzzed local-API calls (real daemon)', trials: HTTP_RUNS, recovered: HTTP_RUNS - outcome.violations.length,
      dataLost: 'n/a', worstRecoveryMs: null,
      detail: `seed ${SEED}; statuses ${JSON.stringify(Object.fromEntries(outcome.statuses))}; daemon up after, clean exit`,
    });
    assert.deepEqual(outcome.violations.slice(0, 10), [], `seed ${SEED}`);
  });
});
