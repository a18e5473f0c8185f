import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { ControlPlane, METHOD_NAMES, type MethodResult } from '../api/methods.js';
import { NodeTypes } from '../graph/model.js';
import type { GraphRunner } from './graph-runtime.js';

/**
 * Prometheus metrics of one daemon (served at GET /metrics).
 *
 * One registry per daemon (not prom-client's global one), so that several daemons can live in one
 * process (tests) without sharing series. Graph series are collected lazily: every scrape reads the
 * counters the graph runner, its links and its nodes keep anyway, so the media path does no extra
 * work for metrics, and the series of an instance disappear with its runner (deactivate / delete).
 *
 * Names: LVA's own (lva-spec §4.5: `lva_active_graph_instances`, `lva_received_bytes_total`,
 * `lva_data_dropped_total`) keep LVA's labels (`graph_instance`, `graph_node`) so existing dashboards
 * work; ours use `{instance, node, node_type}`. docs/operations.md lists them all.
 */

export interface MetricsSources {
  control: ControlPlane;
  /** The graphs that are running now. */
  runners: () => Iterable<GraphRunner>;
  /** Events waiting to leave the module, per queue (IoT Edge outputs while edgeHub is unreachable). */
  eventQueues?: () => Iterable<{ queue: string; depth: number }>;
}

interface NodeRow {
  instance: string;
  node: string;
  node_type: string;
  inputs: number;
  stats: Readonly<Record<string, number>>;
}

const INSTANCE_STATES = ['Inactive', 'Activating', 'Active', 'Deactivating'] as const;

/** Node stats that are current levels rather than running counts. */
const GAUGE_STATS = new Set(['backlogSegments', 'backlogBytes']);

/** `#Microsoft.Media.MediaGraphRtspSource` → `MediaGraphRtspSource`. */
export function shortNodeType(type: string): string {
  return type.replace(/^#Microsoft\.Media\./, '');
}

export class DaemonMetrics {
  readonly registry = new Registry();
  private readonly methodSeconds: Histogram<'method' | 'status'>;

  constructor(private readonly src: MetricsSources) {
    const register = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const self = this;

    // ---- LVA's names and labels ----
    new Gauge({
      name: 'lva_active_graph_instances', help: 'Graph instances in state Active.', registers: register,
      collect() { this.set(self.src.control.counts().active); },
    });
    new Gauge({
      name: 'lva_graph_topologies', help: 'Stored graph topologies.', registers: register,
      collect() { this.set(self.src.control.counts().topologies); },
    });
    new Gauge({
      name: 'lva_graph_instances', help: 'Stored graph instances.', registers: register,
      collect() { this.set(self.src.control.counts().instances); },
    });
    new Counter({
      name: 'lva_received_bytes_total', help: 'Bytes received from RTSP sources.', registers: register,
      labelNames: ['graph_instance', 'graph_node'] as const,
      collect() {
        this.reset();
        for (const n of self.nodes()) {
          if (n.node_type === shortNodeType(NodeTypes.RtspSource)) this.inc({ graph_instance: n.instance, graph_node: n.node }, n.stats.bytes ?? 0);
        }
      },
    });
    new Counter({
      name: 'lva_data_dropped_total', help: 'Items dropped on graph links: analysis frames (drop-oldest) and media backlog (overflow).',
      registers: register, labelNames: ['graph_instance', 'data_kind'] as const,
      collect() {
        this.reset();
        for (const r of self.src.runners()) {
          this.inc({ graph_instance: r.graph.instanceName, data_kind: 'frames' }, r.dropped.frames);
          this.inc({ graph_instance: r.graph.instanceName, data_kind: 'media' }, r.dropped.media);
        }
      },
    });

    // ---- ours: per instance ----
    new Gauge({
      name: 'lva_instance_state', help: 'Graph instance state (1 = the instance is in this state).', registers: register,
      labelNames: ['instance', 'topology', 'state'] as const,
      collect() {
        this.reset();
        for (const i of self.src.control.instanceStates()) {
          for (const s of INSTANCE_STATES) this.set({ instance: i.name, topology: i.topologyName, state: s }, i.state === s ? 1 : 0);
        }
      },
    });

    // ---- ours: per instance and node ----
    const perNode = (name: string, help: string, value: (n: NodeRow, links: LinkTotals) => number | undefined, kind: 'counter' | 'gauge' = 'counter') => {
      const config = {
        name, help, registers: register, labelNames: ['instance', 'node', 'node_type'] as const,
        collect(this: Counter<'instance' | 'node' | 'node_type'> | Gauge<'instance' | 'node' | 'node_type'>) {
          this.reset();
          for (const { row, links } of self.nodesWithLinks()) {
            const v = value(row, links);
            if (v === undefined) continue;
            const labels = { instance: row.instance, node: row.node, node_type: row.node_type };
            if (this instanceof Counter) this.inc(labels, v);
            else this.set(labels, v);
          }
        },
      };
      return kind === 'counter' ? new Counter(config) : new Gauge(config);
    };
    perNode('lva_frames_in_total',
      'Items a node received: for an RTSP source the encoded samples from the camera, for other nodes the items delivered on their input links.',
      (n, l) => (n.inputs === 0 ? n.stats.samples : l.deliveredIn));
    perNode('lva_frames_out_total', 'Items a node emitted, counted per downstream link that accepted them.',
      (n, l) => (l.linksOut > 0 ? l.queuedOut : undefined));
    perNode('lva_frames_dropped_total', 'Items dropped on a node\'s input links (analysis frames when it falls behind, media backlog on overflow).',
      (n, l) => (n.inputs > 0 ? l.droppedIn : undefined));
    perNode('lva_bytes_received_total', 'Encoded bytes received by a source.', (n) => n.stats.bytes);
    perNode('lva_source_reconnects_total', 'Times a source reconnected to its camera after losing it.', (n) => n.stats.reconnects);
    perNode('lva_gate_activations_total', 'Signal gate activations (one per recorded event window).',
      (n) => (n.node_type === shortNodeType(NodeTypes.SignalGate) ? n.stats.activations : undefined));
    perNode('lva_clips_written_total', 'Clips a file sink finished (renamed from .partial to .mp4).',
      (n) => (n.node_type === shortNodeType(NodeTypes.FileSink) ? n.stats.clips : undefined));
    perNode('lva_upload_backlog_segments', 'Asset sink segments cached locally and not yet uploaded.',
      (n) => (n.node_type === shortNodeType(NodeTypes.AssetSink) ? n.stats.backlogSegments ?? 0 : undefined), 'gauge');
    perNode('lva_upload_backlog_bytes', 'Bytes of asset sink segments cached locally and not yet uploaded.',
      (n) => (n.node_type === shortNodeType(NodeTypes.AssetSink) ? n.stats.backlogBytes ?? 0 : undefined), 'gauge');
    perNode('lva_node_queue_depth', 'Items waiting on a node\'s input links.', (n, l) => (n.inputs > 0 ? l.depthIn : undefined), 'gauge');

    new Gauge({
      name: 'lva_link_queue_depth', help: 'Items waiting on a graph link.', registers: register,
      labelNames: ['graph_instance', 'from', 'to'] as const,
      collect() {
        this.reset();
        for (const r of self.src.runners()) {
          for (const l of r.linkStats()) this.set({ graph_instance: r.graph.instanceName, from: l.from, to: l.to }, l.depth);
        }
      },
    });
    // Every numeric node counter, also those without a dedicated series (motionFrames, uploadFailures, ...).
    new Counter({
      name: 'lva_node_counter', help: 'Per-node counters (frames, clips, reconnects, uploads, drops...).', registers: register,
      labelNames: ['graph_instance', 'graph_node', 'counter'] as const,
      collect() {
        this.reset();
        for (const n of self.nodes()) {
          for (const [k, v] of Object.entries(n.stats)) {
            if (GAUGE_STATS.has(k)) continue; // levels, not counts: they have their own gauges
            if (typeof v === 'number' && Number.isFinite(v) && v >= 0) this.inc({ graph_instance: n.instance, graph_node: n.node, counter: k }, v);
          }
        }
      },
    });

    // ---- module ----
    new Gauge({
      name: 'lva_event_queue_depth', help: 'Events waiting to leave the module (IoT Edge outputs buffered while edgeHub is unreachable).',
      registers: register, labelNames: ['queue'] as const,
      collect() {
        this.reset();
        for (const q of self.src.eventQueues?.() ?? []) this.set({ queue: q.queue }, q.depth);
      },
    });
    this.methodSeconds = new Histogram({
      name: 'lva_method_duration_seconds', help: 'Direct-method latency (IoT Hub and local API) by method and reply status.',
      registers: register, labelNames: ['method', 'status'] as const,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60],
    });
  }

  /** Records one direct-method call. Unknown method names are folded into one label value. */
  observeMethod(method: string, status: number, seconds: number, knownMethods: readonly string[]): void {
    this.methodSeconds.observe({ method: knownMethods.includes(method) ? method : 'unknown', status: String(status) }, seconds);
  }

  /** The Prometheus text exposition. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private *nodes(): Iterable<NodeRow> {
    for (const r of this.src.runners()) {
      const stats = new Map(r.nodeStats().map((s) => [s.node, s.stats]));
      for (const n of r.graph.nodes) {
        yield {
          instance: r.graph.instanceName, node: n.config.name, node_type: shortNodeType(n.config.type),
          inputs: n.inputs.length, stats: stats.get(n.config.name) ?? {},
        };
      }
    }
  }

  private *nodesWithLinks(): Iterable<{ row: NodeRow; links: LinkTotals }> {
    for (const r of this.src.runners()) {
      const totals = new Map<string, LinkTotals>();
      const get = (name: string) => {
        let t = totals.get(name);
        if (!t) totals.set(name, (t = { deliveredIn: 0, droppedIn: 0, depthIn: 0, queuedOut: 0, linksOut: 0 }));
        return t;
      };
      for (const l of r.linkStats()) {
        const to = get(l.to);
        to.deliveredIn += l.delivered;
        to.droppedIn += l.dropped;
        to.depthIn += l.depth;
        const from = get(l.from);
        from.queuedOut += l.queued;
        from.linksOut++;
      }
      const stats = new Map(r.nodeStats().map((s) => [s.node, s.stats]));
      for (const n of r.graph.nodes) {
        yield {
          row: {
            instance: r.graph.instanceName, node: n.config.name, node_type: shortNodeType(n.config.type),
            inputs: n.inputs.length, stats: stats.get(n.config.name) ?? {},
          },
          links: get(n.config.name),
        };
      }
    }
  }
}

interface LinkTotals {
  deliveredIn: number;
  droppedIn: number;
  depthIn: number;
  queuedOut: number;
  linksOut: number;
}

/**
 * The control plane with every direct-method call timed (IoT Hub, local API and restore-at-start all
 * go through invoke()).
 */
export class MeteredControlPlane extends ControlPlane {
  metrics?: DaemonMetrics;

  override async invoke(method: string, payload: unknown): Promise<MethodResult> {
    const t0 = performance.now();
    const r = await super.invoke(method, payload);
    this.metrics?.observeMethod(method, r.status, (performance.now() - t0) / 1000, METHOD_NAMES);
    return r;
  }
}

/**
 * The metrics-only listener (LVA's convention: Prometheus on container port 9600). It serves
 * GET /metrics and GET /healthz and nothing else — no methods, no events — so it may bind a
 * non-loopback address without the API token that the local API requires there.
 */
export class MetricsListener {
  private server?: http.Server;

  constructor(private readonly metrics: DaemonMetrics, private readonly health: () => Record<string, unknown>) {}

  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    const server = http.createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/metrics') {
        this.metrics.render().then(
          (text) => res.writeHead(200, { 'content-type': this.metrics.contentType }).end(text),
          () => res.writeHead(500).end(),
        );
        return;
      }
      if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify({ status: 'ok', ...this.health() }));
        return;
      }
      res.writeHead(404).end();
    });
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const a = server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections?.();
    });
  }
}
