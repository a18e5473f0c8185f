import type { Frame, Sample, TrackInfo } from '../media/sample.js';
import type { ImageConfig, NodeConfig, ResolvedNode } from '../graph/model.js';
import type { EventClass } from '../runtime/events.js';
import type { InputRouter } from '../runtime/inputs.js';
import type { MediaClock } from '../runtime/media-clock.js';
import type { Log } from '../util/logger.js';
import type { ModuleSettings } from '../config/settings.js';

/**
 * The element model (after GStreamer): a node has numbered input pads (one per `inputs[]` entry) and
 * one output; what flows is an ordered stream of Items. What a link may carry (its caps) is checked
 * when the graph is compiled, so wiring that cannot work is refused at Activate, not while running.
 */

/** An inference as published in LVA's Analytics.Inference body (lva-spec §5.2). */
export type Inference = Record<string, unknown> & { type: string };

/** A trigger/analytics event travelling inside the graph. */
export interface GraphEvent {
  /** Media time of what the event is about (90 kHz, graph timeline). */
  pts90k: number;
  /** Inferences (motion, extensions) — published by IoT Hub message sinks as Analytics.Inference. */
  inferences?: Inference[];
  /** A hub message (IoT Hub message source): body and application properties, forwarded as they came. */
  message?: { body: unknown; applicationProperties: Record<string, string> };
  /** The node that produced the event (its subject in published events). */
  producer: { name: string; role: 'sources' | 'processors' | 'sinks' };
}

export type Item =
  | { kind: 'init'; tracks: readonly TrackInfo[] }
  | { kind: 'sample'; sample: Sample }
  | { kind: 'frame'; frame: Frame; inferences?: Inference[] }
  | { kind: 'event'; event: GraphEvent }
  | Activation
  /** "Everything up to media time pts90k has been analysed on this path": lets a signal gate hold
   * media exactly as long as its trigger inputs lag behind, so replay is deterministic and live
   * triggers are never late merely because analysis is slower than stream copy. */
  | { kind: 'watermark'; pts90k: number }
  /** The stream broke after media time pts90k (camera lost); what follows, if anything, is flagged
   * `discont`. Lets a gate close the clip in progress now instead of when the camera returns. */
  | { kind: 'discont'; pts90k: number }
  | { kind: 'eos' };

/**
 * Signal-gate activations travel in band with the media they delimit, so a sink sees exactly:
 * activation start → samples (pre-roll first) → activation end. A sink fed straight from a source
 * (continuous recording) never sees one.
 */
export type Activation =
  | { kind: 'activation'; phase: 'start'; id: number; requestedStart90k: number; firstEvent90k: number }
  | { kind: 'activation'; phase: 'end'; id: number; end90k: number; truncated: boolean };

export type ItemKind = Item['kind'];

/** Link caps: which kinds of item a pad produces/accepts. */
export type Caps = ReadonlySet<'media' | 'frames' | 'events'>;

export interface NodeContext {
  readonly instanceName: string;
  readonly topologyName: string;
  readonly node: ResolvedNode;
  readonly log: Log;
  readonly clock: MediaClock;
  readonly settings: ModuleSettings;
  readonly inputs: InputRouter;
  /** The `@type` of a node of this graph (for nodes whose pads behave by what feeds them). */
  upstreamType(nodeName: string): string | undefined;
  /** Sources: the decoded frames downstream processors asked for (none = stream copy only). */
  readonly decode?: DecodeRequest;
  /** Sources: whether any consumer of encoded media lets audio through its output selectors. */
  readonly wantsAudio: boolean;
  /** Items queued on all links of the graph (replay sources throttle on it). */
  backlog(): number;
  /** Replay re-roots every sink path under this directory (interfaces.md `lva-edge replay`). */
  readonly outputRoot?: string;
  /** Replay: the file that replaces the RTSP source's URL. */
  readonly replayInput?: { path: string; realtime: boolean };
  /** Publishes an LVA event whose subject is this node. */
  publish(eventClass: EventClass, name: string, body: Record<string, unknown>, opts?: { eventTime?: string; output?: string }): void;
  /** Publishes an event with an explicit subject (hub sinks publish on behalf of the producer). */
  publishAs(subject: string, eventClass: EventClass, name: string, body: Record<string, unknown>, opts?: { eventTime?: string; output?: string }): void;
  /** Sends an item to every downstream link (filtered by each link's selectors and caps). */
  emit(item: Item): void;
  /** Reports a fatal error of the node; the runtime logs it and publishes a diagnostics event. */
  fail(err: Error): void;
}

export interface DecodeRequest {
  width: number;
  height: number;
  /** Upper bound on analysed frames per second; undefined = every frame. */
  fps?: number;
  /**
   * Encoded images for extensions (runtime-filled for sources; factories declare theirs with
   * `image()`). Every image of a picture is cut from the same decoded frame as the gray copy, so a
   * Frame carries its gray pixels and its images together. `width`/`height` 0 = no gray copy wanted.
   */
  images?: ImageRequest[];
}

/** One image output of the source's ffmpeg: how an extension wants its pictures scaled and encoded. */
export interface ImageRequest {
  /** Same scale + format = same key = one shared ffmpeg output (several extensions may share it). */
  readonly key: string;
  readonly scale?: ImageConfig['scale'];
  readonly format: ImageConfig['format'];
}

export function imageRequestKey(image: ImageConfig): string {
  const s = image.scale;
  const f = image.format;
  const scale = s ? `${s.mode}:${s.width ?? ''}x${s.height ?? ''}` : 'source';
  const format = f.encoding === 'Jpeg' ? `Jpeg:${f.quality ?? ''}` : f.encoding === 'Raw' ? `Raw:${f.pixelFormat}` : f.encoding;
  return `${scale}/${format}`;
}

export abstract class MediaNode<C extends NodeConfig = NodeConfig> {
  constructor(readonly config: C, protected readonly ctx: NodeContext) {}

  get name(): string {
    return this.config.name;
  }

  /** Called sinks-first before data flows. */
  async start(): Promise<void> {}

  /** Handles one item arriving on input pad `pad`. Items of one link arrive in order, one at a time. */
  abstract handle(pad: number, item: Item): Promise<void> | void;

  /** Graceful stop (sources: stop producing and emit eos). Other nodes finish on eos. */
  async stop(): Promise<void> {}

  /** Counters exported as metrics (`lva_node_counter{graph_node, counter}`); nodes override it. */
  readonly stats?: Readonly<Record<string, number>>;

  /** Abort now: kill children, close files as they are. Must not throw. */
  destroy(): void {}
}

export interface NodeFactory {
  readonly type: string;
  /** What the node produces given what its inputs carry (for compile-time negotiation). */
  outputCaps(inputCaps: Caps[]): Caps;
  /** Checks its inputs' caps; returns an error message when the wiring cannot work. */
  checkInputs?(inputCaps: Caps[], node: ResolvedNode): string | undefined;
  /** What item kinds pad `pad` wants (others are filtered out at the link). */
  accepts(pad: number, node: ResolvedNode): ReadonlySet<ItemKind>;
  /** For processors needing pixels: the decoded frames they want from the source. */
  decode?(node: ResolvedNode): DecodeRequest | undefined;
  /** For extensions: the encoded image they send, produced by the (upstream) source's ffmpeg. */
  image?(node: ResolvedNode): ImageRequest | undefined;
  /** Upper bound this node puts on the frames per second it passes on (frame-rate filter, sampling),
   * so the source's ffmpeg decodes/encodes no more than some consumer can use. */
  maxFps?(node: ResolvedNode): number | undefined;
  create(node: ResolvedNode, ctx: NodeContext): MediaNode;
}

export const caps = (...k: Array<'media' | 'frames' | 'events'>): Caps => new Set(k);
export const kinds = (...k: ItemKind[]): ReadonlySet<ItemKind> => new Set(k);
