import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { allInstancePayloads, allTopologyFiles } from '../helpers/samples.js';
import { NodeTypes, type TopologyResource } from '../../src/graph/model.js';
import { parseTopologySet, resolveInstance, topologyApiVersion, validateInstanceSet, validateTopologySet } from '../../src/graph/validate.js';

const ctx = { allowUnsecuredEndpoints: true };

/** Plausible values for the empty slots of the ref-app instance templates, by parameter name. */
function fillTemplateValue(name: string): string {
  const n = name.toLowerCase();
  if (n.includes('rtspurl')) return 'rtsp://camera.local:554/stream';
  if (n.includes('inferencingurl')) return 'http://yolov3/score';
  if (n.includes('sensitivity')) return 'medium';
  if (n.includes('assetname')) return 'camera1-${System.GraphInstanceName}';
  return 'value';
}

describe('lva-samples topologies (lva-spec §1.1: every sample is a valid GraphTopologySet payload)', () => {
  const files = allTopologyFiles();
  test('all 48 sample topologies are found', () => assert.equal(files.length, 48));

  for (const { rel, json } of files) {
    test(`${rel} validates, re-validates to the same resource, and has its defaults filled`, () => {
      const { topology, apiVersion } = parseTopologySet(json, ctx);
      assert.equal(apiVersion, json['@apiVersion']);
      assert.equal(topology.systemData, undefined);

      // Idempotent: the canonical form is itself a valid payload that normalises to itself.
      const again = validateTopologySet({ '@apiVersion': apiVersion, ...topology }, ctx);
      assert.deepEqual(again, topology);

      const p = topology.properties;
      for (const key of ['parameters', 'sources', 'processors', 'sinks'] as const) assert.ok(Array.isArray(p[key]), key);
      for (const node of [...p.processors, ...p.sinks]) {
        for (const input of node.inputs ?? []) assert.ok(Array.isArray(input.outputSelectors), `${node.name} input ${input.nodeName}`);
      }
      for (const node of p.sources) {
        if (node['@type'] === NodeTypes.RtspSource) assert.ok(node.transport === 'Tcp' || node.transport === 'Http');
      }
      for (const node of p.processors) {
        if (node['@type'] === NodeTypes.SignalGate) {
          for (const k of ['activationEvaluationWindow', 'activationSignalOffset', 'minimumActivationTime', 'maximumActivationTime']) {
            assert.equal(typeof node[k], 'string', k);
          }
        }
      }
      for (const node of p.sinks) {
        if (node['@type'] === NodeTypes.AssetSink) {
          assert.equal(typeof node.segmentLength, 'string');
          assert.ok('localMediaCacheMaximumSizeMiB' in node, 'PascalCase key mapped to camelCase');
        }
      }
      // No lenient spellings survive normalisation in the nodes (parameter defaults stay as written).
      const text = JSON.stringify([p.sources, p.processors, p.sinks]);
      for (const lenient of ['"tcp"', '"sharedMemory"', '"SharedMemorySizeMiB"', '"LocalMediaCacheMaximumSizeMiB"', '"bgr24"', '"pad"', '"preserveAspectRatio"', '"medium"']) {
        assert.ok(!text.includes(`:${lenient}`) && !text.includes(`${lenient}:`), `${lenient} normalised`);
      }
      if (apiVersion === '2.0') assert.equal(topologyApiVersion(topology), '2.0');
    });
  }

  test('1.0 forms are kept in the canonical resource and detected as 1.0', () => {
    const evr = files.find((f) => f.rel === 'topologies/1.0/evr-motion-files.topology.json')!;
    const t = validateTopologySet(evr.json, ctx);
    const sink = t.properties.sinks.find((s) => s['@type'] === NodeTypes.FileSink)!;
    assert.equal(typeof sink.filePathPattern, 'string');
    assert.equal(topologyApiVersion(t), '1.0');
  });

  test('lenient forms are canonicalised (bare numbers, enum case, PascalCase keys)', () => {
    const grpc = files.find((f) => f.rel === 'topologies/2.0/grpcExtensionOpenVINO.topology.json')!;
    const t = validateTopologySet(grpc.json, ctx);
    const ext = t.properties.processors[0]!;
    assert.deepEqual(ext.dataTransfer, { mode: 'SharedMemory', sharedMemorySizeMiB: '5' });
    assert.deepEqual((ext.image as any).format, { '@type': '#Microsoft.Media.MediaGraphImageFormatRaw', pixelFormat: 'Bgr24' });

    const frf = files.find((f) => f.rel === 'topologies/1.0/cvr-with-grpcExtension.topology.json')!;
    const filter = validateTopologySet(frf.json, ctx).properties.processors.find((p) => p['@type'] === NodeTypes.FrameRateFilter)!;
    assert.equal(typeof filter.maximumFps, 'string');
  });
});

describe('lva-samples instances (operations/*.json and ref-app templates)', () => {
  const topologies = new Map<string, { topology: TopologyResource; apiVersion: '1.0' | '2.0' }>();
  for (const { json } of allTopologyFiles()) {
    const r = parseTopologySet(json, ctx);
    // Prefer the 2.0 copy when a name exists in several folders.
    if (!topologies.has(r.topology.name) || r.apiVersion === '2.0') topologies.set(r.topology.name, r);
  }

  const payloads = allInstancePayloads();
  test('four GraphInstanceSet payloads are found', () => assert.equal(payloads.length, 4));

  for (const { rel, json } of payloads) {
    test(`${rel} validates and resolves against topology '${json.properties.topologyName}'`, () => {
      const payload = structuredClone(json);
      if (payload.name === '') payload.name = 'camera-1';
      for (const p of payload.properties.parameters) if (p.value === '') p.value = fillTemplateValue(p.name);

      const instance = validateInstanceSet(payload);
      assert.equal(instance.properties.state, 'Inactive');
      assert.equal(instance.name, payload.name);

      const entry = topologies.get(instance.properties.topologyName);
      assert.ok(entry, `topology ${instance.properties.topologyName} is among the samples`);
      const graph = resolveInstance(entry.topology, instance, ctx, entry.apiVersion);
      assert.equal(graph.instanceName, instance.name);
      assert.equal(graph.nodes.length, entry.topology.properties.sources.length + entry.topology.properties.processors.length + entry.topology.properties.sinks.length);

      const rtsp = graph.nodes.find((n) => n.config.type === NodeTypes.RtspSource)!;
      assert.ok(rtsp.config.type === NodeTypes.RtspSource && /^rtsp:\/\//.test(rtsp.config.endpoint.url));
      for (const node of graph.nodes) {
        assert.match(node.target, /^\$\.Properties\.(Sources|Processors|Sinks)\[\d+\]$/);
        // Everything numeric is a real number after resolution.
        for (const v of Object.values(node.config)) if (typeof v === 'number') assert.ok(Number.isFinite(v));
      }
    });
  }

  test('ref-app asset name built from ${System.GraphInstanceName} is substituted at resolve time', () => {
    const json = structuredClone(payloads.find((p) => p.rel.endsWith('iotc-gateway-motion.instance.json'))!.json);
    json.name = 'lobby';
    for (const p of json.properties.parameters) p.value = fillTemplateValue(p.name);
    const instance = validateInstanceSet(json);
    const { topology } = topologies.get('LvaIotcMotionDetectionWithCvr')!;
    const graph = resolveInstance(topology, instance, ctx);
    const asset = graph.nodes.find((n) => n.config.type === NodeTypes.AssetSink)!.config;
    assert.ok(asset.type === NodeTypes.AssetSink);
    assert.equal(asset.assetNamePattern, 'camera1-lobby');
    const md = graph.nodes.find((n) => n.config.type === NodeTypes.MotionDetection)!.config;
    assert.ok(md.type === NodeTypes.MotionDetection && md.sensitivity === 'Medium');
  });

  test('1.0 forms map onto the typed configs (frame-rate filter, encoded image, filePathPattern)', () => {
    const pick = (rel: string) => parseTopologySet(allTopologyFiles().find((f) => f.rel === rel)!.json, ctx).topology;
    const instanceFor = (t: TopologyResource) =>
      validateInstanceSet({ '@apiVersion': '1.0', name: 'g1', properties: { topologyName: t.name, parameters: [{ name: 'rtspUrl', value: 'rtsp://cam/1' }] } });

    const files = pick('topologies/1.0/evr-motion-files.topology.json');
    const fileSink = resolveInstance(files, instanceFor(files), ctx, '1.0').nodes.find((n) => n.config.type === NodeTypes.FileSink)!.config;
    assert.deepEqual(fileSink, {
      type: NodeTypes.FileSink,
      name: 'fileSink',
      baseDirectoryPath: '/var/media',
      fileNamePattern: 'sampleFilesFromEVR-filesinkOutput-${System.DateTime}',
      maximumSizeMiB: 10240,
    });

    const grpc = pick('topologies/1.0/cvr-with-grpcExtension.topology.json');
    const nodes = resolveInstance(grpc, instanceFor(grpc), ctx, '1.0').nodes;
    const filter = nodes.find((n) => n.config.type === NodeTypes.FrameRateFilter)!.config;
    assert.deepEqual(filter, { type: NodeTypes.FrameRateFilter, name: 'frameRateFilter', maximumFps: 10 });
    const ext = nodes.find((n) => n.config.type === NodeTypes.GrpcExtension)!.config;
    assert.ok(ext.type === NodeTypes.GrpcExtension);
    assert.deepEqual(ext.image.format, { encoding: 'Jpeg', quality: 90 });
    assert.deepEqual(ext.dataTransfer, { mode: 'SharedMemory', sharedMemorySizeMiB: 75 });
  });
});
