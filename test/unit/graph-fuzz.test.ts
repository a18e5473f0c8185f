import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LvaError } from '../../src/api/errors.js';
import { allInstancePayloads, allTopologyFiles } from '../helpers/samples.js';
import { resolveInstance, validateInstanceSet, validateTopologySet } from '../../src/graph/validate.js';
import { prng } from '../helpers/prng.js';


type Json = unknown;

function fuzzer(seed: number) {
  const rnd = prng(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

  const randomString = (): string => {
    const alphabet = ['a', 'Z', '0', '-', '$', '{', '}', '/', '.', ':', ' ', '\u0000', 'é', '${', '${rtspUrl}', '${System.DateTime}', 'PT', 'S', 'rtsp://', 'tcp://'];
    return Array.from({ length: int(12) }, () => pick(alphabet)).join('');
  };
  const deep = (levels: number): Json => {
    let v: Json = 'bottom';
    for (let i = 0; i < levels; i++) v = rnd() < 0.5 ? [v] : { nested: v };
    return v;
  };
  const randomValue = (): Json =>
    pick<() => Json>([
      () => null,
      () => true,
      () => int(1e6) - 5e5,
      () => rnd() * 1e300,
      () => randomString(),
      () => [],
      () => ({}),
      () => [randomString(), int(10)],
      () => ({ [randomString()]: randomString() }),
      () => 'x'.repeat(100_000 + int(100_000)),
      () => deep(200 + int(2000)),
      () => JSON.parse('{"__proto__": {"polluted": true}}'),
      () => ({ constructor: { prototype: { polluted: true } } }),
    ])();

  /** Containers (objects/arrays) inside v, down to a depth where the samples end (skips the deep-nesting values). */
  const containers = (root: Json): Array<Record<string, Json> | Json[]> => {
    const out: Array<Record<string, Json> | Json[]> = [];
    const stack: Array<[Json, number]> = [[root, 0]];
    while (stack.length > 0) {
      const [v, depth] = stack.pop()!;
      if (!v || typeof v !== 'object' || depth > 12) continue;
      out.push(v as Record<string, Json>);
      for (const x of Object.values(v)) stack.push([x, depth + 1]);
    }
    return out;
  };

  const mutate = (payload: Json): Json => {
    const all = containers(payload);
    if (all.length === 0) return randomValue();
    const target = pick(all);
    const keys = Array.isArray(target) ? target.map((_, i) => String(i)) : Object.keys(target);
    const t = target as Record<string, Json>;
    const key = keys.length > 0 ? pick(keys) : '0';
    switch (int(10)) {
      case 0: // delete
        if (Array.isArray(target)) target.splice(Number(key), 1);
        else delete t[key];
        break;
      case 1: // change type
      case 2:
        t[key] = randomValue();
        break;
      case 3: {
        // swap with another value somewhere
        const other = pick(all) as Record<string, Json>;
        const otherKeys = Object.keys(other);
        if (otherKeys.length > 0) {
          const k2 = pick(otherKeys);
          [t[key], other[k2]] = [other[k2], t[key]];
        }
        break;
      }
      case 4: // random string
        t[key] = randomString();
        break;
      case 5: // key case / spelling
        if (!Array.isArray(target) && keys.length > 0) {
          const v = t[key];
          delete t[key];
          t[rnd() < 0.5 ? key.toUpperCase() : `${key}x`] = v;
        }
        break;
      case 6: // prototype-pollution keys
        Object.defineProperty(t, pick(['__proto__', 'constructor', 'prototype']), {
          value: { polluted: true, toString: 'x' }, enumerable: true, writable: true, configurable: true,
        });
        break;
      case 7: // huge string
        t[key] = `${randomString()}${'A'.repeat(200_000)}`;
        break;
      case 8: // deep nesting
        t[key] = deep(100 + int(5000));
        break;
      default: // duplicate an element / number where a string is expected
        t[key] = rnd() < 0.5 ? int(100) : t[pick(keys)] ?? null;
    }
    return payload;
  };
  return { rnd, int, pick, mutate };
}

test('fuzz: 5,000 seeded mutations of the samples either validate or throw an LvaError', () => {
  const topologies = allTopologyFiles().map((f) => f.json);
  const instances = allInstancePayloads().map((f) => ({ ...f.json, name: f.json.name || 'camera-1' }));
  const f = fuzzer(20201214);
  const ctx = { allowUnsecuredEndpoints: true };
  const outcomes = { valid: 0, lva: 0 };
  const validTopologies = topologies.map((t) => validateTopologySet(t, ctx));

  for (let i = 0; i < 5000; i++) {
    const useInstance = f.rnd() < 0.3;
    const base = structuredClone(useInstance ? f.pick(instances) : f.pick(topologies));
    let payload: Json = base;
    const mutations = 1 + f.int(3);
    for (let m = 0; m < mutations; m++) payload = f.mutate(payload);
    try {
      if (useInstance) {
        const instance = validateInstanceSet(payload);
        const topology = f.pick(validTopologies);
        resolveInstance(topology, { ...instance, properties: { ...instance.properties, topologyName: topology.name } }, ctx);
      } else {
        const topology = validateTopologySet(payload, ctx);
        const parameters = topology.properties.parameters.filter((p) => p.default === undefined).map((p) => ({ name: p.name, value: 'rtsp://cam/1' }));
        resolveInstance(topology, validateInstanceSet({ '@apiVersion': '2.0', name: 'fuzz', properties: { topologyName: topology.name, parameters } }), ctx);
      }
      outcomes.valid++;
    } catch (err) {
      if (!(err instanceof LvaError)) {
        assert.fail(`iteration ${i}: ${err instanceof Error ? `${err.name}: ${err.message}\n${err.stack}` : String(err)}\npayload: ${JSON.stringify(payload).slice(0, 2000)}`);
      }
      assert.ok([400, 409].includes(err.status), `iteration ${i}: status ${err.status}`);
      outcomes.lva++;
    }
  }
  // The mix exercises both paths; and no mutation polluted a prototype.
  assert.ok(outcomes.valid > 0 && outcomes.lva > 0, JSON.stringify(outcomes));
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal((Object.prototype as unknown as Record<string, unknown>).polluted, undefined);
});
