// Bad input, quick run (the long one is test/chaos/fuzz.test.ts): fuzzed direct-method payloads through
// the real ControlPlane (real store in a temp dir, instant runtime) and fuzzed module-twin documents
// through the twin validator and the settings path. Every call answers; ≥ 400 carries an LVA OData
// error; nothing throws, nothing pollutes Object.prototype, no secret comes back out.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { makePlane } from '../helpers/control-plane.js';
import { assertMethodReply, assertNotPolluted, assertODataError, methodName, methodPayload, twinDocument } from '../helpers/method-fuzz.js';
import { checkDesired, describeError, reportableSettings } from '../../src/hub/twin-settings.js';
import { resolveSettings } from '../../src/config/settings.js';

const RUNS = Number(process.env.LVA_FUZZ_RUNS ?? 500);

describe('fuzzed direct methods through the ControlPlane', () => {
  const t = makePlane();
  after(() => t.cleanup());

  test(`${RUNS} payloads: every call answered, errors are LVA OData bodies`, async () => {
    await t.plane.load();
    const statuses = new Map<number, number>();
    await fc.assert(fc.asyncProperty(methodName, methodPayload, async (method, payload) => {
      let r: { status: unknown; payload?: unknown };
      try {
        r = await t.plane.invoke(method, payload);
      } catch (err) {
        assert.fail(`${method} threw: ${(err as Error).stack}`);
      }
      assertMethodReply(r, method);
      statuses.set(r.status as number, (statuses.get(r.status as number) ?? 0) + 1);
      assertNotPolluted();
    }), { numRuns: RUNS, seed: Number(process.env.LVA_FUZZ_SEED ?? 0x5eed), includeErrorInReport: true });
    // Mutations of real samples sometimes stay valid: both outcomes must have been exercised.
    assert.ok([...statuses.keys()].some((s) => s < 300), `some calls succeeded: ${JSON.stringify([...statuses])}`);
    assert.ok([...statuses.keys()].some((s) => s >= 400), 'some calls failed');
    // Still serving: a plain call works after the storm.
    const list = await t.call('GraphTopologyList', {});
    assert.equal(list.status, 200);
  });
});

describe('fuzzed module twin documents through the twin validator and settings', () => {
  test(`${RUNS} documents: accepted or rejected with an LVA error, secrets never echoed`, () => {
    const secret = 'TWIN-SECRET-9f8e7d6c5b4a';
    let accepted = 0;
    let rejected = 0;
    fc.assert(fc.property(twinDocument(secret), (doc) => {
      const check = checkDesired(doc);
      if (check.ok) {
        accepted++;
        const settings = resolveSettings(check.settings);
        assert.equal(typeof settings.applicationDataDirectory, 'string');
        const reported = reportableSettings(check.settings);
        const text = JSON.stringify(reported);
        assert.ok(!text.includes(secret), `secret in reported properties: ${text.slice(0, 300)}`);
        // IoT Hub's twin rules: no arrays, no '.', '$' or spaces in property names.
        const visit = (v: unknown): void => {
          assert.ok(!Array.isArray(v), 'no arrays in reported properties');
          if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) {
            assert.ok(!/[.$\s]/.test(k), `reported key ${JSON.stringify(k)}`);
            visit(x);
          }
        };
        visit(reported);
      } else {
        rejected++;
        assertODataError(check.error.toODataBody(), 'twin');
        const described = describeError(check.error);
        assert.equal(typeof described.message, 'string');
        const text = JSON.stringify(check.error.toODataBody()) + JSON.stringify(described);
        assert.ok(!text.includes(secret), `secret in twin error: ${text.slice(0, 400)}`);
      }
      assertNotPolluted();
    }), { numRuns: RUNS, seed: Number(process.env.LVA_FUZZ_SEED ?? 0x5eed), includeErrorInReport: true });
    assert.ok(accepted > 0 && rejected > 0, `both outcomes exercised (accepted ${accepted}, rejected ${rejected})`);
  });
});
