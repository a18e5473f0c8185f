// Structured fuzzing of direct-method payloads and module-twin documents (fast-check), shared by the
// quick unit run (test/unit/fuzz-methods.test.ts) and the long chaos run (test/chaos/fuzz.test.ts).
//
// Payloads start from LVA's own sample topologies and instance payloads and are mutated (values replaced
// by wrong types, huge strings, unicode, deep nesting; keys deleted; prototype-pollution keys added), or
// are arbitrary JSON. Checkers assert the contract: every call answers with a status, every status ≥ 400
// carries an LVA OData error body, nothing throws, nothing is polluted.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { METHOD_NAMES } from '../../src/api/methods.js';
import { allInstancePayloads, allTopologyFiles } from './samples.js';

type Json = unknown;

const topologies = allTopologyFiles().map((f) => f.json);
const instances = allInstancePayloads().map((f) => f.json);

/**
 * Paths (lists of keys/indices) into a JSON value, the root included, down to depth 64: a mutation
 * deep inside an already deeply nested value adds nothing, and the generator must not overflow the stack.
 */
function paths(root: Json): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [];
  const stack: Array<[Json, Array<string | number>]> = [[root, []]];
  while (stack.length > 0) {
    const [v, prefix] = stack.pop()!;
    out.push(prefix);
    if (prefix.length >= 64) continue;
    if (Array.isArray(v)) v.forEach((x, i) => stack.push([x, [...prefix, i]]));
    else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) stack.push([x, [...prefix, k]]);
  }
  return out;
}

function deepNest(levels: number, leaf: Json): Json {
  let v = leaf;
  for (let i = 0; i < levels; i++) v = i % 2 === 0 ? [v] : { n: v };
  return v;
}

/** Values that break assumptions: wrong types, extremes, unicode, control characters, tokens, URLs. */
export const weirdValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(null, true, false, 0, -1, 1e308, -1e-308, '', ' ', '\u0000', '\uFEFF', '\uD800', '💥', '..', '/', '../../etc/passwd',
    '${', '${rtspUrl}', '${System.DateTime}', '${System.Nope}', '${}', '$${x}', 'PT', 'P1Y', 'PT-1S', 'PT99999999999S', 'NaN', 'true', '1e309',
    'rtsp://', 'rtsp://u:p@h:99999/x', 'file:/etc/passwd', 'concat:a|b', '-i', 'tcp://h', '#Microsoft.Media.MediaGraphRtspSource',
    '#Microsoft.Media.Nope', '__proto__', 'constructor', [], {}, [[]], [null]),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.integer(),
  fc.double(),
  fc.jsonValue({ maxDepth: 3 }),
  fc.integer({ min: 10_000, max: 300_000 }).map((n) => 'x'.repeat(n)),
  fc.integer({ min: 50, max: 3000 }).map((n) => deepNest(n, 'bottom')),
  fc.constant(null).map(() => JSON.parse('{"__proto__": {"polluted": "yes"}, "constructor": {"prototype": {"polluted": "yes"}}}')),
);

type Mutation = { pick: number; op: 'set' | 'delete' | 'proto' | 'wrap' | 'rename' | 'dup'; value: Json };

const mutation: fc.Arbitrary<Mutation> = fc.record({
  pick: fc.nat(),
  op: fc.constantFrom('set', 'set', 'set', 'delete', 'proto', 'wrap', 'rename', 'dup'),
  value: weirdValue,
});

function applyMutation(root: Json, m: Mutation): Json {
  const all = paths(root);
  const p = all[m.pick % all.length]!;
  if (p.length === 0) {
    return m.op === 'wrap' ? [root] : m.op === 'set' ? m.value : root;
  }
  let parent: any = root;
  for (const k of p.slice(0, -1)) parent = parent[k];
  const key = p[p.length - 1]!;
  switch (m.op) {
    case 'set':
      parent[key] = m.value;
      break;
    case 'delete':
      if (Array.isArray(parent)) parent.splice(Number(key), 1);
      else delete parent[key];
      break;
    case 'proto':
      // An own "__proto__" key, as JSON.parse creates it (an assignment would set the prototype instead).
      if (!Array.isArray(parent)) Object.defineProperty(parent, '__proto__', { value: { polluted: 'yes', ...(typeof m.value === 'object' ? {} : { v: m.value }) }, enumerable: true, configurable: true, writable: true });
      break;
    case 'wrap':
      parent[key] = [parent[key]];
      break;
    case 'rename':
      if (!Array.isArray(parent)) {
        const v = parent[key];
        delete parent[key];
        parent[typeof m.value === 'string' && m.value.length > 0 && m.value.length < 100 ? m.value : String(key).toUpperCase()] = v;
      }
      break;
    case 'dup':
      // The same value twice (not a clone: cloning a 3000-level nest would overflow the stack here).
      if (Array.isArray(parent)) parent.push(parent[key as number]);
      else parent[`${String(key)}2`] = parent[key];
      break;
  }
  return root;
}

/** A method name: mostly real ones, sometimes not. */
export const methodName = fc.oneof(
  { weight: 9, arbitrary: fc.constantFrom(...METHOD_NAMES) },
  { weight: 1, arbitrary: fc.constantFrom('graphtopologyset', 'GraphTopologySet ', '', '__proto__', 'constructor', 'toString', 'GraphInstanceSet/..', '💥') },
);

/** A direct-method payload: a mutated sample topology or instance, a plausible name-only body, or arbitrary JSON. */
export const methodPayload: fc.Arbitrary<Json> = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.nat(), fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([i, ms]) => ms.reduce(applyMutation, structuredClone(topologies[i % topologies.length]) as Json)) },
  { weight: 2, arbitrary: fc.tuple(fc.nat(), fc.array(mutation, { minLength: 1, maxLength: 3 })).map(([i, ms]) => ms.reduce(applyMutation, structuredClone(instances[i % instances.length]) as Json)) },
  { weight: 2, arbitrary: fc.record({ '@apiVersion': fc.oneof(fc.constantFrom('2.0', '1.0', '3.0', ''), weirdValue), name: weirdValue }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: weirdValue },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 4, withNullPrototype: true, withBoxedValues: true }) },
);

/** A module-twin desired document: known keys with wrong and right values, unknown keys, junk. */
export function twinDocument(secret: string): fc.Arbitrary<Record<string, unknown>> {
  const known = fc.constantFrom('applicationDataDirectory', 'allowUnsecuredEndpoints', 'diagnosticsEventsOutputName', 'operationalEventsOutputName',
    'logLevel', 'logCategories', 'azureMediaServicesArmId', 'aadTenantId', 'aadServicePrincipalAppId', 'aadEndpoint', 'aadResourceId', 'armEndpoint',
    'diagnosticsLevel', 'debugLogsDirectory', 'telemetryOptOut', 'endpointAliases', 'outputRootDirectory', 'assetStorageContainerName',
    'APPLICATIONDATADIRECTORY', 'LogLevel', '$version', '$metadata', '__proto__', 'constructor', 'a.b', 'with space');
  const secretKey = fc.constantFrom('aadServicePrincipalSecret', 'aadServicePrincipalPassword', 'aadServicePrincipalCertificate',
    'assetStorageConnectionString', 'assetStorageContainerSasUrl', 'mySecretThing', 'apiToken');
  const goodValue = fc.constantFrom<Json>('Verbose', 'Information', 'Warning', 'Error', 'None', 'Application,Events', 'true', 'false', true, false,
    '/var/lib/videoanalyzer', 'diagnostics', '/subscriptions/s/resourceGroups/r/providers/Microsoft.Media/mediaServices/a', { 'rtsp://a': 'rtsp://b' },
    { alias1: { from: 'rtsp://a', to: 'rtsp://b' } }, 5);
  return fc.dictionary(known, fc.oneof(goodValue, weirdValue), { maxKeys: 8 }).chain((doc) =>
    fc.dictionary(secretKey, fc.oneof(
      fc.constant(secret),
      fc.constant(`DefaultEndpointsProtocol=https;AccountName=a;AccountKey=${secret};`),
      fc.constant(`https://acct.blob.core.windows.net/c?sv=2020&sig=${secret}`),
      fc.constant(`-----BEGIN PRIVATE KEY-----\n${secret}\n-----END PRIVATE KEY-----`),
      weirdValue.map((v) => (typeof v === 'string' ? `${v}${secret}` : v)),
    ), { maxKeys: 3 }).map((secrets) => {
      // Build with defineProperty so "__proto__" stays an own key, as a JSON twin document would have it.
      const out: Record<string, unknown> = {};
      for (const [k, v] of [...Object.entries(doc), ...Object.entries(secrets)]) {
        Object.defineProperty(out, k, { value: v, enumerable: true, configurable: true, writable: true });
      }
      return out;
    }));
}

/** The contract of a method reply: a status, and for ≥ 400 an LVA OData error body. */
export function assertMethodReply(r: { status: unknown; payload?: unknown }, what: string): void {
  assert.equal(typeof r.status, 'number', `${what}: reply has a numeric status`);
  const status = r.status as number;
  assert.ok(Number.isInteger(status) && status >= 200 && status < 600, `${what}: status ${status}`);
  if (status >= 400) assertODataError(r.payload, what);
  else if (status === 204) assert.ok(r.payload === null || r.payload === undefined, `${what}: 204 has no payload`);
  // Delete, Activate and Deactivate answer 200 with a null payload (LVA); everything else with an object.
  else assert.ok(typeof r.payload === 'object' && (r.payload !== null || /(Delete|Activate|Deactivate)$/.test(what)), `${what}: success payload`);
  // The reply must survive serialisation (it goes back to IoT Hub / over HTTP as JSON).
  JSON.stringify(r);
}

export function assertODataError(payload: unknown, what: string): void {
  const e = (payload as { error?: any })?.error;
  assert.ok(e && typeof e === 'object', `${what}: error body ${JSON.stringify(payload)?.slice(0, 300)}`);
  assert.equal(typeof e.code, 'string', `${what}: error.code`);
  assert.ok(e.code.length > 0, `${what}: error.code non-empty`);
  assert.equal(typeof e.message, 'string', `${what}: error.message`);
  assert.ok(e.message.length > 0 && e.message.length < 5000, `${what}: error.message length ${e.message.length}`);
  if (e.details !== undefined) {
    assert.ok(Array.isArray(e.details), `${what}: error.details is an array`);
    for (const d of e.details) {
      assert.equal(typeof d.code, 'string', `${what}: detail code`);
      assert.equal(typeof d.message, 'string', `${what}: detail message`);
    }
  }
}

/** Nothing reached Object.prototype (a polluted prototype would change every object in the process). */
export function assertNotPolluted(): void {
  assert.equal(({} as any).polluted, undefined, 'Object.prototype was polluted');
  assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false);
}

/** A request body for the local API: the payload's JSON, or raw junk when it has none (or sometimes anyway). */
export const httpBody: fc.Arbitrary<string> = fc.oneof(
  { weight: 8, arbitrary: methodPayload.map((p) => {
    try {
      return JSON.stringify(p) ?? 'undefined';
    } catch {
      return '{"unserialisable": '; // BigInt and friends: send broken JSON instead
    }
  }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', 'null', '[]', '"str"', '{', '{"@apiVersion":"2.0",', '\uFEFF{}', '{"a":1}}', '1e999', '{"__proto__":{"polluted":1}}') },
);

export interface HttpFuzzOutcome {
  calls: number;
  /** Calls whose reply broke the contract, with the reason (empty = all good). */
  violations: string[];
  statuses: Map<number, number>;
}

/**
 * Sends `runs` fuzzed method calls to a running daemon's local API (`request` = DaemonHandle.request) and
 * checks every reply: the `{status, payload}` envelope with HTTP status = status and an LVA OData error
 * for ≥ 400; a 204 (Delete of an unknown name) has no body, as HTTP requires; a call without a method
 * name is no method route: 404 with an OData error.
 */
export async function fuzzOverHttp(
  request: (method: string, urlPath: string, opts: { body: string; headers: Record<string, string> }) => Promise<{ status: number; text: string }>,
  runs: number,
  seed: number,
): Promise<HttpFuzzOutcome> {
  const outcome: HttpFuzzOutcome = { calls: 0, violations: [], statuses: new Map() };
  const samples = fc.sample(fc.tuple(methodName, httpBody), { numRuns: runs, seed });
  for (const [method, body] of samples) {
    outcome.calls++;
    const what = `${JSON.stringify(method)} ${body.slice(0, 120)}`;
    try {
      const r = await request('POST', `/v1/methods/${encodeURIComponent(method)}`, { body, headers: { 'content-type': 'application/json' } });
      outcome.statuses.set(r.status, (outcome.statuses.get(r.status) ?? 0) + 1);
      if (r.status === 204) {
        assert.equal(r.text, '', `${what}: 204 without a body`);
        continue;
      }
      const reply = JSON.parse(r.text);
      if (method === '') {
        assert.equal(r.status, 404, `${what}: no method name`);
        assertODataError(reply, what);
        continue;
      }
      assert.ok(reply && typeof reply === 'object' && 'status' in reply && 'payload' in reply, `${what}: envelope ${r.text.slice(0, 200)}`);
      assert.equal(r.status, reply.status, `${what}: HTTP status equals reply status`);
      assertMethodReply(reply, method);
    } catch (err) {
      outcome.violations.push(`${what}: ${(err as Error).message.slice(0, 300)}`);
    }
  }
  return outcome;
}
