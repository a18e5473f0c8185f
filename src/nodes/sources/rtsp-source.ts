import { NodeTypes, type RtspSourceConfig } from '../../graph/model.js';
import { applyEndpointAliases } from '../../config/settings.js';
import { buildIngestArgs, redactUrl } from '../../media/ffmpeg-args.js';
import { FfmpegProcess, type FfmpegExit } from '../../media/ffmpeg-process.js';
import { Fmp4Parser } from '../../media/fmp4-parser.js';
import { DecodedFrameParser } from '../../media/decoded-frames.js';
import type { Frame, Sample, TrackInfo } from '../../media/sample.js';
import { Supervisor, type RunContext, type RunOutcome, type SupervisorState } from '../../runtime/supervisor.js';
import { caps, kinds, MediaNode, type Item, type NodeContext, type NodeFactory } from '../node.js';

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

const LIVE_STALL_MS = 10_000;
const REPLAY_STALL_MS = 120_000;
/** A jump of more than this between consecutive video samples is treated as a discontinuity. */
const MAX_FORWARD_JUMP_TICKS = 10 * 90_000;
const MAX_BACKWARD_JUMP_TICKS = 1 * 90_000;
const REPLAY_BACKLOG_HIGH = 64;
const REPLAY_BACKLOG_LOW = 8;

export class RtspSourceNode extends MediaNode<RtspSourceConfig> {
  private supervisor?: Supervisor;
  private proc?: FfmpegProcess;
  private stopped = false;
  private ended = false;
  /** Added to the parser's pts90k of the current connection to get graph media time. */
  private offset = 0;
  private runFirstRaw: number | null = null;
  private lastVideoPts = -Infinity;
  private lastVideoRaw = -Infinity;
  private lastEmitted = -Infinity;
  private pendingDiscont = false;
  private tracks: TrackInfo[] = [];
  override readonly stats = { connections: 0, samples: 0, frames: 0, bytes: 0, reconnects: 0, timestampJumps: 0 };
  private readonly replay: boolean;
  private failure?: string;

  constructor(config: RtspSourceConfig, ctx: NodeContext) {
    super(config, ctx);
    this.replay = ctx.replayInput !== undefined;
  }

  /** The camera URL with the configured credentials (userinfo). Never logged: use redactUrl(). */
  private inputUrl(): string {
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
    this.supervisor = new Supervisor({
      run: (rc) => this.runOnce(rc),
      restartOnEnd: !this.replay,
      ...(this.replay ? { initialDelayMs: 0, maxDelayMs: 0 } : {}),
      onStateChange: (s) => this.onSupervisorState(s),
    });
    this.supervisor.start();
    if (this.replay) {
      void this.supervisor.whenStopped().then(() => this.finish());
    }
  }

  private args(): string[] {
    const input = this.ctx.replayInput;
    const args = buildIngestArgs({
      input: input ? input.path : this.inputUrl(),
      inputKind: input ? 'file' : 'rtsp',
      rtspTransport: this.config.transport === 'Http' ? 'http' : 'tcp',
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
    const sdp: string[] = [];
    let inSdp = false;
    let sessionAnnounced = false;
    const proc = new FfmpegProcess({
      args: this.args(),
      extraOutput: decode,
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
    const frames = decode ? new DecodedFrameParser((f) => this.onFrame(f), { adoptChunks: true }) : undefined;
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
    if (frames && proc.extraOutput) feed(frames, proc.extraOutput);

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
        frames?.end();
      } catch (err) {
        parseError = err as Error;
      }
    }
    if (this.stopped || rc.signal.aborted) return 'ended';
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
          this.offset = this.lastVideoPts + 3000 - raw.pts90k;
          discont = true;
          this.ctx.publish('Diagnostics', 'MediaFormatError', {
            code: 'TimestampDiscontinuity', jumpSeconds: Math.round(delta / 90) / 1000,
          });
        }
      }
      this.lastVideoRaw = raw.pts90k;
    }
    const pts90k = raw.pts90k + this.offset;
    if (raw.track.kind === 'video') this.lastVideoPts = pts90k;
    if (pts90k > this.lastEmitted) this.lastEmitted = pts90k;
    if (discont && raw.track.kind === 'video') this.pendingDiscont = false;
    this.stats.samples++;
    this.stats.bytes += raw.data.length;
    const sample: Sample = discont && raw.track.kind === 'video' ? { ...raw, pts90k, discont: true } : { ...raw, pts90k };
    this.ctx.emit({ kind: 'sample', sample });
  }

  private onFrame(f: Frame): void {
    this.stats.frames++;
    this.ctx.emit({ kind: 'frame', frame: { ...f, pts90k: f.pts90k + this.offset } });
  }

  /** Replay: pause reading while the graph has a backlog (ffmpeg then blocks on its pipe). */
  private throttle(proc: FfmpegProcess): void {
    if (this.ctx.backlog() < REPLAY_BACKLOG_HIGH) return;
    const streams = [proc.stdout, proc.extraOutput].filter((s): s is NonNullable<typeof s> => s !== null);
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
    this.finish();
  }

  override destroy(): void {
    this.stopped = true;
    void this.proc?.kill();
    void this.supervisor?.stop();
  }

  get currentTracks(): readonly TrackInfo[] {
    return this.tracks;
  }
}

export const rtspSourceFactory: NodeFactory = {
  type: NodeTypes.RtspSource,
  outputCaps: () => caps('media', 'frames'),
  accepts: () => kinds(),
  create: (node, ctx) => new RtspSourceNode(node.config as RtspSourceConfig, ctx),
};
