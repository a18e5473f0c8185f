import { LvaError, moduleValidationError, graphValidationError } from '../api/errors.js';
import type { ResolvedGraph, ResolvedNode } from '../graph/model.js';
import { NodeTypes } from '../graph/model.js';
import type { Caps, DecodeRequest, ImageRequest, Item, MediaNode, NodeContext, NodeFactory } from '../nodes/node.js';
import type { EventBus, EventClass } from './events.js';
import type { InputRouter } from './inputs.js';
import { Link, type LinkPolicy } from './link.js';
import { MediaClock } from './media-clock.js';
import type { GraphRuntime } from './instance.js';
import type { ModuleSettings } from '../config/settings.js';
import type { Log } from '../util/logger.js';

/**
 * Compiles a resolved graph into nodes and links and runs it.
 *
 * Compile (at Activate, before anything starts): every node type must have a factory here (else 400
 * ModuleValidationError naming the node); caps are negotiated link by link in topological order, so
 * e.g. a hub sink fed only media is refused; processors that need pixels ask their RTSP source for a
 * decode branch at the size they need.
 *
 * Lifecycle: start sinks → processors → sources; stop sources first, then let `eos` flow down so that
 * sinks finish their clips; after a deadline everything still running is destroyed.
 */

export interface RuntimeEnv {
  bus: EventBus;
  inputs: InputRouter;
  settings: () => ModuleSettings;
  log: Log;
  registry: ReadonlyMap<string, NodeFactory>;
  /** Replay: file input, output re-rooting and a fixed media-time origin. */
  replay?: { input: string; realtime: boolean; outputRoot: string; startTimeMs: number };
  /** Called whenever a source advances media time (replay feeds timed hub messages from here). */
  onMediaTime?: (pts90k: number) => void;
  /** How long a graceful stop may take before nodes are destroyed. */
  drainTimeoutMs?: number;
}

const ROLE_PATH = { source: 'sources', processor: 'processors', sink: 'sinks' } as const;

interface CompiledNode {
  spec: ResolvedNode;
  factory: NodeFactory;
  caps: Caps;
  outgoing: Link[];
  node?: MediaNode;
  eosPending: number;
  done: boolean;
}

export class GraphRunner implements GraphRuntime {
  readonly clock: MediaClock;
  private readonly nodes = new Map<string, CompiledNode>();
  private readonly order: CompiledNode[] = [];
  private links: Link[] = [];
  private finished!: Promise<void>;
  private resolveFinished!: () => void;
  private stopping = false;
  private readonly log: Log;
  readonly dropped = { frames: 0, media: 0 };
  /** Newest media time any source has emitted (for events not tied to a sample, e.g. in replay). */
  mediaNow90k = 0;
  readonly errors: string[] = [];

  constructor(readonly graph: ResolvedGraph, private readonly env: RuntimeEnv) {
    this.log = env.log.child({ instance: graph.instanceName });
    this.clock = new MediaClock(Date.now, env.replay?.startTimeMs);
    this.compile();
  }

  /** Resolves when every node has seen end-of-stream (replay: the whole file is processed). */
  get done(): Promise<void> {
    return this.finished;
  }

  private compile(): void {
    const byName = new Map(this.graph.nodes.map((n) => [n.config.name, n]));
    for (const spec of this.graph.nodes) {
      const factory = this.env.registry.get(spec.config.type);
      if (!factory) {
        throw moduleValidationError(
          `Node '${spec.config.name}' of type '${spec.config.type}' is not supported by this module yet.`, spec.target);
      }
      this.nodes.set(spec.config.name, { spec, factory, caps: new Set(), outgoing: [], eosPending: spec.inputs.length, done: false });
    }
    // Topological order (validation guarantees acyclic; re-checked here defensively).
    const visiting = new Set<string>();
    const visit = (name: string): void => {
      const c = this.nodes.get(name)!;
      if (this.order.includes(c)) return;
      if (visiting.has(name)) throw graphValidationError(`The graph has a cycle through '${name}'.`, c.spec.target);
      visiting.add(name);
      for (const i of c.spec.inputs) {
        if (!byName.has(i.nodeName)) throw graphValidationError(`Node '${name}' names unknown input '${i.nodeName}'.`, c.spec.target);
        visit(i.nodeName);
      }
      visiting.delete(name);
      this.order.push(c);
    };
    for (const n of this.graph.nodes) visit(n.config.name);
    // Caps negotiation.
    for (const c of this.order) {
      const inCaps = c.spec.inputs.map((i) => this.nodes.get(i.nodeName)!.caps);
      const problem = c.factory.checkInputs?.(inCaps, c.spec);
      if (problem) throw graphValidationError(problem, c.spec.target);
      c.caps = c.factory.outputCaps(inCaps);
    }
  }

  /**
   * Decode request for each RTSP source: the largest gray size any direct consumer asks for, plus
   * one image output per distinct image any extension downstream (directly, behind a frame-rate
   * filter, behind a motion detector or another extension) asks for. The rate is the fastest any
   * consumer can use: an extension uses no more than its sampling rate or a frame-rate filter on its
   * way, so ffmpeg decodes and encodes no more than that (undefined = some consumer wants every frame).
   */
  decodeFor(sourceName: string): DecodeRequest | undefined {
    let req: DecodeRequest | undefined;
    for (const c of this.order) {
      if (!c.spec.inputs.some((i) => i.nodeName === sourceName)) continue;
      const d = c.factory.decode?.(c.spec);
      if (!d) continue;
      req = req
        ? { width: Math.max(req.width, d.width), height: Math.max(req.height, d.height),
            fps: req.fps === undefined || d.fps === undefined ? undefined : Math.max(req.fps, d.fps) }
        : { ...d };
    }
    const images = new Map<string, ImageRequest>();
    let imageFps = 0;
    for (const c of this.order) {
      const img = c.factory.image?.(c.spec);
      if (!img || !this.isDownstreamOf(c, sourceName)) continue;
      if (!images.has(img.key)) images.set(img.key, img);
      imageFps = Math.max(imageFps, this.rateOut(c));
    }
    if (images.size === 0) return req;
    const fps = req && req.fps === undefined ? Infinity : Math.max(req?.fps ?? 0, imageFps);
    return {
      width: req?.width ?? 0, height: req?.height ?? 0,
      ...(Number.isFinite(fps) ? { fps } : {}),
      images: [...images.values()],
    };
  }

  private isDownstreamOf(c: CompiledNode, sourceName: string, seen = new Set<string>()): boolean {
    for (const i of c.spec.inputs) {
      if (i.nodeName === sourceName) return true;
      if (seen.has(i.nodeName)) continue;
      seen.add(i.nodeName);
      if (this.isDownstreamOf(this.nodes.get(i.nodeName)!, sourceName, seen)) return true;
    }
    return false;
  }

  /** Most pictures per second node `c` can pass on (Infinity = no limit on its path). */
  private rateOut(c: CompiledNode): number {
    let inRate = c.spec.inputs.length === 0 ? Infinity : 0;
    for (const i of c.spec.inputs) inRate = Math.max(inRate, this.rateOut(this.nodes.get(i.nodeName)!));
    return Math.min(inRate, c.factory.maxFps?.(c.spec) ?? Infinity);
  }

  /** Whether a consumer of `sourceName`'s encoded media lets audio through its selectors. */
  private wantsAudio(sourceName: string): boolean {
    const audio = { kind: 'sample', sample: { track: { kind: 'audio' } } } as unknown as Item;
    return this.order.some((c) => c.spec.inputs.some((input, pad) => input.nodeName === sourceName &&
      new Link('', '', pad, input.outputSelectors, c.factory.accepts(pad, c.spec), 'lossless', () => {}, () => {}).wants(audio)));
  }

  async start(): Promise<void> {
    this.finished = new Promise((r) => (this.resolveFinished = r));
    const replay = this.env.replay;
    for (const c of this.order) c.node = c.factory.create(c.spec, this.contextFor(c));
    // Links.
    for (const c of this.order) {
      c.spec.inputs.forEach((input, pad) => {
        const from = this.nodes.get(input.nodeName)!;
        const accepts = c.factory.accepts(pad, c.spec);
        // Deterministic replay never drops analysis frames: an extension waits for each answer and the
        // source pauses reading while the graph has a backlog.
        const deterministic = replay !== undefined && !replay.realtime;
        const policy: LinkPolicy = accepts.has('frame') && !accepts.has('sample') && !deterministic ? 'drop-oldest' : 'lossless';
        const link = new Link(from.spec.config.name, c.spec.config.name, pad, input.outputSelectors, accepts, policy,
          (p, item, lost) => this.deliver(c, p, item, lost),
          (l, n, reason) => this.onDrop(l, n, reason));
        from.outgoing.push(link);
        this.links.push(link);
      });
    }
    const startOrder = [...this.order].reverse(); // sinks first, sources last
    try {
      for (const c of startOrder) await c.node!.start();
    } catch (err) {
      this.destroyAll();
      if (err instanceof LvaError) throw err;
      throw moduleValidationError(`Graph instance '${this.graph.instanceName}' could not start: ${(err as Error).message}`);
    }
    if (this.order.every((c) => c.spec.inputs.length === 0 && c.done)) this.resolveFinished();
  }

  async stop(): Promise<void> {
    if (this.stopping) return this.finished;
    this.stopping = true;
    const sources = this.order.filter((c) => c.spec.inputs.length === 0);
    await Promise.all(sources.map((c) => c.node?.stop().catch((err) => this.log.error({ err, node: c.spec.config.name }, 'source stop failed'))));
    const deadline = this.env.drainTimeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.finished.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), deadline))),
    ]);
    clearTimeout(timer);
    if (timedOut) this.log.warn({ deadlineMs: deadline }, 'graph did not drain in time; destroying nodes');
    this.destroyAll();
  }

  private destroyAll(): void {
    for (const l of this.links) l.close();
    for (const c of this.order) {
      try {
        c.node?.destroy();
      } catch {
        /* destroy must not throw; ignore if it does */
      }
    }
    this.resolveFinished?.();
  }

  /** Hands one item to a node. Returns a promise only when the node's handle() did (see Link.pump). */
  private deliver(c: CompiledNode, pad: number, item: Item, lostData: boolean): Promise<void> | void {
    if (c.done) return;
    let r: Promise<void> | void;
    try {
      // After lost data the consumer must know that media is missing before this sample (it closes its clip).
      r = lostData && item.kind === 'sample'
        ? c.node!.handle(pad, { kind: 'sample', sample: { ...item.sample, discont: true } })
        : c.node!.handle(pad, item);
    } catch (err) {
      this.nodeFailed(c, err as Error);
      r = undefined;
    }
    if (r && typeof (r as Promise<void>).then === 'function') {
      return (r as Promise<void>).then(
        () => this.delivered(c, item),
        (err) => {
          this.nodeFailed(c, err as Error);
          this.delivered(c, item);
        },
      );
    }
    this.delivered(c, item);
  }

  private delivered(c: CompiledNode, item: Item): void {
    if (item.kind === 'eos') {
      c.eosPending--;
      if (c.eosPending <= 0) this.finishNode(c);
    }
  }

  /** A node without pending inputs (a source at end of stream, or after all its inputs ended). */
  private finishNode(c: CompiledNode): void {
    if (c.done) return;
    c.done = true;
    for (const l of c.outgoing) l.push({ kind: 'eos' });
    // When the media has ended (replay: end of file), sources that only wait for messages end too.
    const media = this.order.filter((n) => n.spec.config.type === NodeTypes.RtspSource);
    if (c.spec.inputs.length === 0 && media.length > 0 && media.every((n) => n.done)) {
      for (const n of this.order) if (n.spec.inputs.length === 0 && !n.done) void n.node?.stop();
    }
    if (this.order.every((n) => n.done)) this.resolveFinished();
  }

  private onDrop(link: Link, count: number, reason: 'full' | 'overflow'): void {
    if (reason === 'full') {
      this.dropped.frames += count;
      return; // analysis frames: counted (metrics), reported in aggregate by the consumer's stats
    }
    this.dropped.media += count;
    const c = this.nodes.get(link.to)!;
    this.env.bus.publish({
      eventClass: 'Diagnostics', name: 'DataDropped',
      subject: this.subject(c.spec),
      body: { dataType: 'video', count, reason: `Node '${link.to}' fell behind; ${count} queued items from '${link.from}' were discarded.` },
    });
  }

  private nodeFailed(c: CompiledNode, err: Error): void {
    this.errors.push(`${c.spec.config.name}: ${err.message}`);
    this.log.error({ node: c.spec.config.name, err: err.message }, 'node failed');
    this.env.bus.publish({
      eventClass: 'Diagnostics', name: 'RuntimeError', namespace: 'Graph',
      subject: this.subject(c.spec),
      body: { code: 'NodeError', message: err.message },
    });
  }

  subject(spec: ResolvedNode): string {
    return `/graphInstances/${this.graph.instanceName}/${ROLE_PATH[spec.role]}/${spec.config.name}`;
  }

  private contextFor(c: CompiledNode): NodeContext {
    const runner = this;
    const replay = this.env.replay;
    return {
      instanceName: this.graph.instanceName,
      topologyName: this.graph.topologyName,
      node: c.spec,
      log: this.log.child({ node: c.spec.config.name }),
      clock: this.clock,
      get settings() { return runner.env.settings(); },
      inputs: this.env.inputs,
      upstreamType: (name: string) => this.nodes.get(name)?.spec.config.type,
      decode: c.spec.inputs.length === 0 ? this.decodeFor(c.spec.config.name) : undefined,
      wantsAudio: c.spec.inputs.length === 0 && this.wantsAudio(c.spec.config.name),
      backlog: () => {
        let n = 0;
        for (const l of this.links) n += l.depth;
        return n;
      },
      outputRoot: replay?.outputRoot ?? this.env.settings().outputRootDirectory,
      // Every node learns it runs in a replay (gate and extensions are deterministic there); only the
      // RTSP source reads the file.
      replayInput: replay ? { path: replay.input, realtime: replay.realtime } : undefined,
      publish: (eventClass: EventClass, name: string, body: Record<string, unknown>, opts?: { eventTime?: string; output?: string }) => {
        this.env.bus.publish({ eventClass, name, subject: this.subject(c.spec), body, eventTime: opts?.eventTime, output: opts?.output });
      },
      publishAs: (subject: string, eventClass: EventClass, name: string, body: Record<string, unknown>, opts?: { eventTime?: string; output?: string }) => {
        this.env.bus.publish({ eventClass, name, subject, body, eventTime: opts?.eventTime, output: opts?.output });
      },
      emit: (item: Item) => {
        if (item.kind === 'eos') {
          // Only sources announce their end; everyone else ends when all its inputs have ended.
          if (c.spec.inputs.length === 0) this.finishNode(c);
          return;
        }
        if (item.kind === 'sample' && item.sample.pts90k > this.mediaNow90k) {
          this.mediaNow90k = item.sample.pts90k;
          this.env.onMediaTime?.(this.mediaNow90k);
        }
        for (const l of c.outgoing) l.push(item);
      },
      fail: (err: Error) => this.nodeFailed(c, err),
    };
  }

  /** Every node's counters, for metrics. */
  nodeStats(): Array<{ node: string; type: string; stats: Readonly<Record<string, number>> }> {
    const out: Array<{ node: string; type: string; stats: Readonly<Record<string, number>> }> = [];
    for (const c of this.order) if (c.node?.stats) out.push({ node: c.spec.config.name, type: c.spec.config.type, stats: c.node.stats });
    return out;
  }

  /** For metrics. */
  linkStats(): Array<{ from: string; to: string; depth: number; dropped: number; delivered: number; queued: number }> {
    return this.links.map((l) => ({ from: l.from, to: l.to, depth: l.depth, dropped: l.stats.dropped, delivered: l.stats.delivered, queued: l.stats.queued }));
  }
}
