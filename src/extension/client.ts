import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { randomUUID } from 'node:crypto';
import type { EndpointConfig } from '../graph/model.js';
import type { EncodedImage } from '../media/sample.js';
import { redactUrl } from '../media/ffmpeg-args.js';
import { interpretReply, MAX_REPLY_BYTES, type ExtensionOutcome } from './reply.js';

/**
 * The HTTP side of `#Microsoft.Media.MediaGraphHttpExtension` (lva-spec §5.1, §2.4): one POST per
 * image on a keep-alive connection, with the endpoint's credentials (UsernamePassword → Basic,
 * HttpHeaderCredentials → that header) and TLS options (trustedCertificates replace the platform
 * store; validationOptions may skip the hostname or the signature check). Every failure becomes an
 * ExtensionOutcome — this never throws — and nothing secret ends up in a message: credentials are
 * only ever put in request headers, and URLs are reported with their password redacted.
 */

export const DEFAULT_TIMEOUT_MS = 5_000;

export interface ExtensionClientOptions {
  endpoint: EndpointConfig;
  /** Whole-request deadline (connect + send + reply). */
  timeoutMs?: number;
  /** Largest reply accepted. */
  maxReplyBytes?: number;
}

export class HttpExtensionClient {
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly authHeader?: [string, string];
  private readonly timeoutMs: number;
  private readonly maxReplyBytes: number;
  private current?: http.ClientRequest;
  readonly displayUrl: string;

  constructor(opts: ExtensionClientOptions) {
    this.url = new URL(opts.endpoint.url);
    this.displayUrl = redactUrl(opts.endpoint.url);
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxReplyBytes = opts.maxReplyBytes ?? MAX_REPLY_BYTES;
    const c = opts.endpoint.credentials;
    if (c?.kind === 'usernamePassword') {
      this.authHeader = ['authorization', 'Basic ' + Buffer.from(`${c.username ?? ''}:${c.password ?? ''}`, 'utf8').toString('base64')];
    } else if (c?.kind === 'httpHeader' && c.headerName) {
      this.authHeader = [c.headerName, c.headerValue ?? ''];
    } else if (this.url.username) {
      this.authHeader = ['authorization', 'Basic ' + Buffer.from(`${decodeURIComponent(this.url.username)}:${decodeURIComponent(this.url.password)}`, 'utf8').toString('base64')];
    }
    // Userinfo never goes on the wire as part of the URL.
    this.url.username = '';
    this.url.password = '';
    if (this.url.protocol === 'https:') {
      const t = opts.endpoint.tls;
      this.agent = new https.Agent({
        keepAlive: true,
        maxSockets: 1,
        ...(t?.trustedCertificates && t.trustedCertificates.length > 0 ? { ca: t.trustedCertificates } : {}),
        rejectUnauthorized: !(t?.ignoreSignature ?? false),
        ...(t?.ignoreHostname ? { checkServerIdentity: () => undefined } : { checkServerIdentity: tls.checkServerIdentity }),
      });
    } else {
      this.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    }
  }

  /** Posts one image; resolves with what the reply means (never rejects). */
  post(image: EncodedImage): Promise<ExtensionOutcome> {
    const headers: Record<string, string | number> = {
      'content-type': image.contentType,
      'content-length': image.data.length,
      accept: 'application/json, */*',
      'user-agent': 'Azure Media Services',
      'x-ms-client-request-id': randomUUID(),
    };
    if (image.contentType === 'image/x-raw') {
      // How raw dimensions travel over HTTP is undocumented (lva-spec §5.1): extra headers.
      headers['x-ms-image-width'] = image.width;
      headers['x-ms-image-height'] = image.height;
      if (image.stride !== undefined) headers['x-ms-image-stride'] = image.stride;
      if (image.pixelFormat) headers['x-ms-image-pixel-format'] = image.pixelFormat;
    }
    if (this.authHeader) headers[this.authHeader[0]] = this.authHeader[1];
    const mod = this.url.protocol === 'https:' ? https : http;
    return new Promise<ExtensionOutcome>((resolve) => {
      let settled = false;
      const done = (o: ExtensionOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.current = undefined;
        resolve(o);
      };
      const req = mod.request(this.url, { method: 'POST', headers, agent: this.agent });
      this.current = req;
      const timer = setTimeout(() => {
        done(networkFailure('Timeout', `no complete reply from ${this.displayUrl} within ${this.timeoutMs} ms`));
        req.destroy();
      }, this.timeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => done(classifyError(err, this.displayUrl)));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        let tooLarge = false;
        res.on('data', (chunk: Buffer) => {
          if (tooLarge) return;
          size += chunk.length;
          if (size > this.maxReplyBytes) {
            tooLarge = true;
            // Stop reading a runaway reply now; the connection is not reusable.
            done(interpretReply({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.alloc(0), tooLarge: true }));
            res.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => done(interpretReply({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) })));
        res.on('error', (err: NodeJS.ErrnoException) => done(classifyError(err, this.displayUrl)));
        res.on('close', () => {
          if (!res.complete) done(networkFailure('ConnectionLost', `the reply from ${this.displayUrl} was cut short`));
        });
      });
      req.end(image.data);
    });
  }

  /** Aborts the request in flight (if any) and closes idle connections. */
  close(): void {
    this.current?.destroy();
    this.agent.destroy();
  }
}

function networkFailure(errorCode: string, message: string): ExtensionOutcome {
  return { kind: 'failed', problem: { name: 'NetworkError', errorCode, message } };
}

const TLS_CODES = /CERT|SELF_SIGNED|ALTNAME|UNABLE_TO_(GET|VERIFY)|TLS|SSL|EPROTO/;

function classifyError(err: NodeJS.ErrnoException, url: string): ExtensionOutcome {
  const code = err.code ?? 'Error';
  if (TLS_CODES.test(code)) {
    return { kind: 'failed', problem: { name: 'ProtocolError', protocol: 'tls', errorCode: code, message: `TLS with ${url} failed: ${err.message.slice(0, 200)}` } };
  }
  const errorCode = code === 'ECONNREFUSED' ? 'ConnectionRefused'
    : code === 'ECONNRESET' || code === 'EPIPE' ? 'ConnectionLost'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'HostNotFound'
        : code === 'ETIMEDOUT' ? 'Timeout' : code;
  return networkFailure(errorCode, `request to ${url} failed: ${err.message.slice(0, 200)}`);
}
