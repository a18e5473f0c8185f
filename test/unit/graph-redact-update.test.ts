import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { LvaError } from '../../src/api/errors.js';
import type { InstanceResource, TopologyResource } from '../../src/graph/model.js';
import { readSample } from '../helpers/samples.js';
import {
  checkTopologyUpdate,
  redactInstance,
  redactTopology,
  validateInstanceSet,
  validateTopologySet,
} from '../../src/graph/validate.js';
import { assertMatchesSchema, normalizer } from '../../src/graph/schemas.js';

const ctx = { allowUnsecuredEndpoints: true };

function topologyWithSecrets(): TopologyResource {
  const payload = readSample('topologies/2.0/evr-httpExtension-assets.topology.json');
  payload.properties.parameters.push({ name: 'apiKey', type: 'SecretString', default: 'k-123' });
  const ext = payload.properties.processors.find((p: any) => p['@type'] === '#Microsoft.Media.MediaGraphHttpExtension');
  ext.endpoint.credentials = { '@type': '#Microsoft.Media.MediaGraphHttpHeaderCredentials', headerName: 'x-api-key', headerValue: '${apiKey}' };
  return validateTopologySet(payload, ctx);
}

describe('redaction (lva-spec §1.3)', () => {
  test('redactTopology drops password and headerValue from every credentials object and SecretString defaults', () => {
    const t = topologyWithSecrets();
    const r = redactTopology(t);
    const text = JSON.stringify(r);
    assert.ok(!text.includes('"password"'));
    assert.ok(!text.includes('"headerValue"'));
    assert.ok(!text.includes('k-123'));
    assert.equal(r.properties.sources[0]!.endpoint && (r.properties.sources[0]!.endpoint as any).credentials.username, '${rtspUserName}');
    assert.equal((r.properties.processors.find((p) => p.name === 'httpExtension')!.endpoint as any).credentials.headerName, 'x-api-key');
    // Deep copy: the stored resource keeps its secrets.
    assert.ok(JSON.stringify(t).includes('"password"'));
    assert.ok(JSON.stringify(t).includes('"headerValue"'));
    assert.equal(t.properties.parameters.find((p) => p.name === 'apiKey')!.default, 'k-123');
  });

  test('a redacted topology is still a valid GraphTopologySet payload', () => {
    const r = redactTopology(topologyWithSecrets());
    assert.doesNotThrow(() => validateTopologySet({ '@apiVersion': '2.0', ...r }, ctx));
  });

  test('redactInstance drops the values of SecretString parameters only', () => {
    const t = topologyWithSecrets();
    const i = validateInstanceSet({
      '@apiVersion': '2.0',
      name: 'cam-1',
      properties: { topologyName: t.name, parameters: [{ name: 'rtspUrl', value: 'rtsp://cam' }, { name: 'apiKey', value: 'secret!' }] },
    });
    const r = redactInstance(i, t);
    assert.deepEqual(r.properties.parameters, [{ name: 'rtspUrl', value: 'rtsp://cam' }, { name: 'apiKey' }]);
    assert.equal(i.properties.parameters[1]!.value, 'secret!');
    assert.deepEqual(redactInstance(i), i, 'without the topology nothing is known to be secret');
  });
});

describe('topology update rules (lva-spec §1.4)', () => {
  const base = (): any => readSample('topologies/2.0/motion-detection.topology.json');
  const oldT = validateTopologySet(base(), ctx);
  const inst = (params: Array<{ name: string; value?: string }>, state: InstanceResource['properties']['state'] = 'Inactive'): InstanceResource => ({
    name: 'cam-1',
    properties: { topologyName: oldT.name, parameters: params, state },
  });
  const withParams = (mutate: (params: any[]) => void): TopologyResource => {
    const p = base();
    mutate(p.properties.parameters);
    return validateTopologySet(p, ctx);
  };
  const expectConflict = (fn: () => void, detail: string) => {
    assert.throws(fn, (e: unknown) => e instanceof LvaError && e.status === 409 && e.code === 'Conflict' && e.detailCode === detail);
  };

  test('free update without instances', () => {
    assert.doesNotThrow(() => checkTopologyUpdate(oldT, withParams((ps) => ps.push({ name: 'extra', type: 'String' })), []));
  });

  test('instances of other topologies do not matter', () => {
    const other: InstanceResource = { name: 'x', properties: { topologyName: 'Other', parameters: [], state: 'Active' } };
    assert.doesNotThrow(() => checkTopologyUpdate(oldT, oldT, [other]));
  });

  test('an added parameter with a default is fine', () => {
    const newT = withParams((ps) => ps.push({ name: 'extra', type: 'String', default: 'x' }));
    assert.doesNotThrow(() => checkTopologyUpdate(oldT, newT, [inst([{ name: 'rtspUrl', value: 'rtsp://c' }])]));
  });

  test('an added parameter without a default → 409 GraphTopologyInUse', () => {
    const newT = withParams((ps) => ps.push({ name: 'extra', type: 'String' }));
    expectConflict(() => checkTopologyUpdate(oldT, newT, [inst([{ name: 'rtspUrl', value: 'rtsp://c' }])]), 'GraphTopologyInUse');
  });

  test('a removed parameter still given a value by an instance → 409 GraphTopologyInUse', () => {
    const before = withParams((ps) => ps.push({ name: 'legacy', type: 'String', default: 'x' }));
    const after = oldT;
    expectConflict(() => checkTopologyUpdate(before, after, [inst([{ name: 'rtspUrl', value: 'rtsp://c' }, { name: 'legacy', value: 'y' }])]), 'GraphTopologyInUse');
    assert.doesNotThrow(() => checkTopologyUpdate(before, after, [inst([{ name: 'rtspUrl', value: 'rtsp://c' }])]));
  });

  test('any referencing instance not Inactive → 409 OperationNotAllowedInState', () => {
    expectConflict(() => checkTopologyUpdate(oldT, oldT, [inst([{ name: 'rtspUrl', value: 'rtsp://c' }], 'Active')]), 'OperationNotAllowedInState');
  });
});

describe('normalisation details', () => {
  test('__proto__ keys never reach a prototype and are rejected as unknown properties', () => {
    const payload = JSON.parse('{"@apiVersion":"2.0","name":"T","properties":{"__proto__":{"polluted":true}}}');
    assert.throws(() => validateTopologySet(payload, ctx), (e: unknown) => e instanceof LvaError && e.detailCode === 'PropertyNotAllowed' && e.details[0]!.target === '$.Properties.__proto__');
    assert.equal(({} as any).polluted, undefined);
  });

  test('null properties count as absent; bare numbers and booleans become strings', () => {
    const payload = readSample('topologies/2.0/httpExtension.topology.json');
    payload.properties.description = null;
    const ext = payload.properties.processors[0];
    ext.samplingOptions = { skipSamplesWithoutAnnotation: false, maximumSamplesPerSecond: 2.5 };
    const t = validateTopologySet(payload, ctx);
    assert.equal('description' in t.properties, false);
    assert.deepEqual(t.properties.processors[0]!.samplingOptions, { skipSamplesWithoutAnnotation: 'false', maximumSamplesPerSecond: '2.5' });
  });

  test('the twin and inference schemas compile and accept the documented forms', () => {
    const twin = normalizer.normalize({ AllowUnsecuredEndpoints: 'true', TelemetryOptOut: false, operationalMetricsOutputName: 'x', logLevel: 'info' }, 'twin.json') as Record<string, unknown>;
    assert.equal(twin.allowUnsecuredEndpoints, 'true');
    assert.equal(twin.logLevel, 'Info');
    assert.equal(twin.operationalMetricsOutputName, 'x');
    assert.doesNotThrow(() => assertMatchesSchema(twin, 'twin.json'));
    assert.throws(() => assertMatchesSchema({ logLevel: 'Loud' }, 'twin.json'), LvaError);

    const body = { timestamp: 143039375044290, inferences: [{ type: 'motion', motion: { box: { l: 0.48954, t: 0.140741, w: 0.075, h: 0.058824 } } }] };
    assert.doesNotThrow(() => assertMatchesSchema(body, 'inference.json'));
    assert.throws(() => assertMatchesSchema({ inferences: [{ type: 'entity', motion: {} }] }, 'inference.json'), LvaError);
    assert.throws(() => assertMatchesSchema({ inferences: [] }, 'inference.json'), LvaError);
  });
});
