import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FfmpegProcess } from '../media/ffmpeg-process.js';

/**
 * Reference inference server for the HTTP extension (lva-spec §5.1), used by tests, the benchmark
 * and the demo. It really looks at the image: ffmpeg decodes whatever arrived (JPEG, PNG, BMP, or
 * raw pixels described by the x-ms-image-* headers) to a small RGB picture, and every blob of
 * strongly red, green or blue pixels becomes an LVA entity inference
 * `{type:'entity', entity:{tag:{value:'red', confidence}, box:{l,t,w,h}}}` with a normalised box.
 * Nothing found → 204. Optional Basic or header authentication (401 otherwise) and TLS.
 *
 * Run: `node --import tsx src/tools/inference-server.ts --port 8080 [--tls-cert c.pem --tls-key k.pem]
 * [--username u --password p | --header-name h --header-value v]`; POST images to any path.
 */

/** Analysis grid: normalised coordinates do not depend on the picture's size, so every image is
 * stretched to this square; boxes are then precise to 1/ANALYSIS_SIZE. */
export const ANALYSIS_SIZE = 192;
const MIN_BLOB_PIXELS = 12;
const MAX_IMAGE_BYTES = 64 * 1024 * 1024;

export interface InferenceServerOptions {
  port?: number;
  host?: string;
  tls?: { cert: string | Buffer; key: string | Buffer };
  auth?: { username: string; password: string } | { headerName: string; headerValue: string };
  /** Called for every request (after authentication) with what arrived, for tests. */
  onRequest?: (r: ReceivedImage) => void;
}

export interface ReceivedImage {
  path: string;
  headers: http.IncomingHttpHeaders;
  contentType: string;
  body: Buffer;
  inferences: EntityInference[];
}

export interface EntityInference {
  type: 'entity';
  entity: { tag: { value: string; confidence: number }; box: { l: number; t: number; w: number; h: number } };
}

export interface InferenceServer {
  url: string;
  port: number;
  requests: number;
  close(): Promise<void>;
}

const INPUT_FORMAT: Record<string, string> = { 'image/jpeg': 'jpeg_pipe', 'image/png': 'png_pipe', 'image/bmp': 'bmp_pipe' };

/** ffmpeg arguments that turn the posted image into ANALYSIS_SIZE² rgb24 on stdout. */
export function decodeArgs(contentType: string, headers: http.IncomingHttpHeaders): string[] {
  const out = ['-vf', `scale=${ANALYSIS_SIZE}:${ANALYSIS_SIZE}`, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'];
  const base = ['-nostdin', '-hide_banner', '-loglevel', 'error'];
  const fmt = INPUT_FORMAT[contentType];
  if (fmt) return [...base, '-f', fmt, '-i', 'pipe:0', ...out];
  if (contentType === 'image/x-raw') {
    const w = Number(headers['x-ms-image-width']);
    const h = Number(headers['x-ms-image-height']);
    const pf = String(headers['x-ms-image-pixel-format'] ?? '');
    if (!(Number.isInteger(w) && w > 0 && Number.isInteger(h) && h > 0) || !/^[a-z0-9]+$/.test(pf)) {
      throw new Error('raw images need x-ms-image-width, x-ms-image-height and x-ms-image-pixel-format headers');
    }
    return [...base, '-f', 'rawvideo', '-pix_fmt', pf, '-s', `${w}x${h}`, '-i', 'pipe:0', ...out];
  }
  throw new Error(`unsupported content type ${JSON.stringify(contentType)}`);
}

/**
 * Posted image → ANALYSIS_SIZE² rgb24. BMP and raw pixels are simple enough to read here (fast: no
 * process per request); JPEG and PNG are decoded by an ffmpeg child.
 */
export async function decodeToRgb(body: Buffer, contentType: string, headers: http.IncomingHttpHeaders): Promise<Buffer> {
  if (contentType === 'image/bmp') return sampleGrid(readBmp(body));
  if (contentType === 'image/x-raw') {
    const w = Number(headers['x-ms-image-width']);
    const h = Number(headers['x-ms-image-height']);
    const pf = String(headers['x-ms-image-pixel-format'] ?? '');
    const stride = headers['x-ms-image-stride'] !== undefined ? Number(headers['x-ms-image-stride']) : undefined;
    return sampleGrid(readRaw(body, w, h, pf, stride));
  }
  return decodeWithFfmpeg(body, contentType, headers);
}

/** A picture we can read pixel by pixel (r, g, b of x, y). */
interface PixelSource {
  width: number;
  height: number;
  rgbAt(x: number, y: number, out: number[]): void;
}

/** Nearest-neighbour stretch to the analysis grid. */
function sampleGrid(src: PixelSource): Buffer {
  const out = Buffer.alloc(ANALYSIS_SIZE * ANALYSIS_SIZE * 3);
  const px = [0, 0, 0];
  for (let y = 0; y < ANALYSIS_SIZE; y++) {
    const sy = Math.min(src.height - 1, Math.floor(((y + 0.5) * src.height) / ANALYSIS_SIZE));
    for (let x = 0; x < ANALYSIS_SIZE; x++) {
      const sx = Math.min(src.width - 1, Math.floor(((x + 0.5) * src.width) / ANALYSIS_SIZE));
      src.rgbAt(sx, sy, px);
      const o = (y * ANALYSIS_SIZE + x) * 3;
      out[o] = px[0]!;
      out[o + 1] = px[1]!;
      out[o + 2] = px[2]!;
    }
  }
  return out;
}

/** Uncompressed 24/32-bit BMP (BITMAPINFOHEADER), bottom-up or top-down. */
export function readBmp(b: Buffer): PixelSource {
  if (b.length < 54 || b.toString('latin1', 0, 2) !== 'BM') throw new Error('not a BMP file');
  const dataOffset = b.readUInt32LE(10);
  const width = b.readInt32LE(18);
  const rawHeight = b.readInt32LE(22);
  const bpp = b.readUInt16LE(28);
  const compression = b.readUInt32LE(30);
  if (width <= 0 || rawHeight === 0 || (bpp !== 24 && bpp !== 32) || (compression !== 0 && compression !== 3)) {
    throw new Error(`unsupported BMP (${width}x${rawHeight}, ${bpp} bpp, compression ${compression})`);
  }
  const height = Math.abs(rawHeight);
  const bytes = bpp / 8;
  const stride = Math.ceil((width * bytes) / 4) * 4;
  if (dataOffset + stride * height > b.length) throw new Error('truncated BMP');
  return {
    width, height,
    rgbAt(x, y, out) {
      const row = rawHeight > 0 ? height - 1 - y : y;
      const o = dataOffset + row * stride + x * bytes;
      out[0] = b[o + 2]!;
      out[1] = b[o + 1]!;
      out[2] = b[o]!;
    },
  };
}

/** Raw pixels in any of LVA's raw formats (ffmpeg pix_fmt names, as the x-ms-image-pixel-format header says). */
export function readRaw(b: Buffer, width: number, height: number, pixelFormat: string, strideHeader?: number): PixelSource {
  if (!(Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0)) throw new Error('raw images need x-ms-image-width and x-ms-image-height');
  const bpp: Record<string, number> = { yuv420p: 1, rgb565be: 2, rgb565le: 2, rgb555be: 2, rgb555le: 2, rgb24: 3, bgr24: 3, argb: 4, rgba: 4, abgr: 4, bgra: 4 };
  const bytes = bpp[pixelFormat];
  if (bytes === undefined) throw new Error(`unsupported raw pixel format ${JSON.stringify(pixelFormat)}`);
  const stride = strideHeader ?? width * bytes;
  if (pixelFormat === 'yuv420p') {
    const cw = Math.ceil(width / 2), ch = Math.ceil(height / 2);
    const uOff = stride * height, vOff = uOff + cw * ch;
    if (b.length < vOff + cw * ch) throw new Error('truncated yuv420p image');
    return {
      width, height,
      rgbAt(x, y, out) {
        const Y = b[y * stride + x]!, U = b[uOff + (y >> 1) * cw + (x >> 1)]! - 128, V = b[vOff + (y >> 1) * cw + (x >> 1)]! - 128;
        const c = 1.164 * (Y - 16);
        out[0] = clamp255(c + 1.596 * V);
        out[1] = clamp255(c - 0.392 * U - 0.813 * V);
        out[2] = clamp255(c + 2.017 * U);
      },
    };
  }
  if (b.length < stride * (height - 1) + width * bytes) throw new Error(`truncated ${pixelFormat} image`);
  const order: Record<string, [number, number, number]> = { rgb24: [0, 1, 2], bgr24: [2, 1, 0], argb: [1, 2, 3], rgba: [0, 1, 2], abgr: [3, 2, 1], bgra: [2, 1, 0] };
  if (bytes >= 3) {
    const [ri, gi, bi] = order[pixelFormat]!;
    return { width, height, rgbAt(x, y, out) { const o = y * stride + x * bytes; out[0] = b[o + ri]!; out[1] = b[o + gi]!; out[2] = b[o + bi]!; } };
  }
  const le = pixelFormat.endsWith('le');
  const r565 = pixelFormat.startsWith('rgb565');
  return {
    width, height,
    rgbAt(x, y, out) {
      const o = y * stride + x * 2;
      const v = le ? b.readUInt16LE(o) : b.readUInt16BE(o);
      if (r565) {
        out[0] = ((v >> 11) & 31) * 255 / 31 | 0; out[1] = ((v >> 5) & 63) * 255 / 63 | 0; out[2] = (v & 31) * 255 / 31 | 0;
      } else {
        out[0] = ((v >> 10) & 31) * 255 / 31 | 0; out[1] = ((v >> 5) & 31) * 255 / 31 | 0; out[2] = (v & 31) * 255 / 31 | 0;
      }
    },
  };
}

const clamp255 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v | 0);

async function decodeWithFfmpeg(body: Buffer, contentType: string, headers: http.IncomingHttpHeaders): Promise<Buffer> {
  const proc = new FfmpegProcess({ args: decodeArgs(contentType, headers), stdin: 'pipe', stallTimeoutMs: 10_000 });
  const chunks: Buffer[] = [];
  proc.stdout?.on('data', (c: Buffer) => chunks.push(c));
  proc.stdin?.end(body);
  const exit = await proc.exited;
  const rgb = Buffer.concat(chunks);
  if (exit.code !== 0 || rgb.length !== ANALYSIS_SIZE * ANALYSIS_SIZE * 3) {
    throw new Error(`could not decode the ${contentType} image: ${exit.stderrTail.slice(-2).join(' | ')}`);
  }
  return rgb;
}

type Colour = 'red' | 'green' | 'blue';

function colourOf(r: number, g: number, b: number): Colour | null {
  if (r > 150 && g < 100 && b < 100) return 'red';
  if (g > 130 && r < 100 && b < 100) return 'green';
  if (b > 150 && r < 100 && g < 100) return 'blue';
  return null;
}

/** Pure: blobs of strongly coloured pixels in a size×size rgb24 picture → entity inferences. */
export function findColouredBlobs(rgb: Uint8Array, size = ANALYSIS_SIZE): EntityInference[] {
  const n = size * size;
  const label = new Int8Array(n).fill(-1);
  const colours: Colour[] = ['red', 'green', 'blue'];
  for (let i = 0; i < n; i++) {
    const c = colourOf(rgb[i * 3]!, rgb[i * 3 + 1]!, rgb[i * 3 + 2]!);
    if (c) label[i] = colours.indexOf(c);
  }
  const seen = new Uint8Array(n);
  const out: EntityInference[] = [];
  const stack: number[] = [];
  for (let start = 0; start < n; start++) {
    if (label[start] === -1 || seen[start]) continue;
    const want = label[start]!;
    let count = 0, minX = size, minY = size, maxX = -1, maxY = -1;
    stack.push(start);
    seen[start] = 1;
    while (stack.length > 0) {
      const p = stack.pop()!;
      const x = p % size, y = (p / size) | 0;
      count++;
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
      const next = [x > 0 ? p - 1 : -1, x < size - 1 ? p + 1 : -1, y > 0 ? p - size : -1, y < size - 1 ? p + size : -1];
      for (const q of next) {
        if (q >= 0 && !seen[q] && label[q] === want) {
          seen[q] = 1;
          stack.push(q);
        }
      }
    }
    if (count < MIN_BLOB_PIXELS) continue;
    const w = maxX - minX + 1, h = maxY - minY + 1;
    const r6 = (v: number) => Math.round(v * 1e6) / 1e6;
    out.push({
      type: 'entity',
      entity: {
        tag: { value: colours[want]!, confidence: r6(Math.min(1, count / (w * h))) },
        box: { l: r6(minX / size), t: r6(minY / size), w: r6(w / size), h: r6(h / size) },
      },
    });
  }
  return out;
}

function authorised(req: http.IncomingMessage, auth: InferenceServerOptions['auth']): boolean {
  if (!auth) return true;
  const same = (a: string, b: string) => {
    const x = Buffer.from(a), y = Buffer.from(b);
    return x.length === y.length && timingSafeEqual(x, y);
  };
  if ('username' in auth) {
    const expected = 'Basic ' + Buffer.from(`${auth.username}:${auth.password}`).toString('base64');
    return same(String(req.headers.authorization ?? ''), expected);
  }
  return same(String(req.headers[auth.headerName.toLowerCase()] ?? ''), auth.headerValue);
}

export async function startInferenceServer(opts: InferenceServerOptions = {}): Promise<InferenceServer> {
  const state = { requests: 0 };
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_IMAGE_BYTES) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      void (async () => {
        state.requests++;
        if (req.method !== 'POST') return reply(res, 405, { error: 'POST an image' });
        if (!authorised(req, opts.auth)) return reply(res, 401, { error: 'unauthorised' });
        const body = Buffer.concat(chunks);
        const contentType = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
        let inferences: EntityInference[];
        try {
          inferences = findColouredBlobs(await decodeToRgb(body, contentType, req.headers));
        } catch (err) {
          return reply(res, 400, { error: (err as Error).message });
        }
        opts.onRequest?.({ path: req.url ?? '/', headers: req.headers, contentType, body, inferences });
        if (inferences.length === 0) {
          res.writeHead(204).end();
          return;
        }
        reply(res, 200, { inferences });
      })();
    });
  };
  const server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host ?? '127.0.0.1';
  return {
    url: `${opts.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}/score`,
    port,
    get requests() {
      return state.requests;
    },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

function reply(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '8080' }, host: { type: 'string', default: '0.0.0.0' },
      'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' },
      username: { type: 'string' }, password: { type: 'string' },
      'header-name': { type: 'string' }, 'header-value': { type: 'string' },
    },
  });
  const auth = values.username !== undefined ? { username: values.username, password: values.password ?? '' }
    : values['header-name'] !== undefined ? { headerName: values['header-name'], headerValue: values['header-value'] ?? '' } : undefined;
  const tlsOpts = values['tls-cert'] && values['tls-key'] ? { cert: readFileSync(values['tls-cert']), key: readFileSync(values['tls-key']) } : undefined;
  const s = await startInferenceServer({ port: Number(values.port), host: values.host, ...(auth ? { auth } : {}), ...(tlsOpts ? { tls: tlsOpts } : {}) });
  process.stdout.write(`inference server listening on ${s.url}\n`);
  const shutdown = () => void s.close().then(() => process.exit(0));
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
