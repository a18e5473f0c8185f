// GET /metrics of a daemon running a real graph (GStreamer RTSP camera → ffmpeg → motion → gate → file
// sink): the exposition parses, every series the operations guide lists is there with its labels, the
// counters move while media flows, and an instance's series disappear when it is deleted.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Daemon } from '../../src/daemon.js';
import type { EventLine } from '../../src/runtime/events.js';
import { DaemonMetrics } from '../../src/runtime/metrics.js';
import { ControlPlane } from '../../src/api/methods.js';
import { GraphStore } from '../../src/graph/store.js';
import { createLogger } from '../../src/util/logger.js';
import { startRtspServer, type RtspTestServer } from '../helpers/rtsp-server.js';
import { makeClip } from '../helpers/clips.js';
import { readSample } from '../helpers/samples.js';
import { assertNoLeftoverFfmpeg } from '../helpers/processes.js';

interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Parses the Prometheus text format (0.0.4) strictly: every sample line must be `name{labels} value`,
 * every family must be announced by HELP and TYPE before its samples, and no series may repeat.
 * (prom-client writes NaN as `Nan`, which Prometheus reads: Go's ParseFloat ignores the case.)
 */
function parseExposition(text: string): { series: Series[]; types: Map<string, string> } {
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const seen = new Set<string>();
  const series: Series[] = [];
  const sampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*",?)*)\})? (-?(?:\d+(?:\.\d+)?(?:e[+-]?\d+)?|[Nn][Aa][Nn]|\+Inf|-Inf))$/; // NaN in any case, as Prometheus' ParseFloat
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m: RegExpExecArray | null;
    if ((m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$/.exec(line))) {
      helps.add(m[1]!);
      continue;
    }
    if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      assert.ok(helps.has(m[1]!), `HELP before TYPE for ${m[1]}`);
      types.set(m[1]!, m[2]!);
      continue;
    }
    m = sampleLine.exec(line);
    assert.ok(m, `not a valid sample line: ${line}`);
    const name = m[1]!;
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    assert.ok(types.has(family), `sample of an undeclared family: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    assert.ok(!seen.has(key), `duplicate series ${line}`);
    seen.add(key);
    series.push({ name, labels, value: Number(m[3]) });
  }
  return { series, types };
}

function pick(series: Series[], name: string, labels: Record<string, string>): Series | undefined {
  return series.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

function valueOf(series: Series[], name: string, labels: Record<string, string>): number {
  const s = pick(series, name, labels);
  assert.ok(s, `series ${name}${JSON.stringify(labels)} is missing`);
  return s.value;
}

describe('GET /metrics while a motion-recording graph runs', () => {
  let rtsp: RtspTestServer;
  let daemon: Daemon;
  let dir: string;
  let base: string;
  const events: EventLine[] = [];

  before(async () => {
    // A 12 s scene looped forever; a box crosses it between 3 s and 6 s of every loop.
    const loop = await makeClip({ seconds: 12, fps: 25, gop: 50, motion: { start: 3, end: 6 }, container: 'ts' });
    rtsp = await startRtspServer({ loopFile: loop });
    dir = mkdtempSync(path.join(os.tmpdir(), 'lva-metrics-'));
    daemon = new Daemon({
      settings: { applicationDataDirectory: path.join(dir, 'state'), outputRootDirectory: path.join(dir, 'media') },
      http: { host: '127.0.0.1', port: 0 },
      log: createLogger(process.stderr, 'silent'),
    });
    daemon.bus.subscribe((e) => events.push(e));
    await daemon.start();
    base = `http://127.0.0.1:${daemon.httpAddress!.port}`;
  });

  after(async () => {
    await daemon?.stop();
    await rtsp?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    await assertNoLeftoverFfmpeg();
  });

  const call = async (method: string, payload: Record<string, unknown>) => {
    const r = await fetch(`${base}/v1/methods/${method}`, { method: 'POST', body: JSON.stringify({ '@apiVersion': '2.0', ...payload }) });
    return (await r.json()) as { status: number; payload: any };
  };
  const scrape = async () => {
    const r = await fetch(`${base}/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
    return parseExposition(await r.text()).series;
  };
  const waitForEvent = async (suffix: string, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (!events.some((e) => e.applicationProperties.eventType.endsWith(`.${suffix}`))) {
      if (Date.now() > deadline) throw new Error(`no ${suffix} event within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  test('per-node series exist, counters move, the method histogram counts calls, deleted instances vanish', async () => {
    const topology = readSample('topologies/2.0/evr-motion-files.topology.json');
    assert.equal((await call('GraphTopologySet', topology)).status, 201);
    const set = await call('GraphInstanceSet', {
      name: 'm1', properties: { topologyName: topology.name, parameters: [{ name: 'rtspUrl', value: rtsp.url('/loop') }] },
    });
    assert.equal(set.status, 201, JSON.stringify(set.payload));
    assert.equal((await call('GraphInstanceActivate', { name: 'm1' })).status, 200);

    await waitForEvent('MediaSessionEstablished', 20_000);
    await new Promise((r) => setTimeout(r, 1000));
    const first = await scrape();
    await waitForEvent('RecordingAvailable', 40_000);
    const second = await scrape();

    const src = { instance: 'm1', node: 'rtspSource', node_type: 'MediaGraphRtspSource' };
    const motion = { instance: 'm1', node: 'motionDetection', node_type: 'MediaGraphMotionDetectionProcessor' };
    const gate = { instance: 'm1', node: 'signalGateProcessor', node_type: 'MediaGraphSignalGateProcessor' };
    const sink = { instance: 'm1', node: 'fileSink', node_type: 'MediaGraphFileSink' };

    assert.equal(valueOf(second, 'lva_instance_state', { instance: 'm1', state: 'Active' }), 1);
    assert.equal(valueOf(second, 'lva_instance_state', { instance: 'm1', state: 'Inactive' }), 0);
    assert.equal(valueOf(second, 'lva_active_graph_instances', {}), 1);

    // Media flows: the source's counters grow between scrapes.
    for (const name of ['lva_frames_in_total', 'lva_frames_out_total', 'lva_bytes_received_total']) {
      const a = valueOf(first, name, src);
      const b = valueOf(second, name, src);
      assert.ok(a > 0 && b > a, `${name} grows: ${a} → ${b}`);
    }
    assert.equal(valueOf(second, 'lva_bytes_received_total', src),
      valueOf(second, 'lva_received_bytes_total', { graph_instance: 'm1', graph_node: 'rtspSource' }), 'LVA name and ours agree');
    assert.equal(valueOf(second, 'lva_source_reconnects_total', src), 0);
    assert.ok(valueOf(second, 'lva_frames_in_total', motion) > valueOf(first, 'lva_frames_in_total', motion), 'the motion detector gets frames');
    assert.ok(valueOf(second, 'lva_frames_dropped_total', motion) >= 0);
    assert.ok(valueOf(second, 'lva_frames_in_total', sink) > 0, 'the file sink got media');
    assert.ok(valueOf(second, 'lva_gate_activations_total', gate) >= 1);
    assert.ok(valueOf(second, 'lva_clips_written_total', sink) >= 1);
    assert.ok(valueOf(second, 'lva_node_queue_depth', sink) >= 0);
    // Series only where they mean something.
    assert.equal(pick(second, 'lva_clips_written_total', src), undefined);
    assert.equal(pick(second, 'lva_frames_dropped_total', src), undefined, 'a source has no input links');
    assert.equal(pick(second, 'lva_upload_backlog_segments', { instance: 'm1' }), undefined, 'no asset sink in this graph');
    assert.equal(pick(second, 'lva_event_queue_depth', {}), undefined, 'no IoT Edge output queue standalone');
    // Process metrics from prom-client's defaults.
    assert.ok(valueOf(second, 'process_resident_memory_bytes', {}) > 0);

    assert.equal(valueOf(second, 'lva_method_duration_seconds_count', { method: 'GraphInstanceActivate', status: '200' }), 1);
    assert.equal(valueOf(second, 'lva_method_duration_seconds_count', { method: 'GraphTopologySet', status: '201' }), 1);

    assert.equal((await call('GraphInstanceDeactivate', { name: 'm1' })).status, 200);
    assert.equal((await call('GraphInstanceDelete', { name: 'm1' })).status, 200);
    const third = await scrape();
    assert.deepEqual(third.filter((s) => s.labels.instance === 'm1' || s.labels.graph_instance === 'm1').map((s) => s.name), [],
      'no series of the deleted instance remain');
    assert.equal(valueOf(third, 'lva_active_graph_instances', {}), 0);
    assert.equal(valueOf(third, 'lva_method_duration_seconds_count', { method: 'GraphInstanceDelete', status: '200' }), 1);
  });
});

test('two daemons in one process keep separate registries', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lva-metrics-reg-'));
  try {
    const mk = (name: string) => {
      const control = new ControlPlane({
        store: new GraphStore(path.join(dir, name)), createRuntime: () => { throw new Error('not used'); },
        validationContext: () => ({ allowUnsecuredEndpoints: true }),
      });
      return new DaemonMetrics({ control, runners: () => [], eventQueues: () => [{ queue: 'iotedge_outputs', depth: name === 'a' ? 3 : 0 }] });
    };
    const a = mk('a');
    const b = mk('b');
    a.observeMethod('GraphTopologyList', 200, 0.002, ['GraphTopologyList']);
    a.observeMethod('NoSuchMethod', 501, 0.001, ['GraphTopologyList']);
    const ta = parseExposition(await a.render()).series;
    const tb = parseExposition(await b.render()).series;
    assert.equal(valueOf(ta, 'lva_event_queue_depth', { queue: 'iotedge_outputs' }), 3);
    assert.equal(valueOf(tb, 'lva_event_queue_depth', { queue: 'iotedge_outputs' }), 0);
    assert.equal(valueOf(ta, 'lva_method_duration_seconds_count', { method: 'GraphTopologyList', status: '200' }), 1);
    assert.equal(valueOf(ta, 'lva_method_duration_seconds_count', { method: 'unknown', status: '501' }), 1, 'unknown names do not create series');
    assert.equal(pick(tb, 'lva_method_duration_seconds_count', { method: 'GraphTopologyList' }), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the metrics-only listener (LVA_METRICS, port 9600 in the image) serves /metrics and /healthz and nothing else', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lva-metrics-port-'));
  const daemon = new Daemon({
    settings: { applicationDataDirectory: dir }, http: null, metricsHttp: { host: '127.0.0.1', port: 0 }, log: createLogger(undefined, 'silent'),
  });
  try {
    await daemon.start();
    const base = `http://127.0.0.1:${daemon.metricsAddress!.port}`;
    const m = await fetch(`${base}/metrics`);
    assert.equal(m.status, 200);
    assert.equal(valueOf(parseExposition(await m.text()).series, 'lva_graph_topologies', {}), 0);
    const h = await fetch(`${base}/healthz`);
    assert.equal(h.status, 200);
    assert.equal(((await h.json()) as { status: string }).status, 'ok');
    const post = await fetch(`${base}/v1/methods/GraphTopologyList`, { method: 'POST', body: '{"@apiVersion":"2.0"}' });
    assert.equal(post.status, 405, 'no methods on the metrics port');
    assert.equal((await fetch(`${base}/v1/events`)).status, 404, 'no event stream on the metrics port');
  } finally {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('collectors map runner, link and node counters onto the series (asset sink backlog, gate, clips, drops)', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lva-metrics-map-'));
  try {
    const control = new ControlPlane({
      store: new GraphStore(path.join(dir, 's')), createRuntime: () => { throw new Error('not used'); },
      validationContext: () => ({ allowUnsecuredEndpoints: true }),
    });
    // The read side of a GraphRunner: what the collectors use, with known values.
    const node = (name: string, type: string, inputs: string[]) => ({ config: { name, type }, inputs: inputs.map((nodeName) => ({ nodeName })) });
    const assetStats = { segments: 9, uploadedSegments: 6, backlogSegments: 3, backlogBytes: 3_000_000 };
    const runner = {
      graph: {
        instanceName: 'cam1',
        nodes: [
          node('src', '#Microsoft.Media.MediaGraphRtspSource', []),
          node('gate', '#Microsoft.Media.MediaGraphSignalGateProcessor', ['src']),
          node('files', '#Microsoft.Media.MediaGraphFileSink', ['gate']),
          node('assets', '#Microsoft.Media.MediaGraphAssetSink', ['gate']),
        ],
      },
      dropped: { frames: 4, media: 0 },
      nodeStats: () => [
        { node: 'src', type: '', stats: { samples: 1000, bytes: 5_000_000, reconnects: 2 } },
        { node: 'gate', type: '', stats: { activations: 3 } },
        { node: 'files', type: '', stats: { clips: 2 } },
        { node: 'assets', type: '', stats: assetStats },
      ],
      linkStats: () => [
        { from: 'src', to: 'gate', depth: 1, dropped: 0, delivered: 990, queued: 991 },
        { from: 'gate', to: 'files', depth: 0, dropped: 5, delivered: 400, queued: 405 },
        { from: 'gate', to: 'assets', depth: 2, dropped: 0, delivered: 398, queued: 400 },
      ],
    };
    const m = new DaemonMetrics({ control, runners: () => [runner as never] });
    const s = parseExposition(await m.render()).series;
    const at = (n: string, type: string) => ({ instance: 'cam1', node: n, node_type: type });
    assert.equal(valueOf(s, 'lva_frames_in_total', at('src', 'MediaGraphRtspSource')), 1000);
    assert.equal(valueOf(s, 'lva_frames_out_total', at('src', 'MediaGraphRtspSource')), 991);
    assert.equal(valueOf(s, 'lva_frames_in_total', at('gate', 'MediaGraphSignalGateProcessor')), 990);
    assert.equal(valueOf(s, 'lva_frames_out_total', at('gate', 'MediaGraphSignalGateProcessor')), 805, 'counted per downstream link');
    assert.equal(valueOf(s, 'lva_frames_dropped_total', at('files', 'MediaGraphFileSink')), 5);
    assert.equal(valueOf(s, 'lva_node_queue_depth', at('assets', 'MediaGraphAssetSink')), 2);
    assert.equal(valueOf(s, 'lva_bytes_received_total', at('src', 'MediaGraphRtspSource')), 5_000_000);
    assert.equal(valueOf(s, 'lva_source_reconnects_total', at('src', 'MediaGraphRtspSource')), 2);
    assert.equal(valueOf(s, 'lva_gate_activations_total', at('gate', 'MediaGraphSignalGateProcessor')), 3);
    assert.equal(valueOf(s, 'lva_clips_written_total', at('files', 'MediaGraphFileSink')), 2);
    assert.equal(valueOf(s, 'lva_upload_backlog_segments', at('assets', 'MediaGraphAssetSink')), 3);
    assert.equal(valueOf(s, 'lva_upload_backlog_bytes', at('assets', 'MediaGraphAssetSink')), 3_000_000);
    assert.equal(valueOf(s, 'lva_data_dropped_total', { graph_instance: 'cam1', data_kind: 'frames' }), 4);
    assert.equal(valueOf(s, 'lva_node_counter', { graph_node: 'assets', counter: 'uploadedSegments' }), 6);
    assert.equal(pick(s, 'lva_node_counter', { graph_node: 'assets', counter: 'backlogBytes' }), undefined, 'levels are gauges, not counters');
    // A level that falls is reported as it is now (gauges are read at scrape time).
    assetStats.backlogSegments = 0;
    assert.equal(valueOf(parseExposition(await m.render()).series, 'lva_upload_backlog_segments', at('assets', 'MediaGraphAssetSink')), 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
