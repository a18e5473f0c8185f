/**
 * Loopback RTSP credential relay: keeps camera passwords off ffmpeg's command line.
 *
 * ffmpeg 5.1 takes RTSP credentials only inside the URL (`rtsp://user:pass@host/…`), and its argv is
 * readable by every local user (`ps -eo args`). So when a source has credentials, ffmpeg is pointed at
 * `rtsp://127.0.0.1:<port>/<token>/<camera path>` instead, served by this relay, which:
 * - accepts only requests whose URI carries the random per-relay token (compared in constant time), so
 *   other local users cannot borrow the relay to reach the camera; the camera connection is opened only
 *   after the first valid request;
 * - rewrites each request-URI to the camera's URL (without userinfo), drops any Authorization ffmpeg
 *   sends, and answers the camera's 401 challenge itself (Basic, or Digest MD5/MD5-sess/SHA-256 with
 *   qop=auth or without qop, RFC 2617/7616) by re-sending the request; later requests carry the
 *   credentials pre-emptively. ffmpeg sees a 401 only when the credentials are wrong;
 * - uses its own CSeq numbering towards the camera (a re-sent request is a new request) and restores
 *   ffmpeg's CSeq on each response;
 * - rewrites camera URLs in responses (Content-Base, Content-Location, RTP-Info, SDP `a=control:`) back
 *   to relay URLs, so ffmpeg's SETUP/PLAY URLs come through the relay too;
 * - passes interleaved `$` frames (RTP/RTCP over the RTSP TCP connection) through untouched both ways.
 * When the camera cannot be reached, each request is answered `503 <reason>` with the socket error as the
 * reason phrase ("Connection refused", "Connection timed out"), which ffmpeg prints, so the source's error
 * classification works as without the relay.
 *
 * ffmpeg always speaks TCP-interleaved RTSP to the relay. Towards the camera the relay uses the same, or
 * RTSP-over-HTTP tunnelling (`tunnel: 'http'`, LVA's `transport: Http`). UDP is not relayed: the camera
 * would send RTP to this host, but on ports ffmpeg never asked for.
 *
 * Pure parts (exported for tests): RtspStreamSplitter (text messages and `$` frames across arbitrary
 * chunk boundaries), parseChallenges / digestAuthorization / basicAuthorization, and the URL mapping.
 */

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

// ---------------------------------------------------------------------------------------------------
// Message splitting

export interface RtspMessage {
  kind: 'message';
  /** "DESCRIBE rtsp://… RTSP/1.0" or "RTSP/1.0 200 OK". */
  startLine: string;
  /** In order, names as received. */
  headers: Array<[string, string]>;
  body: Buffer;
}

export interface InterleavedFrame {
  kind: 'interleaved';
  channel: number;
  /** The whole frame as received, `$`, channel and length included. */
  raw: Buffer;
}

export type RtspItem = RtspMessage | InterleavedFrame;

export class RtspProtocolError extends Error {
  override readonly name = 'RtspProtocolError';
}

/** Header block limit: far above any real RTSP message, small enough to stop a flood. */
export const MAX_HEADER_BYTES = 64 * 1024;
/** Body limit (SDP, GET_PARAMETER replies). */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Incremental splitter of one direction of an RTSP connection into text messages (start line, headers,
 * Content-Length body) and interleaved binary frames (`$`, channel, 16-bit length, payload).
 * Frames wholly inside one chunk are views into it (no copy).
 */
export class RtspStreamSplitter {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly onItem: (item: RtspItem) => void) {}

  push(chunk: Buffer): void {
    let buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    let pos = 0;
    for (;;) {
      if (pos >= buf.length) break;
      if (buf[pos] === 0x24) {
        if (buf.length - pos < 4) break;
        const len = buf.readUInt16BE(pos + 2);
        if (buf.length - pos < 4 + len) break;
        this.onItem({ kind: 'interleaved', channel: buf[pos + 1]!, raw: buf.subarray(pos, pos + 4 + len) });
        pos += 4 + len;
        continue;
      }
      // Some servers put blank lines between messages: skip them.
      if (buf[pos] === 0x0d || buf[pos] === 0x0a) {
        pos++;
        continue;
      }
      const end = findHeaderEnd(buf, pos);
      if (end === null) {
        if (buf.length - pos > MAX_HEADER_BYTES) throw new RtspProtocolError('RTSP header block too large');
        break;
      }
      if (end.headerEnd - pos > MAX_HEADER_BYTES) throw new RtspProtocolError('RTSP header block too large');
      const head = buf.subarray(pos, end.headerEnd).toString('latin1').replace(/\r$/, '');
      const lines = head.split(/\r?\n/);
      const startLine = lines.shift() ?? '';
      const headers: Array<[string, string]> = [];
      for (const line of lines) {
        if (line === '') continue;
        if (/^[ \t]/.test(line) && headers.length > 0) {
          // Obsolete line folding: continues the previous header.
          headers[headers.length - 1]![1] += ' ' + line.trim();
          continue;
        }
        const colon = line.indexOf(':');
        if (colon <= 0) throw new RtspProtocolError('malformed RTSP header line');
        headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
      }
      if (!/^(RTSP\/\d\.\d \d{3}( .*)?|[A-Z_]+ \S+ RTSP\/\d\.\d)$/.test(startLine)) {
        throw new RtspProtocolError('malformed RTSP start line');
      }
      const lengthText = headerValue(headers, 'content-length');
      if (lengthText !== undefined && !/^\d{1,10}$/.test(lengthText)) throw new RtspProtocolError('invalid Content-Length');
      const length = lengthText === undefined ? 0 : Number(lengthText);
      if (length > MAX_BODY_BYTES) throw new RtspProtocolError('RTSP body too large');
      const bodyStart = end.bodyStart;
      if (buf.length - bodyStart < length) break;
      this.onItem({ kind: 'message', startLine, headers, body: Buffer.from(buf.subarray(bodyStart, bodyStart + length)) });
      pos = bodyStart + length;
    }
    // Keep the unread rest; copy it so a retained view does not pin the whole chunk.
    this.pending = pos >= buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(pos));
    buf = Buffer.alloc(0);
  }

  /** Bytes received but not yet part of a complete item. */
  get buffered(): number {
    return this.pending.length;
  }
}

function findHeaderEnd(buf: Buffer, from: number): { headerEnd: number; bodyStart: number } | null {
  for (let i = from; i < buf.length; i++) {
    if (buf[i] !== 0x0a) continue;
    // "\n\n" or "\n\r\n"
    if (buf[i + 1] === 0x0a) return { headerEnd: i, bodyStart: i + 2 };
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return { headerEnd: i, bodyStart: i + 3 };
  }
  return null;
}

export function headerValue(headers: Array<[string, string]>, name: string): string | undefined {
  const lower = name.toLowerCase();
  return headers.find(([k]) => k.toLowerCase() === lower)?.[1];
}

function setHeader(headers: Array<[string, string]>, name: string, value: string): void {
  const lower = name.toLowerCase();
  const i = headers.findIndex(([k]) => k.toLowerCase() === lower);
  if (i >= 0) headers[i] = [headers[i]![0], value];
  else headers.push([name, value]);
}

function removeHeader(headers: Array<[string, string]>, name: string): Array<[string, string]> {
  const lower = name.toLowerCase();
  return headers.filter(([k]) => k.toLowerCase() !== lower);
}

export function serializeMessage(m: RtspMessage): Buffer {
  let headers = removeHeader(m.headers, 'content-length');
  if (m.body.length > 0) headers = [...headers, ['Content-Length', String(m.body.length)]];
  const head = [m.startLine, ...headers.map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
  return Buffer.concat([Buffer.from(head, 'latin1'), m.body]);
}

// ---------------------------------------------------------------------------------------------------
// Authentication (RFC 2617 / RFC 7616)

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses one or more WWW-Authenticate values (each may hold several challenges). */
export function parseChallenges(values: string[]): Challenge[] {
  const out: Challenge[] = [];
  for (const value of values) {
    let i = 0;
    let current: Challenge | undefined;
    const s = value;
    while (i < s.length) {
      while (i < s.length && /[\s,]/.test(s[i]!)) i++;
      const tokenMatch = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+/.exec(s.slice(i));
      if (!tokenMatch) break;
      const token = tokenMatch[0];
      let j = i + token.length;
      while (j < s.length && (s[j] === ' ' || s[j] === '\t')) j++;
      if (s[j] === '=') {
        // auth-param of the current challenge
        j++;
        while (j < s.length && (s[j] === ' ' || s[j] === '\t')) j++;
        let value = '';
        if (s[j] === '"') {
          j++;
          while (j < s.length && s[j] !== '"') {
            if (s[j] === '\\' && j + 1 < s.length) j++;
            value += s[j];
            j++;
          }
          j++; // closing quote
        } else {
          const m = /^[^,\s]*/.exec(s.slice(j))!;
          value = m[0];
          j += value.length;
        }
        if (current) current.params[token.toLowerCase()] = value;
        i = j;
      } else {
        current = { scheme: token.toLowerCase(), params: {} };
        out.push(current);
        i = j;
      }
    }
  }
  return out;
}

export function basicAuthorization(username: string, password: string): string {
  return 'Basic ' + Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
}

export interface DigestInput {
  username: string;
  password: string;
  method: string;
  uri: string;
  challenge: Record<string, string>;
  /** Request counter for this nonce (qop only). */
  nc: number;
  /** Client nonce (qop and -sess only). */
  cnonce: string;
}

const DIGEST_HASHES: Record<string, string> = { 'md5': 'md5', 'md5-sess': 'md5', 'sha-256': 'sha256', 'sha-256-sess': 'sha256' };

export function digestSupported(challenge: Record<string, string>): boolean {
  const algorithm = (challenge.algorithm ?? 'MD5').toLowerCase();
  if (!(algorithm in DIGEST_HASHES) || challenge.realm === undefined || challenge.nonce === undefined) return false;
  if (challenge.qop === undefined) return true;
  return challenge.qop.split(',').map((q) => q.trim().toLowerCase()).includes('auth');
}

/** The response hash of a Digest Authorization. */
export function digestResponse(d: DigestInput): { response: string; qop?: string; ncText?: string } {
  const algorithm = (d.challenge.algorithm ?? 'MD5').toLowerCase();
  const hashName = DIGEST_HASHES[algorithm];
  if (!hashName) throw new Error(`unsupported digest algorithm ${algorithm}`);
  const H = (s: string) => createHash(hashName).update(s, 'utf8').digest('hex');
  const realm = d.challenge.realm ?? '';
  const nonce = d.challenge.nonce ?? '';
  let ha1 = H(`${d.username}:${realm}:${d.password}`);
  if (algorithm.endsWith('-sess')) ha1 = H(`${ha1}:${nonce}:${d.cnonce}`);
  const ha2 = H(`${d.method}:${d.uri}`);
  const qops = d.challenge.qop?.split(',').map((q) => q.trim().toLowerCase());
  if (qops && qops.length > 0) {
    if (!qops.includes('auth')) throw new Error('digest challenge offers no qop=auth');
    const ncText = d.nc.toString(16).padStart(8, '0');
    return { response: H(`${ha1}:${nonce}:${ncText}:${d.cnonce}:auth:${ha2}`), qop: 'auth', ncText };
  }
  return { response: H(`${ha1}:${nonce}:${ha2}`) };
}

function quoted(s: string): string {
  return `"${s.replace(/(["\\])/g, '\\$1')}"`;
}

/** The whole `Authorization: Digest …` value. */
export function digestAuthorization(d: DigestInput): string {
  const { response, qop, ncText } = digestResponse(d);
  const c = d.challenge;
  const parts = [
    `username=${quoted(d.username)}`, `realm=${quoted(c.realm ?? '')}`, `nonce=${quoted(c.nonce ?? '')}`,
    `uri=${quoted(d.uri)}`, `response=${quoted(response)}`,
  ];
  if (c.algorithm !== undefined) parts.push(`algorithm=${c.algorithm}`);
  if (c.opaque !== undefined) parts.push(`opaque=${quoted(c.opaque)}`);
  if (qop) parts.push(`qop=${qop}`, `nc=${ncText}`, `cnonce=${quoted(d.cnonce)}`);
  return 'Digest ' + parts.join(', ');
}

/** Picks the strongest challenge we can answer: Digest (SHA-256 before MD5) before Basic. */
export function chooseChallenge(challenges: Challenge[]): Challenge | undefined {
  const digests = challenges.filter((c) => c.scheme === 'digest' && digestSupported(c.params));
  const rank = (c: Challenge) => ((c.params.algorithm ?? 'md5').toLowerCase().startsWith('sha-256') ? 0 : 1);
  digests.sort((a, b) => rank(a) - rank(b));
  return digests[0] ?? challenges.find((c) => c.scheme === 'basic');
}

/** Answers challenges for one camera connection: keeps the chosen challenge and the nonce count. */
export class RtspAuthenticator {
  private challenge?: Challenge;
  private nc = 0;

  constructor(private readonly username: string, private readonly password: string, private readonly cnonce = () => randomBytes(12).toString('hex')) {}

  /** Takes a 401's challenges; false when none can be answered. */
  accept(values: string[]): boolean {
    const chosen = chooseChallenge(parseChallenges(values));
    if (!chosen) return false;
    if (this.challenge?.params.nonce !== chosen.params.nonce) this.nc = 0;
    this.challenge = chosen;
    return true;
  }

  get ready(): boolean {
    return this.challenge !== undefined;
  }

  /** Authorization header value for a request, or undefined before the first challenge. */
  authorization(method: string, uri: string): string | undefined {
    const c = this.challenge;
    if (!c) return undefined;
    if (c.scheme === 'basic') return basicAuthorization(this.username, this.password);
    this.nc++;
    return digestAuthorization({ username: this.username, password: this.password, method, uri, challenge: c.params, nc: this.nc, cnonce: this.cnonce() });
  }
}

// ---------------------------------------------------------------------------------------------------
// URL mapping

/** Maps URLs between the relay's namespace (rtsp://127.0.0.1:P/<token>/path) and the camera's. */
export class RtspUrlMap {
  /** rtsp://127.0.0.1:P/<token> (no trailing slash). */
  readonly relayBase: string;
  /** rtsp://host:port or rtsps://host:port of the camera, no userinfo. */
  readonly cameraOrigin: string;

  constructor(relayHost: string, relayPort: number, readonly token: string, cameraUrl: URL) {
    this.relayBase = `rtsp://${relayHost}:${relayPort}/${token}`;
    this.cameraOrigin = `${cameraUrl.protocol}//${cameraUrl.host}`;
  }

  /** The camera URL (path and query of `cameraUrl`) seen through the relay. */
  relayUrlFor(cameraUrl: URL): string {
    return this.relayBase + cameraUrl.pathname + cameraUrl.search;
  }

  /** Request-URI from ffmpeg → camera request-URI, or null when it lacks the token. */
  toCamera(uri: string): string | null {
    const prefix = this.relayBase;
    const head = uri.slice(0, prefix.length);
    // Exact match: the token is case-sensitive, and ffmpeg sends back exactly the URL it was given.
    const a = Buffer.from(head);
    const b = Buffer.from(prefix);
    if (a.length !== b.length || !timingSafeEqual(a, b)) return null;
    const rest = uri.slice(prefix.length);
    if (rest !== '' && !rest.startsWith('/') && !rest.startsWith('?')) return null;
    return this.cameraOrigin + (rest === '' ? '/' : rest);
  }

  /** Any absolute rtsp(s) URL in a camera response → the same path through the relay. */
  toRelay(text: string): string {
    return text.replace(/rtsps?:\/\/[^/\s;,"'<>]+(\/[^\s;,"'<>]*)?/gi, (_m, path: string | undefined) => this.relayBase + (path ?? '/'));
  }
}

// ---------------------------------------------------------------------------------------------------
// The relay

export interface RtspRelayOptions {
  /** Camera URL with credentials in its userinfo (percent-encoded). */
  url: string;
  /** Camera connect timeout; keep it below ffmpeg's own socket timeout (5 s). Default 4 s. */
  connectTimeoutMs?: number;
  /** rtsps:// cameras: TLS options (default: like ffmpeg 5.1, no certificate verification). */
  tls?: tls.ConnectionOptions;
  /** Called on relay-level problems (already free of secrets). */
  onError?: (message: string) => void;
  /** How long a session URL stays claimable (default 60 s). */
  sessionTtlMs?: number;
  /**
   * 'http': reach the camera through RTSP-over-HTTP tunnelling (LVA's `transport: Http`), while ffmpeg
   * still talks plain TCP-interleaved RTSP to the relay.
   */
  tunnel?: 'http';
}

/** True when `url` carries userinfo, i.e. ffmpeg would otherwise get a password on its command line. */
export function urlHasCredentials(url: string): boolean {
  try {
    const u = new URL(url);
    return u.username !== '' || u.password !== '';
  } catch {
    return false;
  }
}

interface PendingRequest {
  clientCseq: string | undefined;
  message: RtspMessage;
  authAttempts: number;
}

const HOP_BY_HOP_REWRITE = ['content-base', 'content-location', 'rtp-info', 'location'];

/** How long a minted session URL stays claimable: ffmpeg connects right after it is spawned. */
const SESSION_TOKEN_TTL_MS = 60_000;

export class RtspCredentialRelay {
  private server?: net.Server;
  private port = 0;
  private readonly sockets = new Set<net.Socket>();
  private readonly camera: URL;
  private readonly username: string;
  private readonly password: string;
  /** Unclaimed session tokens → expiry time. Each is good for one connection (one ffmpeg run). */
  private readonly tokens = new Map<string, number>();
  private closed = false;

  constructor(private readonly opts: RtspRelayOptions) {
    const u = new URL(opts.url);
    this.username = safeDecode(u.username);
    this.password = safeDecode(u.password);
    u.username = '';
    u.password = '';
    this.camera = u;
  }

  /** Listens on 127.0.0.1:<random port>; resolves with a first session URL. */
  async start(): Promise<string> {
    const server = net.createServer((socket) => this.onClient(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.opts.onError?.(`relay listener: ${err.message}`));
    this.port = (server.address() as net.AddressInfo).port;
    return this.sessionUrl();
  }

  /**
   * A fresh URL for one ffmpeg run: loopback, no credentials, a new random token first in the path.
   * The token is visible in `ps` like the rest of ffmpeg's argv, so it is single-use (claimed by the
   * first connection that presents it) and expires unclaimed after a minute; on Linux, connections from
   * other users are refused outright (the peer socket's owner is looked up in /proc/net/tcp).
   */
  sessionUrl(): string {
    if (!this.port) throw new Error('relay not started');
    const now = Date.now();
    for (const [t, expires] of this.tokens) if (expires <= now) this.tokens.delete(t);
    const token = randomBytes(18).toString('base64url');
    this.tokens.set(token, now + (this.opts.sessionTtlMs ?? SESSION_TOKEN_TTL_MS));
    return new RtspUrlMap('127.0.0.1', this.port, token, this.camera).relayUrlFor(this.camera);
  }

  /** The URL map of the session whose token `uri` carries, consuming the token; null when none matches. */
  private claim(uri: string): RtspUrlMap | null {
    const prefix = `rtsp://127.0.0.1:${this.port}/`;
    if (!uri.startsWith(prefix)) return null;
    const presented = Buffer.from(uri.slice(prefix.length).split(/[/?]/)[0] ?? '');
    const now = Date.now();
    for (const [token, expires] of this.tokens) {
      const candidate = Buffer.from(token);
      if (candidate.length === presented.length && timingSafeEqual(candidate, presented) && expires > now) {
        this.tokens.delete(token);
        return new RtspUrlMap('127.0.0.1', this.port, token, this.camera);
      }
    }
    return null;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.tokens.clear();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  get connections(): number {
    return this.sockets.size;
  }

  private track(s: net.Socket): void {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
  }

  private onClient(client: net.Socket): void {
    if (this.closed) {
      client.destroy();
      return;
    }
    const uid = loopbackPeerUid(client.remotePort, this.port);
    if (uid !== undefined && process.getuid && uid !== process.getuid()) {
      // Another local user: not our ffmpeg, whatever token it may have read from `ps`.
      this.opts.onError?.(`refused a relay connection from uid ${uid}`);
      client.destroy();
      return;
    }
    this.track(client);
    client.setNoDelay(true);
    client.on('error', () => {});
    new RelaySession(client, (uri) => this.claim(uri), this.camera, this.username, this.password, this.opts, (s) => this.track(s)).run();
  }
}

/**
 * Owner uid of the loopback TCP socket 127.0.0.1:`clientPort` → 127.0.0.1:`serverPort`, from
 * /proc/net/tcp (Linux); undefined when it cannot be determined (other OS, entry not found).
 */
export function loopbackPeerUid(clientPort: number | undefined, serverPort: number, table?: string): number | undefined {
  if (!clientPort) return undefined;
  let text = table;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/net/tcp', 'utf8');
    } catch {
      return undefined;
    }
  }
  const hex = (p: number) => p.toString(16).toUpperCase().padStart(4, '0');
  const local = `0100007F:${hex(clientPort)}`;
  const remote = `0100007F:${hex(serverPort)}`;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local && f[2] === remote) {
      const uid = Number(f[7]);
      return Number.isInteger(uid) ? uid : undefined;
    }
  }
  return undefined;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The camera side of an RTSP-over-HTTP tunnel: writes go base64-encoded into the POST, reads come from the GET. */
class TunnelWriter {
  constructor(private readonly get: net.Socket, private readonly post: net.Socket) {}

  write(bytes: Buffer): boolean {
    // Each message is encoded on its own, as ffmpeg does; servers decode the POST body message by message.
    return this.post.write(bytes.toString('base64'));
  }

  cork(): void {
    this.post.cork();
  }

  uncork(): void {
    this.post.uncork();
  }

  destroy(): void {
    this.get.destroy();
    this.post.destroy();
  }
}

/** One ffmpeg connection and its camera connection. */
class RelaySession {
  private upstream?: net.Socket | TunnelWriter;
  private upstreamState: 'idle' | 'connecting' | 'open' | 'failed' = 'idle';
  private failureReason = 'Service Unavailable';
  private readonly queue: Buffer[] = [];
  private readonly inflight = new Map<number, PendingRequest>();
  private cseq = 0;
  private readonly auth: RtspAuthenticator;
  private ended = false;
  /** Set by the first request that presents a valid session token. */
  private map?: RtspUrlMap;

  constructor(
    private readonly client: net.Socket,
    private readonly claim: (uri: string) => RtspUrlMap | null,
    private readonly camera: URL,
    username: string,
    password: string,
    private readonly opts: RtspRelayOptions,
    private readonly track: (s: net.Socket) => void,
  ) {
    this.auth = new RtspAuthenticator(username, password);
  }

  run(): void {
    const fromClient = new RtspStreamSplitter((item) => this.onClientItem(item));
    this.client.on('data', (chunk: Buffer) => {
      if (this.ended) return;
      try {
        this.upstream?.cork();
        fromClient.push(chunk);
      } catch (err) {
        this.fail(`bad request from ffmpeg: ${(err as Error).message}`);
      } finally {
        this.upstream?.uncork();
      }
    });
    this.client.once('close', () => this.end());
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.client.destroy();
    this.upstream?.destroy();
  }

  private fail(message: string): void {
    this.opts.onError?.(message);
    this.end();
  }

  private reply(clientCseq: string | undefined, status: number, reason: string): void {
    const headers: Array<[string, string]> = clientCseq !== undefined ? [['CSeq', clientCseq]] : [];
    this.client.write(serializeMessage({ kind: 'message', startLine: `RTSP/1.0 ${status} ${reason}`, headers, body: Buffer.alloc(0) }));
  }

  private onClientItem(item: RtspItem): void {
    if (item.kind === 'interleaved') {
      // RTCP receiver reports and the like: only meaningful once the camera connection exists.
      if (this.upstreamState === 'open') this.upstream!.write(item.raw);
      return;
    }
    const m = /^([A-Z_]+) (\S+) (RTSP\/\d\.\d)$/.exec(item.startLine);
    if (!m) {
      // A response to a request the camera sent (rare): forward as is.
      if (this.upstreamState === 'open') this.upstream!.write(serializeMessage(item));
      return;
    }
    const [, method, uri, version] = m as unknown as [string, string, string, string];
    const clientCseq = headerValue(item.headers, 'cseq');
    if (!this.map) this.map = this.claim(uri) ?? undefined;
    const cameraUri = !this.map ? null : uri === '*' ? '*' : this.map.toCamera(uri);
    if (cameraUri === null) {
      // No token: someone other than our ffmpeg. Refuse and hang up, without touching the camera.
      this.reply(clientCseq, 403, 'Forbidden');
      this.client.end();
      this.ended = true;
      return;
    }
    if (this.upstreamState === 'failed') {
      this.reply(clientCseq, 503, this.failureReason);
      return;
    }
    const headers = removeHeader(removeHeader(item.headers, 'authorization'), 'cseq');
    const message: RtspMessage = { kind: 'message', startLine: `${method} ${cameraUri} ${version}`, headers, body: item.body };
    this.send({ clientCseq, message, authAttempts: 0 });
  }

  /** Sends a request to the camera under a fresh CSeq, with credentials once a challenge is known. */
  private send(req: PendingRequest): void {
    const cseq = ++this.cseq;
    this.inflight.set(cseq, req);
    const [method, uri] = req.message.startLine.split(' ') as [string, string];
    let headers: Array<[string, string]> = [['CSeq', String(cseq)], ...req.message.headers];
    const authorization = this.auth.authorization(method, uri);
    if (authorization) headers = [...removeHeader(headers, 'authorization'), ['Authorization', authorization]];
    const bytes = serializeMessage({ ...req.message, headers });
    if (this.upstreamState === 'open') this.upstream!.write(bytes);
    else {
      this.queue.push(bytes);
      if (this.upstreamState === 'idle') this.connect();
    }
  }

  private openSocket(host: string, port: number): net.Socket {
    const socket = this.camera.protocol === 'rtsps:'
      ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, rejectUnauthorized: false, ...this.opts.tls })
      : net.connect({ host, port });
    this.track(socket);
    socket.setNoDelay(true);
    return socket;
  }

  /**
   * Opens the camera connection: one TCP (or TLS) socket, or with `tunnel: 'http'` the two of RTSP over
   * HTTP (Apple's tunnelling, as ffmpeg's `-rtsp_transport http` does it): a GET whose response body is
   * the camera's RTSP/RTP stream, and a POST whose body carries our requests base64-encoded, joined by
   * an x-sessioncookie.
   */
  private connect(): void {
    this.upstreamState = 'connecting';
    const tunnel = this.opts.tunnel === 'http';
    const port = Number(this.camera.port || (this.camera.protocol === 'rtsps:' ? 322 : 554));
    const host = this.camera.hostname.replace(/^\[|\]$/g, '');
    const timeoutMs = this.opts.connectTimeoutMs ?? 4000;
    const reader = this.openSocket(host, port);
    const writer = tunnel ? this.openSocket(host, port) : reader;
    this.upstream = tunnel ? new TunnelWriter(reader, writer) : reader;
    const timer = setTimeout(() => onFail(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })), timeoutMs);
    const onFail = (err: NodeJS.ErrnoException & { rtspStatus?: number }) => {
      clearTimeout(timer);
      if (this.upstreamState === 'open') {
        this.end();
        return;
      }
      if (this.upstreamState === 'failed') return;
      this.upstreamState = 'failed';
      this.failureReason = err.rtspStatus ? err.message : socketErrorReason(err);
      const status = err.rtspStatus ?? 503;
      reader.destroy();
      writer.destroy();
      this.queue.length = 0;
      // Answer what ffmpeg is waiting for; it prints the reason phrase.
      for (const req of this.inflight.values()) this.reply(req.clientCseq, status, this.failureReason);
      this.inflight.clear();
    };
    const open = () => {
      clearTimeout(timer);
      if (this.ended) {
        reader.destroy();
        writer.destroy();
        return;
      }
      this.upstreamState = 'open';
      for (const s of new Set([reader, writer])) {
        s.removeListener('error', onFail);
        s.on('error', () => this.end());
      }
      for (const b of this.queue) this.upstream!.write(b);
      this.queue.length = 0;
    };
    const connectEvent = this.camera.protocol === 'rtsps:' ? 'secureConnect' : 'connect';
    for (const s of new Set([reader, writer])) {
      s.once('error', onFail);
      s.once('close', () => {
        if (this.upstreamState === 'open') this.end();
      });
    }
    const fromCamera = new RtspStreamSplitter((item) => this.onCameraItem(item));
    const feed = (chunk: Buffer) => {
      if (this.ended || chunk.length === 0) return;
      try {
        this.client.cork();
        fromCamera.push(chunk);
      } catch (err) {
        this.fail(`bad data from the camera: ${(err as Error).message}`);
      } finally {
        this.client.uncork();
      }
      // Back-pressure: a slow ffmpeg slows the camera connection instead of growing our memory.
      if (this.client.writableNeedDrain) {
        reader.pause();
        this.client.once('drain', () => reader.resume());
      }
    };
    if (!tunnel) {
      reader.once(connectEvent, open);
      reader.on('data', feed);
      return;
    }
    const cookie = randomBytes(12).toString('hex');
    const path = this.camera.pathname + this.camera.search;
    const common = `x-sessioncookie: ${cookie}\r\nPragma: no-cache\r\nCache-Control: no-cache\r\nUser-Agent: lva-edge\r\nHost: ${this.camera.host}\r\n`;
    reader.once(connectEvent, () => reader.write(`GET ${path} HTTP/1.0\r\n${common}Accept: application/x-rtsp-tunnelled\r\n\r\n`));
    writer.once(connectEvent, () => writer.write(`POST ${path} HTTP/1.0\r\n${common}Content-Type: application/x-rtsp-tunnelled\r\n` +
      'Content-Length: 32767\r\nExpires: Sun, 9 Jan 1972 00:00:00 GMT\r\n\r\n'));
    // The GET's response head, then the RTSP stream. The POST gets no response while the tunnel lives.
    let head = Buffer.alloc(0);
    const onGetData = (chunk: Buffer) => {
      if (this.upstreamState === 'open') return feed(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_HEADER_BYTES) onFail(Object.assign(new Error('Bad tunnel response'), { rtspStatus: 502 }));
        return;
      }
      const status = Number(/^HTTP\/\d\.\d (\d{3})/.exec(head.subarray(0, end).toString('latin1'))?.[1] ?? 0);
      if (status !== 200) {
        // 401 keeps its meaning for the source's error classification; anything else is a bad gateway.
        const err = status === 401 ? Object.assign(new Error('Unauthorized'), { rtspStatus: 401 })
          : Object.assign(new Error(`Tunnel refused (HTTP ${status || 'garbage'})`), { rtspStatus: 502 });
        onFail(err);
        return;
      }
      const rest = head.subarray(end + 4);
      head = Buffer.alloc(0);
      open();
      feed(rest);
    };
    reader.on('data', onGetData);
  }

  private onCameraItem(item: RtspItem): void {
    if (item.kind === 'interleaved') {
      this.client.write(item.raw);
      return;
    }
    if (!item.startLine.startsWith('RTSP/')) {
      // A request from the camera (e.g. GET_PARAMETER keep-alive): map URLs and pass through.
      this.client.write(serializeMessage(this.rewriteToRelay(item)));
      return;
    }
    let cseq = Number(headerValue(item.headers, 'cseq'));
    if (!this.inflight.has(cseq)) {
      // Some cameras omit (or garble) CSeq: responses come in request order, so take the oldest.
      const oldest = this.inflight.keys().next();
      if (oldest.done) return; // nothing outstanding: a stray response, dropped rather than confusing ffmpeg
      cseq = oldest.value;
    }
    const req = this.inflight.get(cseq)!;
    this.inflight.delete(cseq);
    const status = Number(item.startLine.split(' ')[1]);
    if (status === 401 && req.authAttempts < 2) {
      const challenges = item.headers.filter(([k]) => k.toLowerCase() === 'www-authenticate').map(([, v]) => v);
      const stale = parseChallenges(challenges).some((c) => /^true$/i.test(c.params.stale ?? ''));
      // Retry when the challenge is new to us, or a digest nonce went stale; else the credentials are wrong.
      if ((req.authAttempts === 0 || stale) && this.auth.accept(challenges)) {
        this.send({ ...req, authAttempts: req.authAttempts + 1 });
        return;
      }
    }
    let headers = removeHeader(item.headers, 'cseq');
    if (req.clientCseq !== undefined) headers = [['CSeq', req.clientCseq], ...headers];
    // ffmpeg has no credentials to answer with; a challenge would only make it retry in vain.
    if (status === 401) headers = removeHeader(headers, 'www-authenticate');
    this.client.write(serializeMessage(this.rewriteToRelay({ ...item, headers })));
  }

  private rewriteToRelay(m: RtspMessage): RtspMessage {
    const headers = m.headers.map(([k, v]): [string, string] => [k, HOP_BY_HOP_REWRITE.includes(k.toLowerCase()) ? this.map!.toRelay(v) : v]);
    let body = m.body;
    const type = headerValue(m.headers, 'content-type') ?? '';
    if (body.length > 0 && /application\/sdp/i.test(type)) {
      const text = body.toString('utf8');
      const rewritten = text.replace(/^(a=control:)(.*)$/gim, (_l, key: string, value: string) => key + this.map!.toRelay(value));
      if (rewritten !== text) body = Buffer.from(rewritten, 'utf8');
    }
    return { ...m, headers, body };
  }
}

function socketErrorReason(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'Connection refused';
    case 'ETIMEDOUT':
      return 'Connection timed out';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'Host not found';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'No route to host';
    case 'ECONNRESET':
      return 'Connection reset by peer';
    default:
      return 'Service Unavailable';
  }
}

/**
 * Starts a relay when `url` has credentials; returns the URL ffmpeg should open and the relay to close
 * with the source. Without credentials there is nothing to hide: `{ url }` unchanged.
 */
export async function relayIfCredentials(url: string, options: Omit<RtspRelayOptions, 'url'> = {}): Promise<{ url: string; relay?: RtspCredentialRelay }> {
  if (!urlHasCredentials(url)) return { url };
  const relay = new RtspCredentialRelay({ ...options, url });
  return { url: await relay.start(), relay };
}
