import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { ControlPlane } from './api/methods.js';
import { resolveSettings, type ModuleSettings } from './config/settings.js';
import { GraphStore } from './graph/store.js';
import { HttpApi } from './http/server.js';
import { EventBus } from './runtime/events.js';
import { InputRouter } from './runtime/inputs.js';
import { GraphRunner } from './runtime/graph-runtime.js';
import { nodeRegistry } from './nodes/registry.js';
import './nodes/all.js';
import { rootLogger, type Log } from './util/logger.js';
import { renderMetrics } from './runtime/metrics.js';

/**
 * Composition root of `lva-edge run`: settings → store → control plane → transports. Nothing here
 * has logic of its own beyond wiring and the shutdown order.
 */

export interface DaemonOptions {
  /** Desired properties (twin or --config file). */
  settings?: Record<string, unknown>;
  /** `null` disables the local API. */
  http?: { host: string; port: number } | null;
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
  private readonly runners = new Set<GraphRunner>();
  httpAddress?: { host: string; port: number };

  constructor(private readonly opts: DaemonOptions = {}) {
    this.log = opts.log ?? rootLogger();
    this.settings = resolveSettings(opts.settings ?? {}, { dataDir: opts.dataDir });
    this.bus = new EventBus(() => ({
      topic: this.settings.azureMediaServicesArmId ?? `/lva-edge/${os.hostname()}`,
      diagnosticsEventsOutputName: this.settings.diagnosticsEventsOutputName,
      operationalEventsOutputName: this.settings.operationalEventsOutputName,
    }));
    const registry = nodeRegistry();
    this.control = new ControlPlane({
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
  }

  async start(): Promise<void> {
    const toRestore = await this.control.load();
    if (this.opts.http !== null) {
      const { host, port } = this.opts.http ?? { host: '127.0.0.1', port: 7070 };
      this.http = new HttpApi({
        host, port, token: this.opts.token, control: this.control, bus: this.bus, inputs: this.inputs, log: this.log,
        metrics: () => renderMetrics(this.control, [...this.runners]),
        health: () => ({ ...this.control.counts() }),
      });
      this.httpAddress = await this.http.listen();
      this.log.info({ http: `${this.httpAddress.host}:${this.httpAddress.port}` }, 'local API listening');
    }
    await this.control.restoreActive(toRestore);
  }

  async stop(): Promise<void> {
    await this.control.shutdown();
    await this.http?.close();
  }

  static async loadConfigFile(file: string): Promise<Record<string, unknown>> {
    const text = await readFile(file, 'utf8');
    const v = JSON.parse(text.replace(/^\uFEFF/, ''));
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${file}: expected a JSON object of desired properties`);
    return v as Record<string, unknown>;
  }
}
