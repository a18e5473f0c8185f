import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import path from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { decodeToRgb, findColouredBlobs, type EntityInference } from './inference-server.js';
import { extensionService, type PbInference, type PbMediaStreamDescriptor, type PbMediaStreamMessage } from '../extension/grpc/proto.js';
import { inferenceToProto } from '../extension/grpc/convert.js';
import type { Inference } from '../nodes/node.js';
import { SHM_DIR } from '../extension/grpc/shared-memory.js';

/**
 * Reference inference server for the gRPC extension (lva-spec §5.3): the same red/green/blue blob
 * finder as the HTTP one (inference-server.ts), behind MediaGraphExtension.ProcessMediaStream.
 * Per stream: the client's descriptor is answered with ours; each sample's picture is read from the
 * message (Embedded) or from the client's /dev/shm file (SharedMemory), decoded (BMP/raw here,
 * JPEG/PNG by ffmpeg), and answered with a MediaSample acknowledging it — with entity inferences, or
 * none. Samples of one stream are answered in order. Optional Basic authentication
 * (x-ms-authentication metadata, UNAUTHENTICATED otherwise) and TLS.
 *
 * Run: `node --import tsx src/tools/grpc-inference-server.ts --port 5001 [--tls-cert c --tls-key k]
 * [--username u --password p]`; point a GrpcExtension at tcp://host:5001.
 */

export const EXTENSION_IDENTIFIER = 'lva-edge-reference-blob-finder';

export interface GrpcInferenceServerOptions {
  port?: number;
  host?: string;
  tls?: { cert: string | Buffer; key: string | Buffer };
  auth?: { username: string; password: string };
  /** Called for every sample answered, for tests. */
  onSample?: (s: ReceivedSample) => void;
  /** Called for every stream's descriptor, with the call metadata, for tests. */
  onDescriptor?: (d: PbMediaStreamDescriptor, metadata: grpc.Metadata) => void;
}

export interface ReceivedSample {
  descriptor: PbMediaStreamDescriptor;
  sequenceNumber: number;
  timestamp: number;
  transfer: 'embedded' | 'sharedMemory';
  contentType: string;
  body: Buffer;
  upstream: PbInference[];
  inferences: EntityInference[];
}

export interface GrpcInferenceServer {
  /** tcp://host:port, as a topology's endpoint url. */
  url: string;
  port: number;
  readonly samples: number;
  readonly sessions: number;
  close(): Promise<void>;
}

const CONTENT_TYPES: Record<string, string> = { BMP: 'image/bmp', JPG: 'image/jpeg', PNG: 'image/png', RAW: 'image/x-raw' };

function authorised(md: grpc.Metadata, auth: GrpcInferenceServerOptions['auth']): boolean {
  if (!auth) return true;
  const got = Buffer.from(String(md.get('x-ms-authentication')[0] ?? ''));
  const want = Buffer.from('Basic ' + Buffer.from(`${auth.username}:${auth.password}`).toString('base64'));
  return got.length === want.length && timingSafeEqual(got, want);
}

/** The picture a sample carries, with the "headers" decodeToRgb reads raw dimensions from. */
function pictureOf(d: PbMediaStreamDescriptor, m: PbMediaStreamMessage, shmFd: number | undefined): { contentType: string; body: Buffer; headers: Record<string, string> } {
  const f = d.media_descriptor?.video_frame_sample_format;
  const contentType = CONTENT_TYPES[f?.encoding ?? 'BMP'] ?? 'image/bmp';
  const s = m.media_sample!;
  let body: Buffer;
  if (s.content_reference) {
    if (shmFd === undefined) throw new Error('a content reference on a stream without shared memory');
    const offset = Number(s.content_reference.address_offset ?? 0);
    const length = Number(s.content_reference.length_bytes ?? 0);
    const size = Number(d.shared_memory_buffer_transfer_properties?.length_bytes ?? 0);
    if (!(length > 0 && offset >= 0 && offset + length <= size)) throw new Error(`reference [${offset}, +${length}) outside the ${size}-byte shared memory`);
    body = Buffer.alloc(length);
    readSync(shmFd, body, 0, length, offset);
  } else {
    body = Buffer.from(s.content_bytes?.bytes ?? []);
  }
  const headers: Record<string, string> = {};
  if (contentType === 'image/x-raw') {
    headers['x-ms-image-width'] = String(f?.dimensions?.width ?? 0);
    headers['x-ms-image-height'] = String(f?.dimensions?.height ?? 0);
    headers['x-ms-image-pixel-format'] = String(f?.pixel_format ?? '').toLowerCase();
    if (f?.stride_bytes) headers['x-ms-image-stride'] = String(f.stride_bytes);
  }
  return { contentType, body, headers };
}

export async function startGrpcInferenceServer(opts: GrpcInferenceServerOptions = {}): Promise<GrpcInferenceServer> {
  const state = { samples: 0, sessions: 0 };
  const server = new grpc.Server();
  const live = new Set<grpc.ServerDuplexStream<PbMediaStreamMessage, PbMediaStreamMessage>>();
  server.addService(extensionService(), {
    ProcessMediaStream: (call: grpc.ServerDuplexStream<PbMediaStreamMessage, PbMediaStreamMessage>) => {
      live.add(call);
      if (!authorised(call.metadata, opts.auth)) {
        call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: 'x-ms-authentication does not match' });
        return;
      }
      state.sessions++;
      let descriptor: PbMediaStreamDescriptor | undefined;
      let shmFd: number | undefined;
      let seq = 1;
      let queue = Promise.resolve();
      const finish = () => {
        live.delete(call);
        if (shmFd !== undefined) closeSync(shmFd);
        shmFd = undefined;
      };
      const fail = (code: grpc.status, details: string) => {
        call.emit('error', { code, details });
        finish();
      };
      call.on('data', (m: PbMediaStreamMessage) => {
        queue = queue.then(async () => {
          if (!live.has(call)) return;
          if (!descriptor) {
            if (!m.media_stream_descriptor) return fail(grpc.status.INVALID_ARGUMENT, 'the first message must be a MediaStreamDescriptor');
            descriptor = m.media_stream_descriptor;
            opts.onDescriptor?.(descriptor, call.metadata);
            const shm = descriptor.shared_memory_buffer_transfer_properties;
            if (shm) {
              const name = shm.handle_name ?? '';
              if (!/^[A-Za-z0-9_.-]+$/.test(name)) return fail(grpc.status.INVALID_ARGUMENT, 'bad shared memory handle name');
              try {
                shmFd = openSync(path.join(SHM_DIR, name), 'r');
              } catch (err) {
                return fail(grpc.status.FAILED_PRECONDITION, `cannot open shared memory ${name}: ${(err as Error).message}`);
              }
            }
            call.write({ sequence_number: seq++, ack_sequence_number: 0, media_stream_descriptor: { extension_identifier: EXTENSION_IDENTIFIER, media_descriptor: { timescale: 90_000 } } });
            return;
          }
          if (!m.media_sample) return;
          let inferences: EntityInference[] = [];
          let picture: ReturnType<typeof pictureOf> | undefined;
          try {
            picture = pictureOf(descriptor, m, shmFd);
            inferences = findColouredBlobs(await decodeToRgb(picture.body, picture.contentType, picture.headers));
          } catch {
            // An undecodable picture is answered with no inferences (its memory must still be released).
          }
          state.samples++;
          if (picture) {
            opts.onSample?.({
              descriptor, sequenceNumber: Number(m.sequence_number ?? 0), timestamp: Number(m.media_sample.timestamp ?? 0),
              transfer: m.media_sample.content_reference ? 'sharedMemory' : 'embedded', contentType: picture.contentType, body: picture.body,
              upstream: m.media_sample.inferences ?? [], inferences,
            });
          }
          if (!live.has(call)) return;
          call.write({
            sequence_number: seq++, ack_sequence_number: Number(m.sequence_number ?? 0),
            media_sample: { timestamp: Number(m.media_sample.timestamp ?? 0), inferences: inferences.map((i) => inferenceToProto(i as unknown as Inference)) },
          });
        });
      });
      call.on('end', () => {
        void queue.then(() => {
          if (live.has(call)) call.end();
          finish();
        });
      });
      call.on('error', finish);
      call.on('cancelled', finish);
    },
  });
  const host = opts.host ?? '127.0.0.1';
  const creds = opts.tls
    ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(opts.tls.cert), private_key: Buffer.from(opts.tls.key) }], false)
    : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${opts.port ?? 0}`, creds, (err, p) => (err ? reject(err) : resolve(p)));
  });
  return {
    url: `tcp://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    get samples() {
      return state.samples;
    },
    get sessions() {
      return state.sessions;
    },
    close: () => new Promise<void>((resolve) => {
      server.forceShutdown();
      resolve();
    }),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '5001' }, host: { type: 'string', default: '0.0.0.0' },
      'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' },
      username: { type: 'string' }, password: { type: 'string' },
    },
  });
  const tls = values['tls-cert'] && values['tls-key'] ? { cert: readFileSync(values['tls-cert']), key: readFileSync(values['tls-key']) } : undefined;
  const s = await startGrpcInferenceServer({
    port: Number(values.port), host: values.host,
    ...(values.username !== undefined ? { auth: { username: values.username, password: values.password ?? '' } } : {}),
    ...(tls ? { tls } : {}),
  });
  process.stdout.write(`gRPC inference server listening on ${s.url}\n`);
  const shutdown = () => void s.close().then(() => process.exit(0));
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
