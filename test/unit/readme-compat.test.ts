// The README's sample-topology table is the compatibility promise a migrating user reads first: it must
// list every topology of LVA's published samples, name each one's nodes truthfully, and claim "works"
// only where this code runs every node — checked with the real validator, node registry and graph
// compiler. (It may be conservative: ⏳/✘ rows are allowed to name work still in progress.)
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { allTopologyFiles } from '../helpers/samples.js';
import { validateTopologySet, validateInstanceSet, resolveInstance } from '../../src/graph/validate.js';
import { nodeRegistry } from '../../src/nodes/registry.js';
import '../../src/nodes/all.js';
import { GraphRunner } from '../../src/runtime/graph-runtime.js';
import { EventBus } from '../../src/runtime/events.js';
import { InputRouter } from '../../src/runtime/inputs.js';
import { resolveSettings } from '../../src/config/settings.js';
import { createLogger } from '../../src/util/logger.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** README column name → `@type` without `#Microsoft.Media.MediaGraph`. */
const NODE_NAMES: Record<string, string> = {
  'RTSP source': 'RtspSource', 'hub source': 'IoTHubMessageSource', motion: 'MotionDetectionProcessor',
  'frame-rate filter': 'FrameRateFilterProcessor', 'signal gate': 'SignalGateProcessor', 'HTTP extension': 'HttpExtension',
  'gRPC extension': 'GrpcExtension', 'Cognitive Services vision': 'CognitiveServicesVisionExtension',
  'hub sink': 'IoTHubMessageSink', 'file sink': 'FileSink', 'asset sink': 'AssetSink',
};
/** Node types whose work is in progress and may be named by ⏳ rows (none at the moment). */
const PENDING_TYPES = new Set<string>();

interface Row {
  file: string;
  api: string;
  nodes: string[];
  status: 'works' | 'pending' | 'unsupported';
  statusText: string;
}

function sampleRows(): Row[] {
  const section = readme.slice(readme.indexOf('### Sample topologies'));
  assert.ok(section.length > 0, 'README has a "Sample topologies" section');
  const rows: Row[] = [];
  for (const line of section.split('\n')) {
    const m = /^\| `([^`]+\.topology\.json)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$/.exec(line);
    if (!m) continue;
    const statusText = m[4]!.trim();
    const status = statusText.startsWith('✔ works') ? 'works' : statusText.startsWith('⏳') ? 'pending' : statusText.startsWith('✘ not supported') ? 'unsupported' : undefined;
    assert.ok(status, `status of ${m[1]} must start with "✔ works", "⏳" or "✘ not supported": ${statusText}`);
    rows.push({ file: m[1]!, api: m[2]!.trim(), nodes: m[3]!.split(',').map((s) => s.trim()), status, statusText });
  }
  return rows;
}

const rows = sampleRows();
const samples = allTopologyFiles();
const byFile = new Map(samples.map((s) => [s.rel, s.json]));

function nodeTypes(json: any): string[] {
  const out: string[] = [];
  for (const k of ['sources', 'processors', 'sinks']) {
    for (const n of json.properties?.[k] ?? []) {
      const t = String(n['@type']).replace('#Microsoft.Media.MediaGraph', '');
      if (!out.includes(t)) out.push(t);
    }
  }
  return out;
}

/** Compiles the sample as an instance with a value for every parameter (the runner's compile step). */
function compile(json: any): void {
  const ctx = { allowUnsecuredEndpoints: true };
  const topology = validateTopologySet(json, ctx);
  const parameters = (json.properties.parameters ?? []).map((p: any) => ({
    name: p.name, value: p.default ?? (/infer|extension|grpc|ai/i.test(p.name) && /url|address/i.test(p.name) ? 'http://inference.invalid/score'
      : /url/i.test(p.name) ? 'rtsp://camera.invalid/stream' : 'value1'),
  }));
  const instance = validateInstanceSet({ '@apiVersion': json['@apiVersion'] ?? '1.0', name: 'compat', properties: { topologyName: topology.name, parameters } });
  const graph = resolveInstance(topology, instance, ctx);
  const settings = resolveSettings({ applicationDataDirectory: '/nonexistent' });
  new GraphRunner(graph, {
    bus: new EventBus(() => ({ topic: '/t' })), inputs: new InputRouter(), settings: () => settings,
    log: createLogger(undefined, 'silent'), registry: nodeRegistry(),
  });
}

describe('README compatibility table of the LVA sample topologies', () => {
  test('lists every sample topology file exactly once, and nothing else', () => {
    assert.ok(samples.length >= 48, `found ${samples.length} sample topologies`);
    const listed = rows.map((r) => r.file);
    assert.deepEqual([...listed].sort(), samples.map((s) => s.rel).sort());
    assert.equal(new Set(listed).size, listed.length, 'no duplicates');
  });

  test('each row names the sample\'s API version and its node types, in order', () => {
    for (const r of rows) {
      const json = byFile.get(r.file)!;
      assert.equal(r.api, json['@apiVersion'] ?? '1.0 (unversioned)', r.file);
      const names = r.nodes.map((n) => {
        assert.ok(n in NODE_NAMES, `${r.file}: unknown node name "${n}"`);
        return NODE_NAMES[n];
      });
      assert.deepEqual(names, nodeTypes(json), r.file);
    }
  });

  test('every sample is accepted by GraphTopologySet validation', () => {
    for (const s of samples) assert.doesNotThrow(() => validateTopologySet(s.json, { allowUnsecuredEndpoints: true }), s.rel);
  });

  test('"✔ works" only where every node type has a runtime and the graph compiles', () => {
    const registry = nodeRegistry();
    for (const r of rows.filter((x) => x.status === 'works')) {
      const json = byFile.get(r.file)!;
      for (const t of nodeTypes(json)) assert.ok(registry.has(`#Microsoft.Media.MediaGraph${t}`), `${r.file} claims to work but ${t} has no runtime`);
      assert.doesNotThrow(() => compile(json), r.file);
      if (nodeTypes(json).includes('AssetSink')) assert.match(r.statusText, /storage target/, `${r.file}: say that the asset sink needs a storage target`);
    }
  });

  test('"✘ not supported" only where a node type really has no runtime; "⏳" only for the pending node types', () => {
    const registry = nodeRegistry();
    for (const r of rows.filter((x) => x.status === 'unsupported')) {
      const missing = nodeTypes(byFile.get(r.file)!).filter((t) => !registry.has(`#Microsoft.Media.MediaGraph${t}`));
      assert.ok(missing.length > 0, `${r.file} is marked not supported but every node has a runtime`);
    }
    for (const r of rows.filter((x) => x.status === 'pending')) {
      const types = nodeTypes(byFile.get(r.file)!);
      assert.ok(types.some((t) => PENDING_TYPES.has(t)), `${r.file} is marked pending but has no HTTP extension / frame-rate filter`);
      const missing = types.filter((t) => !registry.has(`#Microsoft.Media.MediaGraph${t}`));
      assert.ok(missing.every((t) => PENDING_TYPES.has(t)), `${r.file} also needs ${missing.join(', ')}: mark it not supported`);
    }
  });

  test('the README keeps the two commands and the FAQ the issue asks for', () => {
    assert.ok(readme.includes('npm install && npm run demo'));
    assert.ok(readme.includes('npm install && npm test'));
    assert.match(readme, /## Deploy on IoT Edge/);
    assert.match(readme, /## Migrating from LVA/);
    assert.match(readme, /Pre-roll and the keyframe interval/);
    for (const doc of ['architecture', 'configuration', 'events', 'operations', 'compatibility', 'interfaces']) {
      assert.ok(readme.includes(`(docs/${doc}.md)`), `links docs/${doc}.md`);
      assert.doesNotThrow(() => readFileSync(path.join(ROOT, 'docs', `${doc}.md`)), `docs/${doc}.md exists`);
    }
  });
});
