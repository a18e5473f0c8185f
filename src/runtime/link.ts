import type { Item, ItemKind } from '../nodes/node.js';
import type { OutputSelector } from '../graph/model.js';

/**
 * A link carries items from one node's output to one input pad of another, in order, one at a time
 * (each link has its own async pump, so a slow consumer never blocks its producer or its siblings).
 *
 * Policies, chosen per link at compile time:
 * - 'lossless' (recording media, events): never drops while under `hardLimit`; past it (a sink stuck
 *   for tens of seconds) the backlog is discarded as a whole and reported, and the next item is
 *   flagged so the consumer closes its clip cleanly rather than writing a gap into it.
 * - 'drop-oldest' (decoded frames for analysis): bounded; when full the oldest frame goes and is
 *   counted. Analysis falls behind gracefully instead of growing memory.
 */
export type LinkPolicy = 'lossless' | 'drop-oldest';

export interface LinkStats {
  queued: number;
  delivered: number;
  dropped: number;
  overflows: number;
}

export class Link {
  private queue: Item[] = [];
  private head = 0;
  private pumping = false;
  private closed = false;
  readonly stats: LinkStats = { queued: 0, delivered: 0, dropped: 0, overflows: 0 };
  /** Set after an overflow: the consumer sees `lostData` on the next item it gets. */
  private lost = false;
  private idleWaiters: Array<() => void> = [];
  /** Lower-cased selector values, computed on first use. */
  private selectorValues: string[] | undefined;

  constructor(
    readonly from: string,
    readonly to: string,
    readonly pad: number,
    private readonly selectors: readonly OutputSelector[],
    private readonly accepts: ReadonlySet<ItemKind>,
    private readonly policy: LinkPolicy,
    private readonly deliver: (pad: number, item: Item, lostData: boolean) => Promise<void> | void,
    private readonly onDrop: (link: Link, count: number, reason: 'full' | 'overflow') => void,
    private readonly limit = policy === 'drop-oldest' ? 4 : 10_000,
  ) {}

  /** True when the item passes this link's output selectors and the consumer's caps. */
  wants(item: Item): boolean {
    if (!this.accepts.has(item.kind) && item.kind !== 'eos') return false;
    if (this.selectors.length === 0) return true;
    let mediaType: string;
    switch (item.kind) {
      case 'sample': mediaType = item.sample.track.kind; break;
      case 'frame': mediaType = 'video'; break;
      case 'event': mediaType = 'application'; break;
      default: return true; // init (tracks filtered in push), activation, watermark, discont and eos always pass
    }
    const values = (this.selectorValues ??= this.selectors.map((s) => s.value.toLowerCase()));
    for (let i = 0; i < this.selectors.length; i++) {
      const s = this.selectors[i]!;
      if (s.property !== 'mediaType') continue;
      const v = values[i]!;
      const match = mediaType === v || (mediaType.length > v.length && mediaType.startsWith(v) && mediaType[v.length] === '/');
      if (s.operator === 'is' ? !match : match) return false;
    }
    return true;
  }

  push(item: Item): void {
    if (this.closed || !this.wants(item)) return;
    if (item.kind === 'init' && this.selectors.length > 0) {
      // A consumer only learns about the tracks its selectors let through.
      item = { kind: 'init', tracks: item.tracks.filter((t) => this.wants({ kind: 'sample', sample: { track: t } as never })) };
    }
    const size = this.queue.length - this.head;
    if (size >= this.limit && item.kind !== 'eos') {
      if (this.policy === 'drop-oldest') {
        // Drop the oldest droppable item (never init/eos/event, which carry state).
        for (let i = this.head; i < this.queue.length; i++) {
          if (this.queue[i]!.kind === 'frame') {
            this.queue.splice(i, 1);
            this.stats.dropped++;
            this.onDrop(this, 1, 'full');
            break;
          }
        }
      } else {
        const n = size;
        // Keep the items that carry state (init, activation boundaries, events, eos); discard the
        // media backlog in one go.
        this.queue = this.queue.slice(this.head).filter((x) => x.kind !== 'sample' && x.kind !== 'frame' && x.kind !== 'watermark');
        this.head = 0;
        this.stats.dropped += n - this.queue.length;
        this.stats.overflows++;
        this.lost = true;
        this.onDrop(this, n, 'overflow');
      }
    }
    this.queue.push(item);
    this.stats.queued++;
    if (!this.pumping) this.pump();
  }

  /** Resolves when everything queued so far has been delivered. */
  idle(): Promise<void> {
    if (!this.pumping && this.head >= this.queue.length) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  close(): void {
    this.closed = true;
    this.queue = [];
    this.head = 0;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  get depth(): number {
    return this.queue.length - this.head;
  }

  /**
   * Delivers queued items in order. A consumer whose handle() completes synchronously (returns no
   * promise) gets the next item straight away, without a promise or microtask per item; the first
   * promise switches the pump to awaiting it and continuing asynchronously.
   */
  private pump(): void {
    this.pumping = true;
    while (this.head < this.queue.length) {
      const item = this.next();
      const lost = this.lost;
      this.lost = false;
      let r: Promise<void> | void;
      try {
        r = this.deliver(this.pad, item, lost);
      } catch {
        r = undefined; // deliver() reports node failures itself; the link keeps going.
      }
      if (r) {
        void this.pumpAsync(r);
        return;
      }
      this.stats.delivered++;
      if (this.closed) break;
    }
    this.finishPump();
  }

  private async pumpAsync(first: Promise<void>): Promise<void> {
    try {
      try {
        await first;
      } catch {
        // deliver() reports node failures itself; the link keeps going.
      }
      this.stats.delivered++;
      if (this.closed) return;
      while (this.head < this.queue.length) {
        const item = this.next();
        const lost = this.lost;
        this.lost = false;
        try {
          const r = this.deliver(this.pad, item, lost);
          if (r) await r;
        } catch {
          // deliver() reports node failures itself; the link keeps going.
        }
        this.stats.delivered++;
        if (this.closed) break;
      }
    } finally {
      this.finishPump();
    }
  }

  /** Takes the oldest queued item, compacting the queue now and then. */
  private next(): Item {
    const item = this.queue[this.head]!;
    this.queue[this.head++] = undefined as never;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  private finishPump(): void {
    this.pumping = false;
    if (this.head >= this.queue.length) {
      this.queue = [];
      this.head = 0;
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }
}
