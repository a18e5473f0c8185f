// IoT Hub side of the IoT Edge transport tests: a real MQTT broker (aedes, in process) with TLS on
// <127.0.0.X>:8883 — the port the azure-iot-device SDK always dials — and a hub simulator that plays
// IoT Hub/edgeHub over a plain MQTT listener on the same address: module twin GET/PATCH, direct methods,
// input messages, and capture of output events (wire format: shared/docs/environment.md §4, App. C).
//
//   const env = await startHubEnv();            // certs + broker + simulator, unique loopback address
//   after(() => env.close());
//   env.connectionString                        // HostName=127.0.0.X;DeviceId=…;ModuleId=…;SharedAccessKey=…
//   await env.sim.invoke('GraphTopologyList', { '@apiVersion': '2.0' })
//   await env.broker.stop(); await env.broker.start();   // an edgeHub outage
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';

export interface TestCerts {
  dir: string;
  caFile: string;
  ca: string;
  key: string;
  cert: string;
}

/** A throwaway CA and a server certificate for localhost and every 127.0.0.2–254 (openssl). */
export function makeTestCerts(): TestCerts {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lva-hub-certs-'));
  const f = (n: string) => path.join(dir, n);
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=lva-edge test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost']);
  const ips = Array.from({ length: 253 }, (_, i) => `IP:127.0.0.${i + 2}`).join(',');
  writeFileSync(f('server.ext'), `subjectAltName=DNS:localhost,IP:127.0.0.1,${ips}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`);
  run(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('server.ext')]);
  return { dir, caFile: f('ca.pem'), ca: readFileSync(f('ca.pem'), 'utf8'), key: readFileSync(f('server.key'), 'utf8'), cert: readFileSync(f('server.pem'), 'utf8') };
}

function listen(server: net.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function closeServer(server: net.Server | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * aedes with TLS on host:8883 (the module) and plain MQTT on host:plainPort (the simulator). stop() closes
 * both listeners and every connection; start() brings the broker back on the same address and ports,
 * plain listener first so the simulator is subscribed again before the module can reconnect.
 */
export class TestBroker {
  host = '';
  plainPort = 0;
  private broker?: Aedes;
  private tlsServer?: tls.Server;
  private plainServer?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  /** Client ids seen in CONNECT (module: `<device>/<module>`). */
  readonly connects: string[] = [];
  /** On restart, the TLS listener opens only once a client with this id prefix has subscribed again. */
  waitForSubscriberPrefix = 'hub-sim-';

  constructor(private readonly certs: TestCerts) {}

  get running(): boolean {
    return this.broker !== undefined;
  }

  private track = (socket: net.Socket) => {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  };

  async start(): Promise<void> {
    const broker = await Aedes.createBroker();
    broker.on('client', (c) => this.connects.push(c.id));
    const simSubscribed = new Promise<void>((resolve) => {
      broker.on('subscribe', (_subs, client) => {
        if (client?.id.startsWith(this.waitForSubscriberPrefix)) resolve();
      });
    });
    this.broker = broker;
    const plain = net.createServer((s) => broker.handle(s));
    const secure = tls.createServer({ key: this.certs.key, cert: this.certs.cert }, (s) => broker.handle(s));
    // Raw TCP sockets, tracked from accept (also those still in the TLS handshake), so stop() can cut them.
    plain.on('connection', this.track);
    secure.on('connection', this.track);
    if (!this.host) {
      // A loopback address of our own, so that port 8883 is ours (other test files run in parallel).
      for (let attempt = 0; ; attempt++) {
        const host = `127.0.0.${2 + Math.floor(Math.random() * 253)}`;
        try {
          await listen(secure, 8883, host);
          this.host = host;
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt > 50) throw err;
        }
      }
      await listen(plain, 0, this.host);
      this.plainPort = (plain.address() as net.AddressInfo).port;
    } else {
      await listen(plain, this.plainPort, this.host);
      await simSubscribed;
      await listen(secure, 8883, this.host);
    }
    this.plainServer = plain;
    this.tlsServer = secure;
  }

  async stop(): Promise<void> {
    const broker = this.broker;
    this.broker = undefined;
    const closing = [closeServer(this.tlsServer), closeServer(this.plainServer)];
    for (const s of this.sockets) s.destroy();
    await Promise.all(closing);
    this.tlsServer = undefined;
    this.plainServer = undefined;
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
  }
}

export interface CapturedEvent {
  output: string;
  messageId: string;
  contentType: string;
  contentEncoding: string;
  applicationProperties: Record<string, string>;
  body: any;
  topic: string;
}

export interface MethodResponse {
  status: number;
  payload: any;
}

/** Plays IoT Hub for one module over the broker's plain listener (unique client id per simulator). */
export class HubSimulator {
  readonly twin: { desired: Record<string, unknown>; reported: Record<string, unknown> };
  readonly events: CapturedEvent[] = [];
  /** Every reported-properties PATCH body, in order. */
  readonly reportedPatches: Array<Record<string, unknown>> = [];
  private client?: MqttClient;
  private rid = 0;
  private readonly pending = new Map<string, (r: MethodResponse) => void>();
  private readonly waiters = new Set<() => void>();
  private subscribedWaiters: Array<() => void> = [];
  subscribed = false;

  constructor(private readonly broker: TestBroker, readonly deviceId: string, readonly moduleId: string, desired: Record<string, unknown> = {}) {
    this.twin = { desired: { ...desired, $version: 1 }, reported: { $version: 1 } };
  }

  async connect(): Promise<void> {
    const c = mqtt.connect(`mqtt://${this.broker.host}:${this.broker.plainPort}`, {
      clientId: `hub-sim-${randomUUID()}`, protocolVersion: 4, clean: true, reconnectPeriod: 200,
    });
    this.client = c;
    c.on('error', () => {});
    c.on('close', () => {
      this.subscribed = false;
    });
    c.on('connect', () => {
      c.subscribe(['$iothub/twin/GET/#', '$iothub/twin/PATCH/properties/reported/#', '$iothub/methods/res/#',
        `devices/${this.deviceId}/modules/${this.moduleId}/messages/events/#`], { qos: 1 }, (err) => {
        if (err) return;
        this.subscribed = true;
        for (const w of this.subscribedWaiters.splice(0)) w();
      });
    });
    c.on('message', (topic, buf) => this.onMessage(topic, buf));
    await this.whenSubscribed();
  }

  whenSubscribed(): Promise<void> {
    if (this.subscribed) return Promise.resolve();
    return new Promise((resolve) => this.subscribedWaiters.push(resolve));
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  private onMessage(topic: string, buf: Buffer): void {
    let m: RegExpMatchArray | null;
    if ((m = topic.match(/^\$iothub\/twin\/GET\/\?\$rid=(.+)$/))) {
      this.client!.publish(`$iothub/twin/res/200/?$rid=${m[1]}`, JSON.stringify(this.twin));
    } else if ((m = topic.match(/^\$iothub\/twin\/PATCH\/properties\/reported\/\?\$rid=([^&]+)/))) {
      const patch = JSON.parse(buf.toString('utf8')) as Record<string, unknown>;
      this.reportedPatches.push(patch);
      mergePatch(this.twin.reported, patch);
      this.twin.reported.$version = (this.twin.reported.$version as number) + 1;
      this.client!.publish(`$iothub/twin/res/204/?$rid=${m[1]}&$version=${this.twin.reported.$version}`, '');
      this.notify();
    } else if ((m = topic.match(/^\$iothub\/methods\/res\/(\d+)\/\?\$rid=([^&]+)/))) {
      const resolve = this.pending.get(m[2]!);
      this.pending.delete(m[2]!);
      const text = buf.toString('utf8');
      resolve?.({ status: Number(m[1]), payload: text === '' ? null : JSON.parse(text) });
    } else if ((m = topic.match(/^devices\/[^/]+\/modules\/[^/]+\/messages\/events\/(.*)$/))) {
      const props = Object.fromEntries(new URLSearchParams(m[1]!.replace(/\/$/, '')));
      const applicationProperties: Record<string, string> = {};
      for (const [k, v] of Object.entries(props)) if (!k.startsWith('$.')) applicationProperties[k] = v;
      const text = buf.toString('utf8');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        /* not JSON */
      }
      this.events.push({
        output: props['$.on'] ?? '', messageId: props['$.mid'] ?? '', contentType: props['$.ct'] ?? '',
        contentEncoding: props['$.ce'] ?? '', applicationProperties, body, topic,
      });
      this.notify();
    }
  }

  /** A direct method call; resolves with the module's reply, or 'timeout' (what IoT Hub reports for no handler). */
  invoke(method: string, payload: unknown, timeoutMs = 60_000): Promise<MethodResponse | 'timeout'> {
    const rid = String(++this.rid);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(rid);
        resolve('timeout');
      }, timeoutMs);
      this.pending.set(rid, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.client!.publish(`$iothub/methods/POST/${method}/?$rid=${rid}`, typeof payload === 'string' ? payload : JSON.stringify(payload));
    });
  }

  /** Merges a desired patch into the twin and pushes it to the module (null deletes, as IoT Hub does). */
  patchDesired(patch: Record<string, unknown>): void {
    mergePatch(this.twin.desired, patch);
    const version = (this.twin.desired.$version as number) + 1;
    this.twin.desired.$version = version;
    this.client!.publish('$iothub/twin/PATCH/properties/desired/?$version=' + version, JSON.stringify({ ...patch, $version: version }));
  }

  /** An input message routed to the module's input `inputName`. */
  sendInput(inputName: string, body: unknown, applicationProperties: Record<string, string> = {}, contentType = 'application/json'): void {
    // encodeURIComponent, not URLSearchParams: a '+' (its encoding of a space) is an MQTT wildcard.
    const props = Object.entries({ ...applicationProperties, '$.ct': contentType, '$.ce': 'utf-8', '$.mid': randomUUID() })
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&').replace(/\$/g, '%24');
    const topic = `devices/${this.deviceId}/modules/${this.moduleId}/inputs/${inputName}/${props}`;
    this.client!.publish(topic, typeof body === 'string' ? body : JSON.stringify(body), { qos: 1 });
  }

  /** Resolves once `pred` holds (checked on every captured event / reported patch). */
  waitUntil<T>(pred: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
    const now = pred();
    if (now) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      // Re-checked on every message the simulator receives, and every 50 ms for state held elsewhere.
      const poll = setInterval(() => check(), 50);
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        clearInterval(poll);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; events: ${this.events.map((e) => `${e.output}:${e.applicationProperties.eventType?.split('.').pop()}`).join(', ')}`));
      }, timeoutMs);
      const check = () => {
        const v = pred();
        if (v) {
          clearTimeout(timer);
          clearInterval(poll);
          this.waiters.delete(check);
          resolve(v);
        }
      };
      this.waiters.add(check);
    });
  }

  waitForEvent(pred: (e: CapturedEvent) => boolean, timeoutMs: number, what: string): Promise<CapturedEvent> {
    return this.waitUntil(() => this.events.find(pred), timeoutMs, what);
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (c) await c.endAsync(true);
  }
}

function mergePatch(dest: Record<string, unknown>, patch: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete dest[k];
    else if (typeof v === 'object' && !Array.isArray(v) && typeof dest[k] === 'object' && dest[k] !== null && !Array.isArray(dest[k])) {
      mergePatch(dest[k] as Record<string, unknown>, v as Record<string, unknown>);
    } else dest[k] = structuredClone(v);
  }
}

export interface HubEnv {
  certs: TestCerts;
  broker: TestBroker;
  sim: HubSimulator;
  deviceId: string;
  moduleId: string;
  sharedAccessKey: string;
  connectionString: string;
  close(): Promise<void>;
}

/** Certs, broker and simulator on a fresh loopback address; `desired` seeds the module twin. */
export async function startHubEnv(desired: Record<string, unknown> = {}): Promise<HubEnv> {
  const certs = makeTestCerts();
  const broker = new TestBroker(certs);
  await broker.start();
  const deviceId = `dev-${randomBytes(3).toString('hex')}`;
  const moduleId = 'lvaEdge';
  const sim = new HubSimulator(broker, deviceId, moduleId, desired);
  await sim.connect();
  const sharedAccessKey = randomBytes(32).toString('base64');
  return {
    certs, broker, sim, deviceId, moduleId, sharedAccessKey,
    connectionString: `HostName=${broker.host};DeviceId=${deviceId};ModuleId=${moduleId};SharedAccessKey=${sharedAccessKey}`,
    async close() {
      await sim.close();
      await broker.stop();
      rmSync(certs.dir, { recursive: true, force: true });
    },
  };
}
