import { readFileSync } from 'node:fs';
import pkg from 'azure-iot-device';
import mqttPkg from 'azure-iot-device-mqtt';
import type { Message as SdkMessage, ModuleClient as SdkModuleClient, Twin } from 'azure-iot-device';
import type { Log } from '../util/logger.js';

const { ModuleClient } = pkg;
const { Mqtt } = mqttPkg;

/**
 * The IoT Edge link: one azure-iot-device ModuleClient over MQTT, plus what the SDK does not do by
 * itself.
 *
 * - Credentials: `ModuleClient.fromEnvironment(Mqtt)` on IoT Edge (IOTEDGE_* variables: workload API
 *   for the trust bundle and SAS signing); otherwise a module connection string (`--connection-string`
 *   or `EdgeHubConnectionString`) with the edgeHub CA from `EdgeModuleCACertificateFile` (Node itself
 *   honours NODE_EXTRA_CA_CERTS).
 * - Reconnect, two layers: the SDK's retry policy re-establishes the MQTT link and its subscriptions
 *   after a drop; if the SDK gives up (client `disconnect` event) or the first open fails, our own loop
 *   closes the client and builds a new one with capped exponential backoff, forever.
 * - Desired properties: the SDK fires `properties.desired` with the full document on GET and with a
 *   patch afterwards, keeping the merged document in `twin.properties.desired`; we always hand the
 *   owner the merged document. After a transient drop the twin is read again (patches sent while the
 *   link was down are not replayed by the hub).
 * - Secrets (connection string, keys) are never logged: only host, device and module ids are.
 */

export type HubCredentials =
  | { kind: 'environment' }
  | { kind: 'connectionString'; connectionString: string; ca?: string };

/**
 * Which credentials `lva-edge run` uses: `--connection-string` first, then `EdgeHubConnectionString`,
 * then the IoT Edge environment (IOTEDGE_WORKLOADURI…). Null = no IoT Edge transport.
 */
export function hubCredentialsFrom(opts: { connectionString?: string; env?: NodeJS.ProcessEnv }): HubCredentials | null {
  const env = opts.env ?? process.env;
  const cs = opts.connectionString || env.EdgeHubConnectionString;
  if (cs) {
    const caFile = env.EdgeModuleCACertificateFile;
    return { kind: 'connectionString', connectionString: cs, ...(caFile ? { ca: readFileSync(caFile, 'utf8') } : {}) };
  }
  if (env.IOTEDGE_WORKLOADURI && env.IOTEDGE_DEVICEID && env.IOTEDGE_MODULEID) return { kind: 'environment' };
  return null;
}

/** Host/device/module of a connection string, for logs (never the key). */
export function describeConnectionString(cs: string): { host?: string; gateway?: string; deviceId?: string; moduleId?: string } {
  const parts = new Map(cs.split(';').map((p) => {
    const i = p.indexOf('=');
    return [p.slice(0, i).toLowerCase(), p.slice(i + 1)] as const;
  }));
  return { host: parts.get('hostname'), gateway: parts.get('gatewayhostname'), deviceId: parts.get('deviceid'), moduleId: parts.get('moduleid') };
}

export interface MethodReply {
  status: number;
  payload: unknown;
}

export interface HubConnectionHandlers {
  methods: Map<string, (payload: unknown) => Promise<MethodReply>>;
  onInput: (inputName: string, message: SdkMessage) => void;
  onDesired: (desired: Record<string, unknown>) => void;
  onConnected?: (reconnect: boolean) => void;
}

export interface HubConnectionOptions {
  credentials: HubCredentials;
  log: Log;
  /** Cap of the SDK's per-operation retry delay and of our reopen backoff (default: SDK policy, 60 s). */
  maxRetryDelayMs?: number;
}

/** How long a rebuild waits for an output event in flight (longer than the SDK's 10 s retry cap). */
const SEND_SETTLE_MS = 15_000;

/** Error names the SDK treats as transient (its DefaultErrorFilter). */
const TRANSIENT = new Set(['NotConnectedError', 'InternalServerError', 'ServiceUnavailableError', 'ThrottlingError', 'TimeoutError']);

interface RetryPolicyLike {
  shouldRetry(err: Error): boolean;
  nextRetryTimeout(retryCount: number, throttled: boolean): number;
}

/**
 * The policy object every SDK operation of one client holds. While opening: no retries (our loop does
 * the backoff, and close() never waits behind minutes of SDK retries). Steady: the SDK's policy. Retired
 * (the client is being replaced): no further retries, so a pending operation cannot reconnect the old
 * client under the same client id as its successor.
 */
class ClientRetryPolicy implements RetryPolicyLike {
  mode: 'opening' | 'steady' | 'retired' = 'opening';
  constructor(private readonly steady: RetryPolicyLike) {}
  shouldRetry(err: Error): boolean {
    return this.mode === 'steady' && this.steady.shouldRetry(err);
  }
  nextRetryTimeout(retryCount: number, throttled: boolean): number {
    return this.steady.nextRetryTimeout(retryCount, throttled);
  }
}

/** The SDK's exponential backoff with jitter, with a configurable cap (the SDK's own cap is 10 s). */
class CappedBackoff {
  constructor(private readonly maxMs: number) {}
  shouldRetry(err: Error): boolean {
    return TRANSIENT.has(err?.name ?? (err as { constructor?: { name?: string } })?.constructor?.name ?? '');
  }
  nextRetryTimeout(retryCount: number, throttled: boolean): number {
    if (retryCount === 0 && !throttled) return 0;
    const base = Math.min(this.maxMs, 100 * 2 ** Math.min(retryCount, 16));
    return Math.round(base * (0.75 + Math.random() * 0.25));
  }
}

export class HubConnection {
  private client?: SdkModuleClient;
  private twin?: Twin;
  private closed = false;
  private opening?: Promise<void>;
  private readyWaiters: Array<{ resolve: (c: SdkModuleClient) => void; reject: (err: Error) => void }> = [];
  private sleepers = new Set<() => void>();
  private generation = 0;
  private readonly sendsInFlight = new Set<Promise<unknown>>();
  private readonly twinAborts = new Set<() => void>();
  private readonly policies = new WeakMap<SdkModuleClient, ClientRetryPolicy>();
  /** Connections established so far (first open = 1). */
  connects = 0;
  /** Reconnects after which subscriptions were renewed and the twin re-read. */
  refreshes = 0;

  constructor(private readonly opts: HubConnectionOptions, private readonly handlers: HubConnectionHandlers) {}

  /** True while a client is open (the link itself may be down while the SDK retries). */
  get isOpen(): boolean {
    return this.client !== undefined;
  }

  /** Opens the connection, retrying until it succeeds or close() is called. */
  open(): Promise<void> {
    this.opening ??= this.openLoop().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  /** Resolves with the current client once one is open. */
  private ready(): Promise<SdkModuleClient> {
    if (this.closed) return Promise.reject(new Error('hub connection closed'));
    if (this.client) return Promise.resolve(this.client);
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  async sendOutputEvent(output: string, message: SdkMessage): Promise<void> {
    const client = await this.ready();
    const p = client.sendOutputEvent(output, message);
    this.sendsInFlight.add(p);
    try {
      await p;
    } finally {
      this.sendsInFlight.delete(p);
    }
  }

  /** Reported-properties patch; fails (to be retried by the caller) if the client is replaced meanwhile. */
  async updateReported(patch: Record<string, unknown>): Promise<void> {
    await this.ready();
    const twin = this.twin;
    if (!twin) throw new Error('twin not available');
    await new Promise<void>((resolve, reject) => {
      const abort = () => reject(new Error('the hub client was replaced before the twin update completed'));
      this.twinAborts.add(abort);
      twin.properties.reported.update(patch, (err?: Error) => {
        this.twinAborts.delete(abort);
        if (err) reject(err);
        else resolve();
      });
    });
  }

  private async afterReconnect(client: SdkModuleClient, twin: Twin): Promise<void> {
    try {
      const cred = this.opts.credentials;
      await resubscribeAll(client, cred.kind === 'connectionString' ? describeConnectionString(cred.connectionString)
        : { deviceId: process.env.IOTEDGE_DEVICEID, moduleId: process.env.IOTEDGE_MODULEID });
      // Abandon twin requests sent on the lost link (their responses will never come).
      for (const abort of [...this.twinAborts]) abort();
      await twin.get();
      this.refreshes++;
      this.handlers.onConnected?.(true);
    } catch (err) {
      this.opts.log.warn({ err: errSummary(err) }, 'could not refresh the module twin after reconnecting');
    }
  }

  /** Replaces a client the SDK gave up on by a new one. */
  private async rebuild(old: SdkModuleClient): Promise<void> {
    if (this.client !== old || this.closed) return;
    this.client = undefined;
    this.twin = undefined;
    this.generation++;
    const policy = this.policies.get(old);
    if (policy) policy.mode = 'retired';
    for (const abort of [...this.twinAborts]) abort();
    this.twinAborts.clear();
    // An output event being sent right now completes on the link that just came back; closing the
    // client under it would make the SDK's retry reconnect the old client (same client id as the new
    // one). Twin requests are abandoned instead: they cannot reconnect anything.
    if (this.sendsInFlight.size > 0) {
      await Promise.race([
        Promise.allSettled([...this.sendsInFlight]),
        new Promise((resolve) => setTimeout(resolve, SEND_SETTLE_MS).unref()),
      ]);
    }
    await this.closeClient(old);
    await this.open();
  }

  /** The reported properties as the hub last returned them (without `$version`/`$metadata`). */
  reportedSnapshot(): Record<string, unknown> {
    const rep = (this.twin?.properties.reported ?? {}) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(rep).filter(([k, v]) => !k.startsWith('$') && typeof v !== 'function'));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const abort of [...this.twinAborts]) abort();
    for (const wake of [...this.sleepers]) wake();
    for (const w of this.readyWaiters.splice(0)) w.reject(new Error('hub connection closed'));
    const c = this.client;
    this.client = undefined;
    this.twin = undefined;
    if (c) await this.closeClient(c);
    await this.opening?.catch(() => {});
  }

  // ---- internals --------------------------------------------------------------------------------

  private backoff(attempt: number): number {
    const cap = this.opts.maxRetryDelayMs ?? 60_000;
    return Math.round(Math.min(cap, 500 * 2 ** Math.min(attempt, 16)) * (0.75 + Math.random() * 0.25));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }

  private async openLoop(): Promise<void> {
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        await this.openOnce();
        return;
      } catch (err) {
        if (this.closed) return;
        const delay = this.backoff(attempt);
        this.opts.log.warn({ err: errSummary(err), attempt: attempt + 1, retryInMs: delay }, 'IoT Edge hub connection failed; retrying');
        await this.sleep(delay);
      }
    }
  }

  private async createClient(): Promise<SdkModuleClient> {
    const cred = this.opts.credentials;
    if (cred.kind === 'environment') {
      this.opts.log.info({ deviceId: process.env.IOTEDGE_DEVICEID, moduleId: process.env.IOTEDGE_MODULEID, gateway: process.env.IOTEDGE_GATEWAYHOSTNAME }, 'connecting to IoT Edge hub (IoT Edge environment)');
      return ModuleClient.fromEnvironment(Mqtt);
    }
    this.opts.log.info(describeConnectionString(cred.connectionString), 'connecting to IoT Edge hub (connection string)');
    const client = ModuleClient.fromConnectionString(cred.connectionString, Mqtt);
    if (cred.ca) await client.setOptions({ ca: cred.ca });
    return client;
  }

  private async openOnce(): Promise<void> {
    const client = await this.createClient();
    const generation = ++this.generation;
    const current = () => generation === this.generation && !this.closed;
    const sdkPolicy = (client as unknown as { _retryPolicy: RetryPolicyLike })._retryPolicy;
    const policy = new ClientRetryPolicy(this.opts.maxRetryDelayMs !== undefined ? new CappedBackoff(this.opts.maxRetryDelayMs) : sdkPolicy);
    this.policies.set(client, policy);
    client.setRetryPolicy(policy as never);
    client.on('error', (err: Error) => {
      if (current()) this.opts.log.warn({ err: errSummary(err) }, 'IoT Edge hub client error');
    });
    client.on('disconnect', (reason: unknown) => {
      if (!current() || this.client !== client) return;
      this.opts.log.warn({ err: errSummary((reason as { transportObj?: unknown })?.transportObj ?? reason) }, 'IoT Edge hub link lost and not recovered by the SDK; reopening');
      void this.rebuild(client);
    });
    try {
      await client.open();
      if (!current()) throw new Error('hub connection closed while opening');
      policy.mode = 'steady';
      // Registering the listener subscribes to the module's inputs (after open: with the steady policy).
      client.on('inputMessage', (inputName: string, msg: SdkMessage) => {
        if (current()) this.handlers.onInput(inputName, msg);
        // Input messages are acknowledged (QoS 1) whatever the graph does with them.
        client.complete(msg).catch(() => {});
      });
      for (const [name, handler] of this.handlers.methods) {
        client.onMethod(name, (request, response) => {
          void (async () => {
            let reply: MethodReply;
            try {
              reply = await handler(request!.payload);
            } catch (err) {
              this.opts.log.error({ err: errSummary(err), method: name }, 'direct method handler failed');
              reply = { status: 500, payload: { error: { code: 'InternalServerError', message: `Method '${name}' failed.` } } };
            }
            try {
              await response!.send(reply.status, reply.payload as never);
            } catch (err) {
              this.opts.log.warn({ err: errSummary(err), method: name }, 'could not send direct method response');
            }
          })();
        });
      }
      const twin = await client.getTwin();
      if (!current()) throw new Error('superseded');
      twin.on('properties.desired', () => {
        if (current()) this.handlers.onDesired(structuredClone(twin.properties.desired as Record<string, unknown>));
      });
      // The SDK re-establishes the link on its own and re-subscribes methods and inputs. Its twin topics
      // ($iothub/twin/res/#, desired PATCH) are only restored if the broker kept our session (clean=false):
      // after an edgeHub restart with a fresh store they are silently gone. So subscribe them again, then
      // read the twin (patches sent while the link was down are not replayed by the hub).
      client.on('connect', () => {
        if (!current() || this.client !== client) return;
        this.connects++;
        this.opts.log.info('IoT Edge hub link re-established');
        void this.afterReconnect(client, twin);
      });
      this.client = client;
      this.twin = twin;
      // A fresh client always hands over the full desired document (the SDK's own first event only
      // fires when the document is non-empty; duplicates are ignored by the owner).
      this.handlers.onDesired(structuredClone(twin.properties.desired as Record<string, unknown>));
      this.connects++;
      this.opts.log.info('IoT Edge hub connected');
      this.handlers.onConnected?.(this.connects > 1);
      for (const w of this.readyWaiters.splice(0)) w.resolve(client);
    } catch (err) {
      await this.closeClient(client);
      throw err;
    }
  }

  private async closeClient(client: SdkModuleClient): Promise<void> {
    const policy = this.policies.get(client);
    if (policy) policy.mode = 'retired';
    client.removeAllListeners('disconnect');
    try {
      await client.close();
    } catch {
      // closing a broken client may fail; it is discarded anyway
    }
  }
}

/**
 * Re-subscribes every topic the module needs on the client's MQTT connection. The SDK tracks its
 * subscriptions in its own state machines, which survive a reconnect even when the broker did not keep
 * the session (sessionPresent=false after an edgeHub restart with a fresh store): the twin topics are
 * then never renewed, and methods/inputs not reliably. There is no public API to renew them, so this
 * reaches the transport's MQTT layer (azure-iot-device-mqtt 1.16: `_transport._mqtt.subscribe`).
 * SUBSCRIBE is idempotent on the broker. If the SDK's internals change, this fails and is logged.
 */
async function resubscribeAll(client: SdkModuleClient, ids: { deviceId?: string; moduleId?: string }): Promise<void> {
  const mqttBase = (client as unknown as { _transport?: { _mqtt?: { subscribe?: (t: string, o: object, cb: (err?: Error) => void) => void } } })._transport?._mqtt;
  if (typeof mqttBase?.subscribe !== 'function') throw new Error('the SDK transport offers no MQTT subscribe; subscriptions not renewed');
  const topics: Array<[string, 0 | 1]> = [
    ['$iothub/twin/res/#', 0], ['$iothub/twin/PATCH/properties/desired/#', 0], ['$iothub/methods/POST/#', 0],
    ...(ids.deviceId && ids.moduleId ? [[`devices/${ids.deviceId}/modules/${ids.moduleId}/inputs/#`, 1] as [string, 1]] : []),
  ];
  for (const [topic, qos] of topics) {
    await new Promise<void>((resolve, reject) => mqttBase.subscribe!(topic, { qos }, (err?: Error) => (err ? reject(err) : resolve())));
  }
}

/** Error name and message only: SDK errors can carry transport objects (and, in theory, credentials). */
export function errSummary(err: unknown): { name?: string; message?: string } {
  if (err instanceof Error) return { name: err.name, message: redactSecrets(err.message) };
  return { message: redactSecrets(String(err)) };
}

function redactSecrets(text: string): string {
  return text.replace(/(SharedAccessKey|SharedAccessSignature|sig)=[^;&\s]+/gi, '$1=***');
}
