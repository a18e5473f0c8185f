import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pkg from 'azure-iot-device';
import type { Message as SdkMessage } from 'azure-iot-device';
import { LvaError } from '../api/errors.js';
import { METHOD_NAMES } from '../api/methods.js';
import type { Daemon } from '../daemon.js';
import type { EventLine } from '../runtime/events.js';
import type { Log } from '../util/logger.js';
import { errSummary, HubConnection, type HubCredentials, type MethodReply } from './hub-connection.js';
import { OutputQueue } from './output-queue.js';
import { checkDesired, describeError, desiredVersion, reportableSettings, reportedPatch } from './twin-settings.js';

const { Message } = pkg;

/**
 * lva-edge as an IoT Edge module: binds a HubConnection to the Daemon.
 *
 *   direct methods ──► daemon.control.invoke            (same handlers as the local HTTP API)
 *   input messages ──► daemon.inputs.deliver            (IoT Hub message source nodes)
 *   daemon.bus ──► OutputQueue ──► sendOutputEvent      (lva-spec §4; ordered, bounded while offline)
 *   twin desired ──► validate ──► daemon.updateSettings (rejected whole when invalid)
 *   counts/config/errors ──► twin reported properties
 *
 * Start-up: `connect()` reads the twin first, because `applicationDataDirectory` (where graphs are
 * persisted) is only honoured at start; then the caller builds the Daemon with `initialSettings` and
 * hands it to `start()`.
 */

/** IoT Hub's limit for a direct-method request or response payload. */
export const MAX_METHOD_PAYLOAD_BYTES = 128 * 1024;
export const DEFAULT_OUTPUT_BUFFER_EVENTS = 10_000;

export interface HubModuleOptions {
  credentials: HubCredentials;
  log: Log;
  /** Desired properties from `--config`; the twin's values win key by key. */
  baseSettings?: Record<string, unknown>;
  /** Output events kept while edgeHub is unreachable (oldest dropped beyond). */
  outputBufferEvents?: number;
  /** Cap for reconnect backoff (SDK retry policy and our reopen loop). */
  maxRetryDelayMs?: number;
  /** How often counts are re-checked for reported properties (changes by the local API). Default 10 s. */
  reportIntervalMs?: number;
  maxMethodPayloadBytes?: number;
  /** How long stop() waits for queued events to go out. Default 5 s. */
  stopFlushMs?: number;
}

interface QueuedEvent {
  line: EventLine;
  messageId: string;
}

interface LastError {
  code: string;
  message: string;
  detailCode?: string;
  target?: string;
  desiredVersion?: number;
  time: string;
}

const PERMANENT_SEND_ERRORS = new Set(['MessageTooLargeError', 'ArgumentError', 'FormatError', 'ReferenceError', 'TypeError', 'ArgumentOutOfRangeError']);

let cachedVersion: string | undefined;
export function moduleVersion(): string {
  if (!cachedVersion) {
    // Resolves to <package>/package.json from src/hub (tsx) and dist/hub (build).
    const pkgJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    cachedVersion = pkgJson.version;
  }
  return cachedVersion;
}

export class HubModule {
  readonly connection: HubConnection;
  readonly queue: OutputQueue<QueuedEvent>;
  private daemon?: Daemon;
  private readonly log: Log;
  private readonly base: Record<string, unknown>;
  private firstDesired?: Record<string, unknown>;
  private firstDesiredWaiters: Array<() => void> = [];
  /** Last desired document processed (JSON), to skip re-reads that changed nothing. */
  private lastProcessed?: string;
  /** Last valid twin settings (normalised, may contain secrets: never reported as is). */
  private lastGood: Record<string, unknown> = {};
  private appliedVersion?: number;
  private lastError?: LastError;
  private unsubscribe?: () => void;
  private injecting = false;
  private injected?: EventLine;
  private reportTimer?: NodeJS.Timeout;
  private reporting = false;
  private reportDirty = false;
  private lastReported?: Record<string, unknown>;
  private stopped = false;
  /** Input messages that arrived for an input no graph listens on. */
  unroutedInputs = 0;

  constructor(private readonly opts: HubModuleOptions) {
    this.log = opts.log;
    this.base = opts.baseSettings ?? {};
    const methods = new Map<string, (payload: unknown) => Promise<MethodReply>>();
    for (const name of METHOD_NAMES) methods.set(name, (payload) => this.invoke(name, payload));
    this.connection = new HubConnection(
      { credentials: opts.credentials, log: opts.log, maxRetryDelayMs: opts.maxRetryDelayMs },
      {
        methods,
        onInput: (inputName, msg) => this.onInput(inputName, msg),
        onDesired: (desired) => this.onDesired(desired),
        onConnected: () => this.scheduleReport(),
      },
    );
    this.queue = new OutputQueue<QueuedEvent>({
      limit: opts.outputBufferEvents ?? DEFAULT_OUTPUT_BUFFER_EVENTS,
      send: (e) => this.connection.sendOutputEvent(e.line.output!, toMessage(e)),
      isPermanent: (err) => PERMANENT_SEND_ERRORS.has((err as Error)?.name),
      onPermanentFailure: (e, err) => this.log.error({ err: errSummary(err), output: e.line.output, eventType: e.line.applicationProperties.eventType }, 'output event could not be sent; dropped'),
      onDrop: (e, total) => {
        if (total === 1 || total % 1000 === 0) {
          this.log.warn({ totalDropped: total, bufferLimit: opts.outputBufferEvents ?? DEFAULT_OUTPUT_BUFFER_EVENTS, eventType: e.line.applicationProperties.eventType }, 'IoT Edge hub unreachable and output buffer full: dropping oldest events');
        }
        this.scheduleReport();
      },
      onDropsEnded: (count, first, last) => this.dataDroppedNotice(count, first, last),
      onSendError: (err, attempt) => this.log.warn({ err: errSummary(err), attempt, queued: this.queue.length }, 'sending output event failed; will retry'),
      retryDelayMs: (attempt) => Math.min(opts.maxRetryDelayMs ?? 30_000, 250 * 2 ** Math.min(attempt, 10)),
    });
  }

  /**
   * Opens the hub connection (retrying until it works) and reads the module twin. Returns the settings
   * to construct the Daemon with: `--config` values overridden by valid twin desired properties.
   */
  async connect(): Promise<Record<string, unknown>> {
    await this.connection.open();
    if (this.stopped) return { ...this.base };
    if (!this.firstDesired) await new Promise<void>((resolve) => this.firstDesiredWaiters.push(resolve));
    const desired = this.firstDesired ?? {};
    this.lastProcessed = JSON.stringify(desired);
    const check = checkDesired(desired);
    if (check.ok) {
      this.lastGood = check.settings;
      this.appliedVersion = desiredVersion(desired);
      return { ...this.base, ...this.lastGood };
    }
    this.recordRejection(check.error, desired);
    // An invalid document is not applied, except its applicationDataDirectory (when a valid string):
    // starting on another directory would silently hide every persisted graph.
    const dir = Object.entries(desired).find(([k]) => k.toLowerCase() === 'applicationdatadirectory')?.[1];
    return { ...this.base, ...(typeof dir === 'string' && dir.length > 0 ? { applicationDataDirectory: dir } : {}) };
  }

  /** Binds the daemon (events, inputs, live settings, methods) and starts it. */
  async start(daemon: Daemon, startDaemon: () => Promise<void> = () => daemon.start()): Promise<void> {
    // Events produced while the daemon starts (restored instances) must reach the hub too.
    this.unsubscribe = daemon.bus.subscribe((line) => this.onEvent(line));
    daemon.addEventQueue('iotedge_outputs', () => this.queue.length);
    this.applyLogLevel(daemon, { ...this.base, ...this.lastGood });
    await startDaemon();
    this.daemon = daemon;
    if (this.lastError) this.publishRuntimeError(this.lastError);
    // A patch may have arrived while the daemon was starting.
    const latest = this.latestDesired;
    if (latest !== undefined) this.onDesired(latest);
    this.scheduleReport();
    this.reportTimer = setInterval(() => this.scheduleReport(), this.opts.reportIntervalMs ?? 10_000);
    this.reportTimer.unref();
  }

  /** Flushes queued events (bounded wait), reports a last time, closes the connection. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const w of this.firstDesiredWaiters.splice(0)) w();
    this.unsubscribe?.();
    if (this.reportTimer) clearInterval(this.reportTimer);
    if (this.connection.isOpen) {
      const drained = await this.queue.drain(this.opts.stopFlushMs ?? 5000);
      if (!drained) this.log.warn({ queued: this.queue.length }, 'stopping with output events not yet sent');
    }
    this.queue.close();
    await this.connection.close();
  }

  get stats(): { queued: number; sent: number; dropped: number; failed: number } {
    return { queued: this.queue.length, sent: this.queue.sent, dropped: this.queue.dropped, failed: this.queue.failed };
  }

  // ---- direct methods ---------------------------------------------------------------------------

  private async invoke(method: string, payload: unknown): Promise<MethodReply> {
    const max = this.opts.maxMethodPayloadBytes ?? MAX_METHOD_PAYLOAD_BYTES;
    const daemon = this.daemon;
    if (!daemon || this.stopped) {
      return { status: 503, payload: new LvaError(503, 'ServerBusy', this.stopped ? 'The module is shutting down.' : 'The module is starting; retry shortly.').toODataBody() };
    }
    const size = Buffer.byteLength(JSON.stringify(payload ?? null));
    if (size > max) {
      const message = `The ${method} payload is ${size} bytes; IoT Hub direct-method payloads are limited to ${max} bytes.`;
      return { status: 413, payload: new LvaError(413, 'BadRequest', message, [{ code: 'PayloadTooLarge', message }]).toODataBody() };
    }
    const r = await daemon.control.invoke(method, payload);
    this.scheduleReport();
    const replySize = Buffer.byteLength(JSON.stringify(r.payload ?? null));
    if (replySize > max) {
      const message = `${method} completed with status ${r.status}, but its reply (${replySize} bytes) exceeds the ${max}-byte direct-method limit; read the resource through the local API instead.`;
      this.log.warn({ method, status: r.status, replySize }, 'direct method reply too large for IoT Hub');
      return { status: 413, payload: new LvaError(413, 'BadRequest', message, [{ code: 'ResponsePayloadTooLarge', message }]).toODataBody() };
    }
    return r;
  }

  // ---- input messages ---------------------------------------------------------------------------

  private onInput(inputName: string, msg: SdkMessage): void {
    const daemon = this.daemon;
    if (!daemon) return;
    const applicationProperties: Record<string, string> = {};
    const list = (msg.properties as unknown as { propertyList?: Array<{ key: string; value: string }> } | undefined)?.propertyList ?? [];
    for (const p of list) applicationProperties[p.key] = String(p.value);
    const n = daemon.inputs.deliver({ inputName, body: decodeBody(msg), applicationProperties, receivedAt: new Date() });
    if (n === 0) {
      this.unroutedInputs++;
      this.log.debug({ inputName }, 'input message for an input no active graph listens on');
    }
  }

  // ---- output events ----------------------------------------------------------------------------

  private onEvent(line: EventLine): void {
    if (this.injecting) {
      this.injected = line;
      return;
    }
    if (!line.output || this.stopped) return;
    this.queue.push({ line, messageId: randomUUID() });
  }

  private dataDroppedNotice(count: number, first: QueuedEvent, last: QueuedEvent): QueuedEvent | null {
    const daemon = this.daemon;
    if (!daemon) return null;
    this.injecting = true;
    this.injected = undefined;
    try {
      daemon.bus.publish({
        eventClass: 'Diagnostics', name: 'DataDropped', namespace: 'Edge', subject: '/',
        body: {
          dataType: 'Event',
          droppedEventCount: count,
          totalDroppedEventCount: this.queue.dropped,
          bufferLimit: this.opts.outputBufferEvents ?? DEFAULT_OUTPUT_BUFFER_EVENTS,
          firstDroppedEventTime: first.line.applicationProperties.eventTime,
          lastDroppedEventTime: last.line.applicationProperties.eventTime,
          reason: 'IoT Edge hub was unreachable and the output buffer was full; the oldest events were dropped.',
        },
      });
    } finally {
      this.injecting = false;
    }
    const line = this.injected as EventLine | undefined;
    this.injected = undefined;
    this.log.warn({ dropped: count, totalDropped: this.queue.dropped }, 'output events were dropped while the IoT Edge hub was unreachable');
    return line?.output ? { line, messageId: randomUUID() } : null;
  }

  // ---- module twin ------------------------------------------------------------------------------

  private latestDesired?: Record<string, unknown>;

  private onDesired(desired: Record<string, unknown>): void {
    this.latestDesired = desired;
    if (!this.firstDesired) {
      this.firstDesired = desired;
      for (const w of this.firstDesiredWaiters.splice(0)) w();
      return;
    }
    const daemon = this.daemon;
    if (!daemon) return; // applied by start()
    const json = JSON.stringify(desired);
    if (json === this.lastProcessed) return;
    this.lastProcessed = json;
    const version = desiredVersion(desired);
    const check = checkDesired(desired);
    if (!check.ok) {
      this.recordRejection(check.error, desired);
      this.publishRuntimeError(this.lastError!);
      this.scheduleReport();
      return;
    }
    const before = daemon.currentSettings.applicationDataDirectory;
    daemon.updateSettings({ ...this.base, ...check.settings });
    this.applyLogLevel(daemon, { ...this.base, ...check.settings });
    this.lastGood = check.settings;
    this.appliedVersion = version;
    this.lastError = undefined;
    if (typeof check.settings.applicationDataDirectory === 'string' && check.settings.applicationDataDirectory !== before &&
      daemon.currentSettings.applicationDataDirectory === before) {
      this.log.warn('applicationDataDirectory changed in the module twin; it takes effect at the next module start');
    }
    this.log.info({ desiredVersion: version }, 'module twin desired properties applied');
    this.scheduleReport();
  }

  private recordRejection(error: LvaError, desired: Record<string, unknown>): void {
    this.lastError = { ...describeError(error), desiredVersion: desiredVersion(desired), time: new Date().toISOString() };
    this.log.warn({ error: this.lastError }, 'module twin desired properties rejected; keeping the last valid configuration');
  }

  private publishRuntimeError(e: LastError): void {
    this.daemon?.bus.publish({
      eventClass: 'Diagnostics', name: 'RuntimeError', namespace: 'Edge', subject: '/',
      body: {
        code: 'InvalidDesiredProperties', message: e.message,
        ...(e.detailCode ? { details: [{ code: e.detailCode, message: e.message, ...(e.target ? { target: e.target } : {}) }] } : {}),
        desiredVersion: e.desiredVersion ?? null,
      },
    });
  }

  private applyLogLevel(daemon: Daemon, settings: Record<string, unknown>): void {
    daemon.applyLogSettings(settings); // logLevel and logCategories, to every logger of the daemon
  }

  // ---- reported properties ----------------------------------------------------------------------

  private reported(): Record<string, unknown> {
    const daemon = this.daemon;
    const counts = daemon?.control.counts();
    const effective = { ...this.base, ...this.lastGood, ...(daemon ? { applicationDataDirectory: daemon.currentSettings.applicationDataDirectory } : {}) };
    return {
      moduleVersion: moduleVersion(),
      apiVersion: '2.0',
      configuration: reportableSettings(effective),
      ...(this.appliedVersion !== undefined ? { desiredVersion: this.appliedVersion } : {}),
      ...(this.lastError ? { lastError: this.lastError } : {}),
      ...(counts ? { graphTopologies: counts.topologies, graphInstances: counts.instances, activeGraphInstances: counts.active } : {}),
      droppedOutputEvents: this.queue.dropped,
    };
  }

  private scheduleReport(): void {
    if (this.stopped || !this.daemon) return;
    if (this.reporting) {
      this.reportDirty = true;
      return;
    }
    this.reporting = true;
    void this.reportLoop().finally(() => {
      this.reporting = false;
    });
  }

  private async reportLoop(): Promise<void> {
    do {
      this.reportDirty = false;
      const next = this.reported();
      this.lastReported ??= this.connection.reportedSnapshot();
      const patch = reportedPatch(this.lastReported, next);
      if (Object.keys(patch).length === 0) continue;
      try {
        await this.connection.updateReported(patch);
        this.lastReported = next;
      } catch (err) {
        if (this.stopped) return;
        this.log.warn({ err: errSummary(err) }, 'could not update reported properties; will retry');
        this.lastReported = undefined; // re-read what the hub has before the next attempt
        return; // the periodic timer or the next change retries
      }
    } while (this.reportDirty && !this.stopped);
  }
}

function toMessage(e: QueuedEvent): SdkMessage {
  const msg = new Message(JSON.stringify(e.line.body));
  for (const [k, v] of Object.entries(e.line.applicationProperties)) msg.properties.add(k, String(v));
  msg.contentType = 'application/json';
  msg.contentEncoding = 'utf-8';
  msg.messageId = e.messageId;
  return msg;
}

/** JSON when the message says so (or carries no content type and parses); otherwise UTF-8 text. */
function decodeBody(msg: SdkMessage): unknown {
  const data = msg.data as unknown;
  const buf = Buffer.isBuffer(data) ? data : typeof data === 'string' ? Buffer.from(data, 'utf8') : data === undefined || data === null ? Buffer.alloc(0) : Buffer.from(String(data));
  const ct = (msg.contentType ?? '').toLowerCase();
  const text = buf.toString('utf8');
  if (ct.includes('json') || ct === '') {
    try {
      return JSON.parse(text);
    } catch {
      if (ct.includes('json')) return text;
    }
  }
  if (ct.startsWith('text/') || ct === '' || Buffer.from(text, 'utf8').equals(buf)) return text;
  return buf;
}
