import { test } from 'node:test';
import assert from 'node:assert/strict';
import '../../src/nodes/all.js';
import { nodeRegistry } from '../../src/nodes/registry.js';
import { GraphRunner } from '../../src/runtime/graph-runtime.js';
import { EventBus } from '../../src/runtime/events.js';
import { InputRouter } from '../../src/runtime/inputs.js';
import { resolveSettings } from '../../src/config/settings.js';
import { createLogger } from '../../src/util/logger.js';
import { resolveInstance, validateApiVersion, validateInstanceSet, validateTopologySet } from '../../src/graph/validate.js';
import { readSample } from '../helpers/samples.js';

// What each sample's RTSP source is asked to decode and encode: one image output per distinct image,
// at the fastest rate any consumer can use (frame-rate filter and maximumSamplesPerSecond cut what
// ffmpeg makes), the gray copy only when a motion detector needs it.

function plan(topology: any, params: Record<string, string> = {}) {
  const ctx = { allowUnsecuredEndpoints: true };
  const apiVersion = validateApiVersion(topology);
  const topo = validateTopologySet(topology, ctx);
  const inst = validateInstanceSet({ '@apiVersion': '2.0', name: 'i', properties: { topologyName: topo.name, parameters: Object.entries({ rtspUrl: 'rtsp://cam/x', ...params }).map(([name, value]) => ({ name, value })) } });
  const graph = resolveInstance(topo, inst, ctx, apiVersion);
  const settings = resolveSettings({}, { dataDir: '/tmp/lva-decode-plan' });
  const runner = new GraphRunner(graph, {
    bus: new EventBus(() => ({ topic: 't' })), inputs: new InputRouter(), settings: () => settings,
    log: createLogger(undefined, 'silent'), registry: nodeRegistry(),
  });
  return runner.decodeFor('rtspSource');
}

test('httpExtension (2.0): BMP 416x416 preserve-aspect, 5/s, no gray copy', () => {
  const d = plan(readSample('topologies/2.0/httpExtension.topology.json'))!;
  assert.equal(d.width, 0);
  assert.equal(d.fps, 5);
  assert.deepEqual(d.images!.map((i) => i.key), ['PreserveAspectRatio:416x416/Bmp']);
});

test('httpExtension (1.0): the frame-rate filter (2 fps) bounds what ffmpeg encodes', () => {
  const d = plan(readSample('topologies/1.0/httpExtension.topology.json'))!;
  assert.equal(d.fps, 2);
  assert.equal(d.images!.length, 1);
});

test('motion-with-httpExtension: gray 320x180 for motion and the extension image share one decode at 10/s', () => {
  const d = plan(readSample('topologies/2.0/motion-with-httpExtension.topology.json'))!;
  assert.deepEqual([d.width, d.height, d.fps], [320, 180, 10]);
  assert.equal(d.images!.length, 1);
});

test('two extensions with the same image share one output; an unbounded one lifts the rate limit', () => {
  const t = readSample('topologies/2.0/httpExtension.topology.json');
  const second = structuredClone(t.properties.processors[0]);
  second.name = 'second';
  t.properties.processors.push(second);
  t.properties.sinks[0].inputs.push({ nodeName: 'second' });
  const shared = plan(t)!;
  assert.equal(shared.images!.length, 1);
  assert.equal(shared.fps, 5);
  delete second.samplingOptions.maximumSamplesPerSecond;
  second.image.format = { '@type': '#Microsoft.Media.MediaGraphImageFormatJpeg', quality: '70' };
  const two = plan(t)!;
  assert.equal(two.images!.length, 2);
  assert.equal(two.fps, undefined);
});

test('motion detection alone: unchanged gray request, no images', () => {
  const d = plan(readSample('topologies/2.0/motion-detection.topology.json'))!;
  assert.deepEqual(d, { width: 320, height: 180, fps: 10 });
});
