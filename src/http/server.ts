import http from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { ControlPlane } from '../api/methods.js';
import { LvaError } from '../api/errors.js';
import type { EventBus } from '../runtime/events.js';
import type { InputRouter } from '../runtime/inputs.js';
import type { Log } from '../util/logger.js';

/**
 * The local HTTP API (interfaces.md "Local HTTP API"): the same direct-method payloads as IoT Hub,
 * the event stream as SSE, input messages for IoT Hub message sources, metrics and health.
 */

export interface HttpApiOptions {
  host: string;
  port: number;
  control: ControlPlane;
  bus: EventBus;
  inputs: InputRouter;
  /** Required when binding a non-loopback address. */
  token?: string;
  log?: Log;
  metrics?: () => string | Promise<string>;
  health?: () => Record<string, unknown>;
  /** Request body cap (bytes). */
  maxBodyBytes?: number;
}

export const DEFAULT_MAX_BODY = 1024 * 1024;
/** How much of an oversized body is read (and discarded) so the client can see the 413. */
const DRAIN_LIMIT_BYTES = 64 * 1024 * 1024;

/** Reads and discards the rest of a request body; false when more than `limit` bytes arrive. */
async function drain(req: http.IncomingMessage, limit: number): Promise<boolean> {
  let seen = 0;
  try {
    for await (const c of req) {
      seen += (c as Buffer).length;
      if (seen > limit) return false;
    }
    return true;
  } catch {
    return false;
  }
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export class HttpApi {
  private server?: http.Server;
  private readonly sse = new Set<http.ServerResponse>();

  constructor(private readonly opts: HttpApiOptions) {
    if (!isLoopback(opts.host) && !opts.token) {
      throw new Error(`Refusing to bind the local API to non-loopback address ${opts.host} without a token: set LVA_API_TOKEN.`);
    }
  }

  async listen(): Promise<{ host: string; port: number }> {
    const server = http.createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        this.opts.log?.error({ err }, 'http handler failed');
        if (!res.headersSent) send(res, 500, { error: { code: 'InternalServerError', message: 'An internal error occurred.' } });
        else res.destroy();
      });
    });
    server.headersTimeout = 10_000;
    server.requestTimeout = 15 * 60_000; // Deactivate may take minutes (lva-spec §1.1).
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => resolve());
    });
    const a = server.address() as AddressInfo;
    const unsubscribe = this.opts.bus.subscribe((line) => {
      const data = `data: ${JSON.stringify(line)}\n\n`;
      for (const res of this.sse) res.write(data);
    });
    server.once('close', unsubscribe);
    return { host: a.address, port: a.port };
  }

  async close(): Promise<void> {
    for (const res of this.sse) res.end();
    this.sse.clear();
    const s = this.server;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections?.();
    });
  }

  private authorised(req: http.IncomingMessage): boolean {
    const token = this.opts.token;
    if (!token) return true;
    const h = req.headers.authorization ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(h);
    if (!m) return false;
    // Compare fixed-length digests: constant time whatever the presented token's length.
    const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
    return timingSafeEqual(digest(m[1]!.trim()), digest(token));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://local');
    const path = url.pathname;
    if (path === '/healthz' && req.method === 'GET') {
      // Health carries no secrets and is what container health checks call: no token needed.
      return send(res, 200, { status: 'ok', ...(this.opts.health?.() ?? {}) });
    }
    if (!this.authorised(req)) {
      return send(res, 401, { error: { code: 'Unauthorized', message: 'A valid bearer token is required.' } });
    }
    let m: RegExpExecArray | null;
    if ((m = /^\/v1\/methods\/([^/]+)$/.exec(path))) {
      if (req.method !== 'POST') return methodNotAllowed(res);
      const body = await this.readJson(req, res);
      if (body === NO_BODY) return;
      let method: string;
      try {
        method = decodeURIComponent(m[1]!);
      } catch {
        method = m[1]!;
      }
      const r = await this.opts.control.invoke(method, body);
      return send(res, r.status, r);
    }
    if ((m = /^\/v1\/inputs\/([^/]+)$/.exec(path))) {
      if (req.method !== 'POST') return methodNotAllowed(res);
      const body = await this.readJson(req, res);
      if (body === NO_BODY) return;
      const envelope = (typeof body === 'object' && body !== null && !Array.isArray(body)) ? (body as Record<string, unknown>) : {};
      const props = envelope.applicationProperties;
      const applicationProperties: Record<string, string> = {};
      if (props !== undefined) {
        if (typeof props !== 'object' || props === null || Array.isArray(props)) {
          return sendError(res, new LvaError(400, 'BadRequest', 'applicationProperties must be an object of strings.'));
        }
        for (const [k, v] of Object.entries(props)) applicationProperties[k] = String(v);
      }
      const delivered = this.opts.inputs.deliver({
        inputName: decodeURIComponent(m[1]!),
        body: 'body' in envelope ? envelope.body : body,
        applicationProperties,
        receivedAt: new Date(),
      });
      return send(res, 202, { delivered });
    }
    if (path === '/v1/events' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      res.write(': lva-edge events\n\n');
      this.sse.add(res);
      req.on('close', () => this.sse.delete(res));
      return;
    }
    if (path === '/metrics' && req.method === 'GET') {
      const text = (await this.opts.metrics?.()) ?? '';
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(text);
      return;
    }
    send(res, 404, { error: { code: 'NotFound', message: `No route for ${req.method} ${path}.` } });
  }

  private async readJson(req: http.IncomingMessage, res: http.ServerResponse): Promise<unknown> {
    const max = this.opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
    const declared = Number(req.headers['content-length'] ?? 0);
    const tooLarge = async (alreadyRead: number): Promise<typeof NO_BODY> => {
      // Read the rest before answering (up to a drain limit): a client still writing its body when
      // the socket closes sees EPIPE/ECONNRESET instead of our 413. A body declared past the limit is
      // not waited for (nor is one that grows past it): answer and close.
      const drained = declared <= DRAIN_LIMIT_BYTES && await drain(req, DRAIN_LIMIT_BYTES - alreadyRead);
      sendError(res, new LvaError(413, 'BadRequest', `The request body exceeds ${max} bytes.`));
      if (!drained) res.once('finish', () => req.destroy());
      return NO_BODY;
    };
    if (declared > max) return tooLarge(0);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > max) return tooLarge(size);
      chunks.push(c as Buffer);
    }
    const text = Buffer.concat(chunks).toString('utf8').replace(/^\uFEFF/, '');
    if (text.trim() === '') return {};
    try {
      return JSON.parse(text);
    } catch (err) {
      sendError(res, new LvaError(400, 'BadRequest', `The request body is not valid JSON: ${(err as Error).message}`));
      return NO_BODY;
    }
  }
}

const NO_BODY = Symbol('no-body');

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: http.ServerResponse, err: LvaError): void {
  send(res, err.status, { status: err.status, payload: err.toODataBody() });
}

function methodNotAllowed(res: http.ServerResponse): void {
  send(res, 405, { error: { code: 'MethodNotAllowed', message: 'Use POST.' } });
}
