import { readFile } from 'node:fs/promises';
import os from 'node:os';
import type { ControlPlane } from './api/methods.js';
import { resolveSettings, type ModuleSettings } from './config/settings.js';
import { GraphStore } from './graph/store.js';
import { HttpApi } from './http/server.js';
import { EventBus } from './runtime/events.js';
import { InputRouter } from './runtime/inputs.js';
import { GraphRunner } from './runtime/graph-runtime.js';
import { nodeRegistry } from './nodes/registry.js';
import './nodes/all.js';
import { LogControl, pinnedRootLevel, rootLogger, type Log } from './util/logger.js';
import { DaemonMetrics, MeteredControlPlane, MetricsListener } from './runtime/metrics.js';

/**
 * Composition root of `lva-edge run`: settings → store → control plane → transports. Nothing here
 * has logic of its own beyond wiring and the shutdown order.
 */

export interface DaemonOptions {
  /** Desired properties (twin or --config file). */
  settings?: Record<string, unknown>;
  /** `null` disables the local API. */
  http?: { host: string; port: number } | null;
  /** Metrics-only listener (GET /metrics, /healthz; LVA used port 9600). Off when absent or null. */
  metricsHttp?: { host: string; port: number } | null;
  token?: string;
  log?: Log;
  dataDir?: string;
}

export class Daemon {
  readonly bus: EventBus;
  readonly inputs = new InputRouter();
  readonly control: ControlPlane;
  private settings: ModuleSettings;
  private http?: HttpApi;
  readonly log: Log;
  /** logLevel / logCategories, applied live to every logger of the daemon. */
  readonly logControl: LogControl;
  readonly metrics: DaemonMetrics;
  private readonly runners = new Set<GraphRunner>();
  private readonly eventQueues = new Map<string, () => number>();
  httpAddress?: { host: string; port: number };
  metricsAddress?: { host: string; port: number };
  private metricsListener?: MetricsListener;

  constructor(private readonly opts: DaemonOptions = {}) {
    this.log = opts.log ?? rootLogger();
    this.settings = resolveSettings(opts.settings ?? {}, { dataDir: opts.dataDir });
    // The environment's LVA_LOG_LEVEL (or a silent logger handed in by an embedder) wins over the twin.
    this.logControl = new LogControl(this.log, this.settings,
      opts.log ? (opts.log.level === 'silent' ? 'silent' : undefined) : pinnedRootLevel());
    this.bus = new EventBus(() => ({
      topic: this.settings.azureMediaServicesArmId ?? `/lva-edge/${os.hostname()}`,
      diagnosticsEventsOutputName: this.settings.diagnosticsEventsOutputName,
      operationalEventsOutputName: this.settings.operationalEventsOutputName,
    }));
    const registry = nodeRegistry();
    const control = new MeteredControlPlane({
      store: new GraphStore(this.settings.applicationDataDirectory, this.log),
      validationContext: () => ({ allowUnsecuredEndpoints: this.settings.allowUnsecuredEndpoints }),
      log: this.log,
      createRuntime: (graph) => {
        const runner = new GraphRunner(graph, {
          bus: this.bus, inputs: this.inputs, settings: () => this.settings, log: this.log, registry,
        });
        const runners = this.runners;
        return {
          async start() {
            await runner.start();
            runners.add(runner);
          },
          async stop() {
            try {
              await runner.stop();
            } finally {
              runners.delete(runner);
            }
          },
        };
      },
    });
    this.control = control;
    this.metrics = new DaemonMetrics({
      control,
      runners: () => this.runners,
      eventQueues: () => [...this.eventQueues].map(([queue, depth]) => ({ queue, depth: depth() })),
    });
    control.metrics = this.metrics;
    // LVA's "Events" log category: one line per published event (no body: bodies can be large).
    const eventsLog = this.logControl.logger('Events');
    this.bus.subscribe((e) => {
      const analytics = e.applicationProperties.eventType.includes('.Analytics.');
      if (!eventsLog.isLevelEnabled(analytics ? 'debug' : 'info')) return;
      const fields = { eventType: e.applicationProperties.eventType, subject: e.applicationProperties.subject, output: e.output };
      if (analytics) eventsLog.debug(fields, 'event');
      else eventsLog.info(fields, 'event');
    });
  }

  /** Reports the depth of an outgoing event queue in /metrics (`lva_event_queue_depth{queue}`). */
  addEventQueue(queue: string, depth: () => number): void {
    this.eventQueues.set(queue, depth);
  }

  /** Applies logLevel / logCategories from desired properties (twin patch or config). */
  applyLogSettings(desired: Record<string, unknown>): void {
    const s = resolveSettings(desired, { dataDir: this.opts.dataDir });
    this.logControl.apply(s);
  }

  get currentSettings(): ModuleSettings {
    return this.settings;
  }

  /** Applies new desired properties (twin patch or config reload). */
  updateSettings(desired: Record<string, unknown>): void {
    const next = resolveSettings(desired, { dataDir: this.opts.dataDir });
    // applicationDataDirectory is not dynamic (lva-spec §3): keep the one we started with.
    next.applicationDataDirectory = this.settings.applicationDataDirectory;
    this.settings = next;
    this.logControl.apply(next);
  }

  async start(): Promise<void> {
    const toRestore = await this.control.load();
    if (this.opts.http !== null) {
      const { host, port } = this.opts.http ?? { host: '127.0.0.1', port: 7070 };
      this.http = new HttpApi({
        host, port, token: this.opts.token, control: this.control, bus: this.bus, inputs: this.inputs, log: this.log,
        metrics: () => this.metrics.render(),
        health: () => ({ ...this.control.counts() }),
      });
      this.httpAddress = await this.http.listen();
      this.log.info({ http: `${this.httpAddress.host}:${this.httpAddress.port}` }, 'local API listening');
    }
    if (this.opts.metricsHttp) {
      this.metricsListener = new MetricsListener(this.metrics, () => ({ ...this.control.counts() }));
      this.metricsAddress = await this.metricsListener.listen(this.opts.metricsHttp.host, this.opts.metricsHttp.port);
      this.log.info({ metrics: `${this.metricsAddress.host}:${this.metricsAddress.port}` }, 'metrics listening');
    }
    await this.control.restoreActive(toRestore);
  }

  async stop(): Promise<void> {
    await this.control.shutdown();
    await this.http?.close();
    await this.metricsListener?.close();
  }

  static async loadConfigFile(file: string): Promise<Record<string, unknown>> {
    const text = await readFile(file, 'utf8');
    const v = JSON.parse(text.replace(/^\uFEFF/, ''));
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${file}: expected a JSON object of desired properties`);
    return v as Record<string, unknown>;
  }
}
