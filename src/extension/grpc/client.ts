import * as grpc from '@grpc/grpc-js';
import type { EndpointConfig } from '../../graph/model.js';
import type { EncodedImage } from '../../media/sample.js';
import type { Inference } from '../../nodes/node.js';
import { redactUrl } from '../../media/ffmpeg-args.js';
import { backoffDelayMs } from '../../runtime/supervisor.js';
import { DEFAULT_RETRY_AFTER_MS, type DiagnosticName, type ExtensionOutcome, type ReplyProblem } from '../reply.js';
import { extensionClientClass, type Encoding, type PbMediaStreamMessage, type PbVideoFrameSampleFormat, type PixelFormat } from './proto.js';
import { inferenceFromProto, inferenceToProto } from './convert.js';
import { SharedMemoryFile } from './shared-memory.js';

/**
 * The gRPC side of `#Microsoft.Media.MediaGraphGrpcExtension` (lva-spec §5.3): one
 * ProcessMediaStream session per node, opened when the first picture is to be sent (its size and
 * format go into the descriptor), reopened after a failure once a back-off has passed, or when the
 * picture format changes. Every sample is answered by a MediaSample whose ack_sequence_number names
 * it; that answer resolves the sample's promise. Shared-memory regions are released on that
 * acknowledgement, or all at once when the session ends.
 *
 * Never throws: every failure is an ExtensionOutcome for the node to report. Credentials only ever
 * go into call metadata; the address is reported with any userinfo redacted.
 */

export const DEFAULT_GRPC_TIMEOUT_MS = 5_000;
const BACKOFF = { initialDelayMs: 250, maxDelayMs: 10_000, multiplier: 2, jitterRatio: 0.1 };

const PIXEL_FORMATS: Record<string, PixelFormat> = {
  yuv420p: 'YUV420P', rgb565be: 'RGB565BE', rgb565le: 'RGB565LE', rgb555be: 'RGB555BE', rgb555le: 'RGB555LE',
  rgb24: 'RGB24', bgr24: 'BGR24', argb: 'ARGB', rgba: 'RGBA', abgr: 'ABGR', bgra: 'BGRA',
};
const ENCODINGS: Record<string, Encoding> = { 'image/bmp': 'BMP', 'image/jpeg': 'JPG', 'image/png': 'PNG', 'image/x-raw': 'RAW' };

/** The descriptor's sample format for an image (pure). */
export function sampleFormatOf(image: EncodedImage): PbVideoFrameSampleFormat {
  const encoding = ENCODINGS[image.contentType] ?? 'RAW';
  return {
    encoding,
    pixel_format: encoding === 'RAW' ? (PIXEL_FORMATS[image.pixelFormat ?? ''] ?? 'NONE') : 'NONE',
    dimensions: { width: image.width, height: image.height },
    ...(encoding === 'RAW' && image.stride !== undefined ? { stride_bytes: image.stride } : {}),
  };
}

/** `tcp://host:port` → `host:port` for grpc-js. */
export function grpcTarget(url: string): string {
  const u = new URL(url);
  return `${u.hostname.includes(':') && !u.hostname.startsWith('[') ? `[${u.hostname}]` : u.hostname}:${u.port}`;
}

export interface GrpcExtensionClientOptions {
  endpoint: EndpointConfig;
  graphInstanceName: string;
  graphNodeName: string;
  extensionConfiguration?: string;
  /** Shared-memory mode: the size of the /dev/shm file; undefined = Embedded. */
  sharedMemoryBytes?: number;
  timeoutMs?: number;
  /** Where the /dev/shm file goes (tests). */
  shmDir?: string;
}

interface Pending {
  resolve(o: ExtensionOutcome): void;
  timer: NodeJS.Timeout;
}

export class GrpcExtensionClient {
  readonly displayUrl: string;
  private readonly target: string;
  private readonly creds: grpc.ChannelCredentials;
  private readonly metadata: grpc.Metadata;
  private readonly timeoutMs: number;
  private client?: grpc.Client;
  private call?: grpc.ClientDuplexStream<PbMediaStreamMessage, PbMediaStreamMessage>;
  private callFormat = '';
  private nextSeq = 1;
  private readonly pending = new Map<number, Pending>();
  private shm?: SharedMemoryFile;
  private failures = 0;
  private retryAt = 0;
  private lastProblem?: ReplyProblem;
  private closed = false;
  /** The extension's identifier from its descriptor (diagnostics). */
  extensionIdentifier?: string;
  readonly stats = { sessions: 0, sessionFailures: 0, unexpectedAcks: 0, shmFull: 0, droppedInferences: 0 };

  constructor(private readonly opts: GrpcExtensionClientOptions) {
    this.displayUrl = redactUrl(opts.endpoint.url);
    this.target = grpcTarget(opts.endpoint.url);
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_GRPC_TIMEOUT_MS;
    const tls = opts.endpoint.tls;
    this.creds = tls
      ? grpc.credentials.createSsl(tls.trustedCertificates && tls.trustedCertificates.length > 0 ? Buffer.from(tls.trustedCertificates.join('\n')) : null)
      : grpc.credentials.createInsecure();
    this.metadata = new grpc.Metadata();
    const c = opts.endpoint.credentials;
    if (c?.kind === 'usernamePassword') {
      this.metadata.set('x-ms-authentication', 'Basic ' + Buffer.from(`${c.username ?? ''}:${c.password ?? ''}`, 'utf8').toString('base64'));
    } else if (c?.kind === 'httpHeader' && c.headerName) {
      this.metadata.set(c.headerName.toLowerCase(), c.headerValue ?? '');
    }
  }

  /** The /dev/shm file in use (tests check it is gone after close). */
  get sharedMemoryPath(): string | undefined {
    return this.shm?.path;
  }

  /** Sends one picture (timestamp: 90 kHz since the epoch) with the inferences upstream found. */
  process(image: EncodedImage, timestamp90k: number, upstream: readonly Inference[] | undefined, nowMs = Date.now()): Promise<ExtensionOutcome> {
    if (this.closed) return Promise.resolve(failed('NetworkError', 'Closed', 'the node is stopping'));
    const format = sampleFormatOf(image);
    const formatKey = JSON.stringify(format);
    if (this.call && formatKey !== this.callFormat) this.endSession(failed('NetworkError', 'FormatChanged', 'the picture format changed; a new session starts'));
    if (!this.call) {
      if (nowMs < this.retryAt) {
        const p = this.lastProblem ?? { name: 'NetworkError' as const, errorCode: 'Unavailable', message: `${this.displayUrl} is unavailable` };
        return Promise.resolve({ kind: 'failed', problem: { ...p, message: `${p.message} (retrying in ${this.retryAt - nowMs} ms)` } });
      }
      const problem = this.open(format, formatKey);
      if (problem) return Promise.resolve({ kind: 'failed', problem });
    }
    const call = this.call!;
    const seq = this.nextSeq++;
    const sample: PbMediaStreamMessage['media_sample'] = {
      timestamp: Math.max(0, Math.round(timestamp90k)),
      ...(upstream && upstream.length > 0 ? { inferences: upstream.map(inferenceToProto) } : {}),
    };
    if (this.shm) {
      const offset = this.shm.put(seq, image.data);
      if (offset === undefined) {
        this.stats.shmFull++;
        return Promise.resolve(failed('ProtocolError', 'SharedMemoryFull', `the ${this.shm.size}-byte shared memory has no room for a ${image.data.length}-byte picture (the extension has not acknowledged earlier samples)`));
      }
      sample.content_reference = { address_offset: offset, length_bytes: image.data.length };
    } else {
      sample.content_bytes = { bytes: image.data };
    }
    return new Promise<ExtensionOutcome>((resolve) => {
      const timer = setTimeout(() => {
        // The region stays reserved: the extension may still read it; its late ack frees it.
        this.pending.delete(seq);
        resolve(failed('NetworkError', 'Timeout', `no answer from ${this.displayUrl} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(seq, { resolve, timer });
      call.write({ sequence_number: seq, ack_sequence_number: 0, media_sample: sample });
    });
  }

  private open(format: PbVideoFrameSampleFormat, formatKey: string): ReplyProblem | undefined {
    try {
      if (this.opts.sharedMemoryBytes !== undefined && !this.shm) {
        this.shm = new SharedMemoryFile(this.opts.sharedMemoryBytes, `${this.opts.graphInstanceName}-${this.opts.graphNodeName}`, this.opts.shmDir);
      }
      if (!this.client) {
        const Ctor = extensionClientClass();
        this.client = new Ctor(this.target, this.creds, { 'grpc.max_receive_message_length': 16 * 1024 * 1024, 'grpc.max_send_message_length': 256 * 1024 * 1024 });
      }
    } catch (err) {
      return this.noteFailure({ name: 'NetworkError', errorCode: 'SetupFailed', message: `cannot start a session with ${this.displayUrl}: ${(err as Error).message.slice(0, 200)}` });
    }
    const call = (this.client as any).ProcessMediaStream(this.metadata) as grpc.ClientDuplexStream<PbMediaStreamMessage, PbMediaStreamMessage>;
    this.call = call;
    this.callFormat = formatKey;
    this.nextSeq = 1;
    this.shm?.ring.reset();
    this.stats.sessions++;
    let gotDescriptor = false;
    call.on('data', (m: PbMediaStreamMessage) => {
      if (this.call !== call) return;
      if (m.media_stream_descriptor) {
        if (!gotDescriptor) this.extensionIdentifier = m.media_stream_descriptor.extension_identifier;
        gotDescriptor = true;
        return;
      }
      try {
        this.onAnswer(m);
      } catch (err) {
        // A message that decoded but makes no sense must not take the node down.
        this.endSession({ kind: 'failed', problem: this.noteFailure({ name: 'ProtocolError', errorCode: 'InvalidMessage', message: `unusable answer from ${this.displayUrl}: ${(err as Error).message.slice(0, 200)}` }) });
      }
    });
    call.on('error', (err: grpc.ServiceError) => {
      if (this.call !== call) return;
      const problem = this.noteFailure(classifyStatus(err, this.displayUrl));
      // RESOURCE_EXHAUSTED is the extension saying "too much": the node backs off on media time.
      const busy = err.code === grpc.status.RESOURCE_EXHAUSTED && problem.errorCode !== 'MessageTooLarge';
      this.endSession(busy ? { kind: 'busy', retryAfterMs: DEFAULT_RETRY_AFTER_MS } : { kind: 'failed', problem });
    });
    call.on('end', () => {
      if (this.call !== call) return;
      this.endSession({ kind: 'failed', problem: this.noteFailure({ name: 'ProtocolError', errorCode: 'StreamEnded', message: `${this.displayUrl} ended the stream` }) });
    });
    call.write({
      sequence_number: this.nextSeq++,
      ack_sequence_number: 0,
      media_stream_descriptor: {
        graph_identifier: { media_services_arm_id: '', graph_instance_name: this.opts.graphInstanceName, graph_node_name: this.opts.graphNodeName },
        extension_configuration: this.opts.extensionConfiguration ?? '',
        media_descriptor: { timescale: 90_000, video_frame_sample_format: format },
        ...(this.shm ? { shared_memory_buffer_transfer_properties: { handle_name: this.shm.handleName, length_bytes: this.shm.size } } : {}),
      },
    });
    return undefined;
  }

  private onAnswer(m: PbMediaStreamMessage): void {
    const ack = m.ack_sequence_number ?? 0;
    if (ack > 0) this.shm?.release(ack);
    const p = this.pending.get(ack);
    if (!p) {
      this.stats.unexpectedAcks++;
      return;
    }
    this.pending.delete(ack);
    clearTimeout(p.timer);
    this.failures = 0;
    const raw = m.media_sample?.inferences ?? [];
    const inferences = raw.map(inferenceFromProto).filter((x): x is Inference => x !== undefined);
    this.stats.droppedInferences += raw.length - inferences.length;
    if (inferences.length === 0) {
      p.resolve(raw.length > 0
        ? failed('ProtocolError', 'InvalidInference', `${this.displayUrl} answered ${raw.length} inference(s) without a value`)
        : { kind: 'nothing' });
      return;
    }
    p.resolve({
      kind: 'inferences', inferences,
      ...(raw.length > inferences.length ? { problem: { name: 'ProtocolError' as const, errorCode: 'InvalidInference', message: `${raw.length - inferences.length} inference(s) without a value were dropped` } } : {}),
    });
  }

  private noteFailure(problem: ReplyProblem): ReplyProblem {
    this.failures++;
    this.stats.sessionFailures++;
    this.lastProblem = problem;
    this.retryAt = Date.now() + backoffDelayMs(this.failures, Math.random(), BACKOFF);
    return problem;
  }

  /** Ends the current session; every sample waiting for an answer gets `outcome`. */
  private endSession(outcome: ExtensionOutcome): void {
    const call = this.call;
    this.call = undefined;
    this.callFormat = '';
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.resolve(outcome);
    }
    this.pending.clear();
    this.shm?.ring.reset();
    if (call) {
      try {
        call.cancel();
      } catch {
        /* already finished */
      }
    }
  }

  /** Ends the session, closes the channel and removes the shared-memory file. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.endSession(failed('NetworkError', 'Closed', 'the node is stopping'));
    this.client?.close();
    this.client = undefined;
    this.shm?.close();
    this.shm = undefined;
  }
}

function failed(name: DiagnosticName, errorCode: string, message: string): ExtensionOutcome {
  return { kind: 'failed', problem: { name, errorCode, message } };
}

/** A gRPC status → the diagnostics LVA publishes (pure). */
export function classifyStatus(err: { code?: number; details?: string; message?: string }, url: string): ReplyProblem {
  const details = String(err.details ?? err.message ?? '').slice(0, 200);
  const code = err.code ?? grpc.status.UNKNOWN;
  if (/certificate|ssl|tls|handshake/i.test(details)) return { name: 'ProtocolError', protocol: 'tls', errorCode: 'TlsFailed', message: `TLS with ${url} failed: ${details}` };
  switch (code) {
    case grpc.status.UNAVAILABLE:
      return { name: 'NetworkError', errorCode: /ECONNREFUSED|connection refused/i.test(details) ? 'ConnectionRefused' : 'Unavailable', message: `${url} is unavailable: ${details}` };
    case grpc.status.UNAUTHENTICATED:
      return { name: 'AuthenticationError', errorCode: 'Unauthenticated', message: `${url} refused the credentials: ${details}` };
    case grpc.status.PERMISSION_DENIED:
      return { name: 'AuthorizationError', errorCode: 'PermissionDenied', message: `${url} refused access: ${details}` };
    case grpc.status.RESOURCE_EXHAUSTED:
      return /larger than max/i.test(details)
        ? { name: 'ProtocolError', errorCode: 'MessageTooLarge', message: `${url} sent a message over the size limit: ${details}` }
        : { name: 'ProtocolError', errorCode: 'ResourceExhausted', message: `${url} is busy: ${details}` };
    case grpc.status.DEADLINE_EXCEEDED:
      return { name: 'NetworkError', errorCode: 'Timeout', message: `${url}: ${details}` };
    case grpc.status.INTERNAL:
      return { name: 'ProtocolError', errorCode: /pars(e|ing)|deserializ/i.test(details) ? 'InvalidMessage' : 'Internal', message: `${url}: ${details}` };
    default:
      return { name: 'ProtocolError', errorCode: grpc.status[code] ?? String(code), message: `${url} failed the stream: ${details}` };
  }
}
