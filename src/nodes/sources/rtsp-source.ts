import { NodeTypes, type RtspSourceConfig } from '../../graph/model.js';
import { applyEndpointAliases } from '../../config/settings.js';
import { buildIngestArgs, imageEncoding, padContent, redactUrl } from '../../media/ffmpeg-args.js';
import { relayIfCredentials, type RtspCredentialRelay } from '../../media/rtsp-relay.js';
import { FfmpegProcess, type FfmpegExit } from '../../media/ffmpeg-process.js';
import { Fmp4Parser } from '../../media/fmp4-parser.js';
import { DecodedFrameParser, ImageStreamParser, type RawImageSample } from '../../media/decoded-frames.js';
import { PictureJoiner } from '../../media/picture-join.js';
import type { EncodedImage, Frame, Sample, TrackInfo } from '../../media/sample.js';
import { Supervisor, type RunContext, type RunOutcome, type SupervisorState } from '../../runtime/supervisor.js';
import { reachabilityWakingClock, rtspTarget } from '../../runtime/reachability.js';
import { caps, kinds, MediaNode, type ImageRequest, type Item, type NodeContext, type NodeFactory } from '../node.js';

/**
 * `#Microsoft.Media.MediaGraphRtspSource`: one ffmpeg child per connection stream-copies the camera
 * into fragmented MP4 on pipe:1 (parsed into Samples here) and, when a processor needs pixels, decodes
 * small gray frames to pipe:3 — one decode per source for every consumer.
 *
 * - Supervised: a failed or stalled connection is retried with backoff (1 s → 30 s); the instance stays
 *   Active while the camera is away (lva-spec §1.5). Every child is reaped on every path.
 * - One media timeline for the life of the node: each new connection (and any absurd timestamp jump)
 *   is re-based so media time keeps increasing with wall-clock time, and its first samples are flagged
 *   `discont` so the gate and the sinks close what was cut.
 * - Replay (`lva-edge replay`): the same pipeline over a file, once; the file's timestamps are the
 *   media timeline, and reading pauses while the graph has a backlog, so nothing is dropped.
 */

// A hung camera or ffmpeg must be detected within 10 s (issue 8): no byte for 8 s, while a live
// stream delivers one fragment per frame.
const LIVE_STALL_MS = 8_000;
const REPLAY_STALL_MS = 120_000;
/** A jump of more than this between consecutive video samples is treated as a discontinuity. */
const MAX_FORWARD_JUMP_TICKS = 10 * 90_000;
const MAX_BACKWARD_JUMP_TICKS = 1 * 90_000;
const REPLAY_BACKLOG_HIGH = 64;
const REPLAY_BACKLOG_LOW = 8;

export class RtspSourceNode extends MediaNode<RtspSourceConfig> {
  private supervisor?: Supervisor;
  private relay?: RtspCredentialRelay;
  private proc?: FfmpegProcess;
  private stopped = false;
  private ended = false;
  /** Added to the parser's pts90k of the current connection to get graph media time. */
  private offset = 0;
  private runFirstRaw: number | null = null;
  private lastVideoPts = -Infinity;
  private lastVideoRaw = -Infinity;
  /** Offset applied to recent video samples, by their raw pts (bounded): pictures reuse it. */
  private readonly videoOffsets = new Map<number, number>();
  /** Last plausible sample duration per track id (track timescale). */
  private readonly lastDurations = new Map<number, number>();
  private lastEmitted = -Infinity;
  private pendingDiscont = false;
  /**
   * Live only: the newest video sample (and any audio after it) is held until the next video sample
   * arrives. When a camera dies mid-frame, ffmpeg flushes the incomplete last frame at EOF; holding
   * one frame lets us drop it instead of ending the cut clip on an undecodable picture (one frame,
   * 40 ms at 25 fps, of delay on the live path).
   */
  private held: Sample[] = [];
  private tracks: TrackInfo[] = [];
  override readonly stats = { connections: 0, samples: 0, frames: 0, bytes: 0, reconnects: 0, timestampJumps: 0, tailSamplesDropped: 0 };
  private readonly replay: boolean;
  private failure?: string;

  constructor(config: RtspSourceConfig, ctx: NodeContext) {
    super(config, ctx);
    this.replay = ctx.replayInput !== undefined;
  }

  /** The camera URL with the configured credentials (userinfo). Never logged: use redactUrl(). */
  private inputUrl(): string {
    if (this.relay) return this.relay.sessionUrl(); // credentials stay in the relay, off ffmpeg's command line
    const { credentials } = this.config.endpoint;
    const url = applyEndpointAliases(this.config.endpoint.url, this.ctx.settings.endpointAliases);
    if (!credentials?.username) return url;
    const u = new URL(url);
    if (u.username) return url; // credentials already in the URL win
    u.username = encodeURIComponent(credentials.username);
    u.password = encodeURIComponent(credentials.password ?? '');
    return u.toString();
  }

  override async start(): Promise<void> {
    // Build once up front so a bad URL fails Activate instead of looping in the supervisor.
    this.args();
    if (!this.replay) {
      const tunnel = this.config.transport === 'Http' ? 'http' as const : undefined;
      this.relay = (await relayIfCredentials(this.inputUrl(), { tunnel, onError: (m) => this.ctx.log.warn(m) })).relay;
    }
    this.supervisor = new Supervisor({
      run: (rc) => this.runOnce(rc),
      restartOnEnd: !this.replay,
      ...(this.replay ? { initialDelayMs: 0, maxDelayMs: 0 } : {}),
      onStateChange: (s) => this.onSupervisorState(s),
      // A camera that went away is retried as soon as its RTSP port answers again (not after the backoff),
      // and 5 s of media make a connection count as healthy again (a later drop starts from 1 s).
      ...(this.replay ? {} : { resetAfterMs: 5_000, ...this.reconnectClock() }),
    });
    this.supervisor.start();
    if (this.replay) {
      void this.supervisor.whenStopped().then(() => this.finish());
    }
  }

  private reconnectClock(): { clock?: ReturnType<typeof reachabilityWakingClock> } {
    const target = rtspTarget(applyEndpointAliases(this.config.endpoint.url, this.ctx.settings.endpointAliases));
    return target ? { clock: reachabilityWakingClock(target) } : {};
  }

  private args(): string[] {
    const input = this.ctx.replayInput;
    const args = buildIngestArgs({
      input: input ? input.path : this.inputUrl(),
      inputKind: input ? 'file' : 'rtsp',
      // Through the relay ffmpeg always speaks TCP-interleaved RTSP; the relay tunnels over HTTP if asked.
      rtspTransport: this.config.transport === 'Http' && !this.relay ? 'http' : 'tcp',
      realtime: input?.realtime,
      decode: this.ctx.decode,
      audio: this.ctx.wantsAudio,
    });
    if (!input) {
      // Verbose logging makes the RTSP demuxer print the SDP, which MediaSessionEstablished carries.
      const i = args.indexOf('-loglevel');
      if (i >= 0) args[i + 1] = 'verbose';
    }
    return args;
  }

  private onSupervisorState(s: SupervisorState): void {
    if (s.kind === 'backing-off') {
      this.ctx.log.warn({ attempt: s.attempt, delayMs: s.delayMs, outcome: s.outcome }, 'camera connection lost; retrying');
    }
  }

  private async runOnce(rc: RunContext): Promise<RunOutcome> {
    if (this.stopped) return 'ended';
    const replay = this.replay;
    const decode = this.ctx.decode !== undefined;
    const images = this.ctx.decode?.images ?? [];
    const gray = decode && (images.length === 0 || this.ctx.decode!.width > 0);
    const pictureOutputs = (gray ? 1 : 0) + images.length;
    const sdp: string[] = [];
    let inSdp = false;
    let sessionAnnounced = false;
    const proc = new FfmpegProcess({
      args: this.args(),
      extraOutputCount: pictureOutputs,
      stallTimeoutMs: replay ? REPLAY_STALL_MS : LIVE_STALL_MS,
      redact: (line) => {
        const pw = this.config.endpoint.credentials?.password;
        return pw ? line.split(pw).join('***') : line;
      },
      onStderrLine: (line) => {
        // ffmpeg (verbose) prints "SDP:" then the SDP lines, then continues with other messages.
        if (/^\[rtsp @ [^\]]+\] SDP:$/.test(line) || line === 'SDP:') {
          inSdp = true;
          return;
        }
        if (inSdp) {
          if (/^(v|o|s|i|u|e|p|c|b|t|r|z|k|a|m)=/.test(line)) {
            sdp.push(line);
            return;
          }
          inSdp = false;
        }
      },
    });
    this.proc = proc;
    this.stats.connections++;
    if (this.stats.connections > 1) this.stats.reconnects++;
    this.runFirstRaw = null;
    this.pendingDiscont = this.stats.connections > 1;
    const onAbort = () => void proc.stop();
    rc.signal.addEventListener('abort', onAbort, { once: true });

    let parseError: Error | undefined;
    // Samples may stay views into the pipe chunks: the ring buffer holds a few seconds, so the chunks
    // it pins are bounded by the pre-roll, and one copy of every byte of every camera is saved.
    const parser = new Fmp4Parser((item) => {
      if (item.kind === 'init') {
        this.tracks = item.tracks;
        if (!sessionAnnounced) {
          sessionAnnounced = true;
          rc.reportRunning();
          this.announceSession(sdp);
        }
        this.ctx.emit({ kind: 'init', tracks: item.tracks });
      } else {
        this.onSample(item.sample);
      }
    }, { adoptChunks: true });
    // The decoded-picture pipe's chunks are used by nothing else: pictures may be views into them
    // (one picture is most of a 64 KiB pipe read) instead of copies.
    // Gray copy and images are split from one decode: joined by pts into one Frame (picture-join.ts).
    type Part = { pts90k: number; gray?: Frame; image?: RawImageSample };
    const joiner = pictureOutputs > 0 ? new PictureJoiner<Part>(pictureOutputs, (parts) => this.onPicture(parts, gray, images)) : undefined;
    const pictureParsers: Array<{ push(b: Buffer): void; end(): void }> = [];
    if (gray) pictureParsers.push(new DecodedFrameParser((f) => joiner!.push(0, { pts90k: f.pts90k, gray: f }), { adoptChunks: true }));
    images.forEach((_, i) => {
      const output = i + (gray ? 1 : 0);
      pictureParsers.push(new ImageStreamParser((image) => joiner!.push(output, { pts90k: image.pts90k, image }), { adoptChunks: true }));
    });
    const ended: Array<Promise<void>> = [];
    const feed = (target: { push(b: Buffer): void }, stream: NodeJS.ReadableStream) => {
      // The child can be reaped while our side still holds unread output (reading is paused while
      // the graph has a backlog), so the run ends only once each output has been read to its end.
      ended.push(new Promise<void>((resolve) => {
        stream.once('end', resolve);
        stream.once('close', resolve);
        stream.once('error', () => resolve());
      }));
      stream.on('data', (chunk: Buffer) => {
        if (parseError) return;
        try {
          target.push(chunk);
        } catch (err) {
          parseError = err as Error;
          void proc.stop();
        }
        if (replay) this.throttle(proc);
      });
    };
    if (proc.stdout) feed(parser, proc.stdout);
    pictureParsers.forEach((p, i) => {
      const stream = proc.extraOutputs[i];
      if (stream) feed(p, stream);
    });

    const exit = await proc.exited;
    if (!rc.signal.aborted && !this.stopped) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(ended), new Promise<void>((r) => (timer = setTimeout(r, replay ? 600_000 : 5_000)))]);
      clearTimeout(timer);
    }
    rc.signal.removeEventListener('abort', onAbort);
    this.proc = undefined;
    if (!parseError) {
      try {
        parser.end();
        for (const p of pictureParsers) p.end();
      } catch (err) {
        parseError = err as Error;
      }
    }
    if (this.stopped || rc.signal.aborted) {
      this.flushHeld();
      return 'ended';
    }
    if (parseError) {
      this.ctx.publish('Diagnostics', 'MediaFormatError', { code: 'InvalidContainer', message: parseError.message });
      this.failure = parseError.message;
      return 'failed';
    }
    if (replay) {
      if (exit.code === 0) return 'ended';
      this.failure = `ffmpeg failed reading the input: ${exit.stderrTail.slice(-3).join(' | ')}`;
      this.ctx.publish('Diagnostics', 'MediaFormatError', { code: 'InputUnreadable', message: this.failure });
      return 'ended';
    }
    // The camera went away: what it sent last may be a frame cut in the middle.
    this.stats.tailSamplesDropped += this.held.length;
    this.held = [];
    this.reportDisconnect(exit);
    if (this.lastEmitted > -Infinity) this.ctx.emit({ kind: 'discont', pts90k: this.lastEmitted });
    return exit.code === 0 && sessionAnnounced ? 'ended' : 'failed';
  }

  private announceSession(sdp: string[]): void {
    const body = sdp.length > 0 ? `SDP:\n${sdp.join('\n')}\n` : 'SDP:\n';
    this.ctx.publish('Diagnostics', 'MediaSessionEstablished', { sdp: body });
  }

  /** Maps an ffmpeg exit onto LVA's diagnostics (lva-spec §4.3). */
  private reportDisconnect(exit: FfmpegExit): void {
    // Verbose logging fills the tail with session details; the cause is in the last lines.
    const tail = exit.stderrTail.slice(-4).join('\n');
    const url = redactUrl(this.config.endpoint.url);
    let name = 'NetworkError';
    let errorCode = 'ConnectionLost';
    if (exit.reason === 'stall') errorCode = 'Stalled';
    else if (/\b401\b|Unauthorized/i.test(tail)) { name = 'AuthenticationError'; errorCode = '401'; }
    else if (/\b403\b|Forbidden/.test(tail)) { name = 'AuthorizationError'; errorCode = '403'; }
    else if (/Connection refused/i.test(tail)) errorCode = 'ConnectionRefused';
    else if (/timed? ?out/i.test(tail)) errorCode = 'Timeout';
    else if (/\b(404|454|461)\b|Not Found|Unsupported transport|Invalid data/i.test(tail)) {
      name = 'ProtocolError';
      errorCode = /\b(404|454|461)\b/.exec(tail)?.[1] ?? 'InvalidData';
    }
    this.ctx.publish('Diagnostics', name, {
      errorCode, ...(name === 'ProtocolError' ? { protocol: 'rtsp' } : {}),
      url, reason: exit.reason, detail: exit.stderrTail.slice(-3).join(' | ').slice(0, 500),
    });
  }

  private onSample(raw: Sample): void {
    if (this.runFirstRaw === null) {
      this.runFirstRaw = raw.pts90k;
      // A new connection's timestamps are unrelated to the previous one's: comparing them would call
      // every reconnect a clock jump and undo the wall-clock re-base below.
      this.lastVideoRaw = -Infinity;
      this.videoOffsets.clear();
      if (this.replay) {
        this.offset = 0;
      } else if (!this.ctx.clock.anchored) {
        this.offset = -raw.pts90k;
        this.ctx.clock.anchor(0);
      } else {
        // Reconnected: continue the timeline where wall-clock time says we are.
        const target = Math.max(this.ctx.clock.wallToMedia(Date.now()), this.lastEmitted + 1);
        this.offset = target - raw.pts90k;
      }
    }
    let discont = this.pendingDiscont;
    if (raw.track.kind === 'video') {
      if (this.lastVideoRaw > -Infinity) {
        const delta = raw.pts90k - this.lastVideoRaw;
        const ptsSpread = MAX_BACKWARD_JUMP_TICKS; // B-frames reorder pts within a GOP, far less than 1 s
        if (delta > MAX_FORWARD_JUMP_TICKS || delta < -ptsSpread) {
          // The camera's clock jumped: keep media time continuous and tell everyone downstream.
          this.stats.timestampJumps++;
          // The first sample after the jump follows the last one by one frame (its last sane duration).
          const frame90k = Math.round((this.saneDuration(raw) * 90_000) / raw.track.timescale);
          this.offset = this.lastVideoPts + frame90k - raw.pts90k;
          discont = true;
          this.ctx.publish('Diagnostics', 'MediaFormatError', {
            code: 'TimestampDiscontinuity', jumpSeconds: Math.round(delta / 90) / 1000,
          });
        }
      }
      this.lastVideoRaw = raw.pts90k;
    }
    const pts90k = raw.pts90k + this.offset;
    if (raw.track.kind === 'video') {
      this.lastVideoPts = pts90k;
      this.videoOffsets.set(raw.pts90k, this.offset);
      if (this.videoOffsets.size > 512) this.videoOffsets.delete(this.videoOffsets.keys().next().value!);
    }
    if (pts90k > this.lastEmitted) this.lastEmitted = pts90k;
    if (discont && raw.track.kind === 'video') this.pendingDiscont = false;
    this.stats.samples++;
    this.stats.bytes += raw.data.length;
    // ffmpeg gives each sample the gap to the next one as its duration, so the last sample before a
    // forward clock jump lasts hours: a clip ending on it would claim that length. No frame of a live
    // camera lasts longer than the jump threshold; such a duration is the jump's, not the frame's.
    const durationTicks = raw.track.timescale > 0 ? (raw.duration * 90_000) / raw.track.timescale : 0;
    const duration = durationTicks > MAX_FORWARD_JUMP_TICKS || raw.duration < 0 ? this.saneDuration(raw) : raw.duration;
    if (duration === raw.duration && raw.duration > 0) this.lastDurations.set(raw.track.id, raw.duration);
    const sample: Sample = discont && raw.track.kind === 'video'
      ? { ...raw, duration, pts90k, discont: true } : { ...raw, duration, pts90k };
    if (this.replay) {
      this.ctx.emit({ kind: 'sample', sample });
      return;
    }
    if (sample.track.kind === 'video') this.flushHeld();
    else if (this.held.length === 0) {
      // Only a held video frame holds what follows it (keeps the order); audio alone is never held.
      this.ctx.emit({ kind: 'sample', sample });
      return;
    }
    this.held.push(sample);
  }

  private flushHeld(): void {
    const held = this.held;
    this.held = [];
    for (const sample of held) this.ctx.emit({ kind: 'sample', sample });
  }

  /** The track's last plausible sample duration (one frame at 25 fps before any is known). */
  private saneDuration(raw: Sample): number {
    return this.lastDurations.get(raw.track.id) ?? Math.max(1, Math.round((3600 * raw.track.timescale) / 90_000));
  }

  /** One decoded picture, complete with its gray copy and every extension image. */
  private onPicture(parts: Array<{ pts90k: number; gray?: Frame; image?: RawImageSample }>, gray: boolean, requests: readonly ImageRequest[]): void {
    this.stats.frames++;
    // A picture has the raw pts of the sample it was decoded from: it gets that sample's offset, so a
    // timestamp jump re-bases pictures exactly where it re-based the samples (the two pipes are read
    // independently, so the current offset may already, or not yet, include the jump).
    const rawPts = parts[0]!.pts90k;
    const pts90k = rawPts + (this.videoOffsets.get(rawPts) ?? this.offset);
    const images = new Map<string, EncodedImage>();
    const video = this.tracks.find((t) => t.kind === 'video');
    requests.forEach((req, i) => {
      const raw = parts[i + (gray ? 1 : 0)]!.image!;
      images.set(req.key, toEncodedImage(req, raw, video?.width, video?.height));
    });
    const g = gray ? parts[0]!.gray! : undefined;
    const first = images.values().next().value as EncodedImage | undefined;
    const frame: Frame = g
      ? { ...g, pts90k, ...(images.size > 0 ? { images } : {}) }
      : { pts90k, width: first?.width ?? 0, height: first?.height ?? 0, format: 'none', data: EMPTY, images };
    this.ctx.emit({ kind: 'frame', frame });
  }

  /** Replay: pause reading while the graph has a backlog (ffmpeg then blocks on its pipe). */
  private throttle(proc: FfmpegProcess): void {
    if (this.ctx.backlog() < REPLAY_BACKLOG_HIGH) return;
    const streams = [proc.stdout, ...proc.extraOutputs].filter((s): s is NonNullable<typeof s> => s !== null);
    if (streams.every((s) => s.isPaused())) return;
    for (const s of streams) s.pause();
    const check = () => {
      if (this.ctx.backlog() <= REPLAY_BACKLOG_LOW || this.stopped) {
        for (const s of streams) s.resume();
      } else {
        setTimeout(check, 2);
      }
    };
    setTimeout(check, 2);
  }

  handle(_pad: number, _item: Item): void {}

  /** Replay only: the input was fully read (or could not be). */
  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.failure) this.ctx.fail(new Error(this.failure));
    this.ctx.emit({ kind: 'eos' });
  }

  override async stop(): Promise<void> {
    this.stopped = true;
    await this.supervisor?.stop();
    await this.relay?.close();
    this.finish();
  }

  override destroy(): void {
    this.stopped = true;
    void this.proc?.kill();
    void this.supervisor?.stop();
    void this.relay?.close();
  }

  get currentTracks(): readonly TrackInfo[] {
    return this.tracks;
  }
}

const EMPTY = new Uint8Array(0);

/** Bytes per row of plane 0 for the raw pixel formats (ffmpeg writes rows unpadded). */
const RAW_BYTES_PER_PIXEL: Readonly<Record<string, number>> = {
  yuv420p: 1, rgb565be: 2, rgb565le: 2, rgb555be: 2, rgb555le: 2, rgb24: 3, bgr24: 3, argb: 4, rgba: 4, abgr: 4, bgra: 4,
};

function toEncodedImage(req: ImageRequest, raw: RawImageSample, srcW: number | undefined, srcH: number | undefined): EncodedImage {
  const enc = imageEncoding(req);
  const content = req.scale?.mode === 'Pad' && srcW && srcH
    ? padContent(srcW, srcH, raw.width, raw.height, enc.pixelFormat)
    : { l: 0, t: 0, w: 1, h: 1 };
  const image: EncodedImage = { width: raw.width, height: raw.height, contentType: enc.contentType, content, data: raw.data };
  if (req.format.encoding !== 'Raw') return image;
  return { ...image, pixelFormat: enc.pixelFormat, stride: raw.width * (RAW_BYTES_PER_PIXEL[enc.pixelFormat] ?? 1) };
}

export const rtspSourceFactory: NodeFactory = {
  type: NodeTypes.RtspSource,
  outputCaps: () => caps('media', 'frames'),
  accepts: () => kinds(),
  create: (node, ctx) => new RtspSourceNode(node.config as RtspSourceConfig, ctx),
};
