/**
 * Ordered, bounded store-and-forward queue for module output events.
 *
 * One item is in flight at a time, so events leave in the order they were produced even across
 * reconnects (the SDK retries a send until the link is back; if it gives up we retry the same item
 * after a backoff). While edgeHub is unreachable the items wait here; when more than `limit` are
 * waiting the oldest waiting one is dropped and counted. After drops, the next successful send asks
 * `onDropsEnded` for a notice item (DataDropped) that is sent right away — at the gap it describes.
 *
 *   push ──► [ waiting … ] ──► current (in flight, retried until sent or permanently failed)
 *            ▲ drop-oldest when waiting.length > limit
 *
 * Why memory, not disk: edgeHub is itself a persistent store-and-forward broker (it keeps messages for
 * its upstream through cloud outages), so this queue only bridges the module↔edgeHub link on one host
 * (edgeHub restarts, module start-up order). Events are small JSON documents (typically < 2 KB), so the
 * default bound of 10,000 stays around 20 MB, and a module restart loses at most what was produced
 * while edgeHub was down — the same window a disk queue would need to be replayed in order anyway.
 */

export interface OutputQueueOptions<T> {
  /** Maximum number of waiting items (the one in flight is not counted). */
  limit: number;
  send: (item: T) => Promise<void>;
  /** Errors that retrying cannot fix (e.g. message too large): the item is dropped and reported. */
  isPermanent: (err: unknown) => boolean;
  onPermanentFailure?: (item: T, err: unknown) => void;
  /** Called for every item dropped because of the bound (the oldest waiting one). */
  onDrop?: (item: T, totalDropped: number) => void;
  /** After drops, when the link works again: returns a notice to send before the waiting items. */
  onDropsEnded?: (dropped: number, first: T, last: T) => T | null;
  onSendError?: (err: unknown, attempt: number) => void;
  /** Delay before retrying the item in flight after a failed send (attempt ≥ 1). */
  retryDelayMs?: (attempt: number) => number;
}

export class OutputQueue<T> {
  private waiting: T[] = [];
  private head = 0;
  private current: T | undefined;
  private running = false;
  private closed = false;
  private wake?: () => void;
  private idleWaiters: Array<() => void> = [];
  private episode: { count: number; first: T; last: T } | undefined;
  sent = 0;
  dropped = 0;
  failed = 0;

  constructor(private readonly opts: OutputQueueOptions<T>) {}

  get length(): number {
    return this.waiting.length - this.head + (this.current !== undefined ? 1 : 0);
  }

  push(item: T): void {
    if (this.closed) return;
    this.waiting.push(item);
    while (this.waiting.length - this.head > this.opts.limit) {
      const old = this.waiting[this.head]!;
      this.waiting[this.head++] = undefined as T;
      this.dropped++;
      if (this.episode) {
        this.episode.count++;
        this.episode.last = old;
      } else {
        this.episode = { count: 1, first: old, last: old };
      }
      this.opts.onDrop?.(old, this.dropped);
    }
    this.compact();
    this.kick();
  }

  /** Resolves once nothing is waiting or in flight, or after `timeoutMs` (returns whether it drained). */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.length === 0) return true;
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.idleWaiters = this.idleWaiters.filter((w) => w !== onIdle);
        resolve(ok);
      };
      const onIdle = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.idleWaiters.push(onIdle);
    });
  }

  /** Stops sending; whatever is still queued is discarded. */
  close(): void {
    this.closed = true;
    this.waiting = [];
    this.head = 0;
    this.wake?.();
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
  }

  private take(): T | undefined {
    if (this.head >= this.waiting.length) return undefined;
    const item = this.waiting[this.head]!;
    this.waiting[this.head++] = undefined as T;
    if (this.head === this.waiting.length) {
      this.waiting = [];
      this.head = 0;
    }
    return item;
  }

  private kick(): void {
    if (this.running || this.closed) return;
    this.running = true;
    void this.pump();
  }

  /** `running` is cleared synchronously when the loop ends, so a push() right after always restarts it. */
  private async pump(): Promise<void> {
    let attempt = 0;
    for (;;) {
      if (this.closed) {
        this.running = false;
        return;
      }
      if (this.current === undefined) this.current = this.take();
      if (this.current === undefined) {
        this.running = false;
        for (const w of this.idleWaiters.splice(0)) w();
        return;
      }
      const item = this.current;
      try {
        await this.opts.send(item);
        this.sent++;
        attempt = 0;
        this.current = undefined;
        if (this.episode && this.opts.onDropsEnded) {
          const ep = this.episode;
          this.episode = undefined;
          const notice = this.opts.onDropsEnded(ep.count, ep.first, ep.last);
          if (notice !== null) this.current = notice;
        } else {
          this.episode = undefined;
        }
      } catch (err) {
        if (this.closed) continue;
        if (this.opts.isPermanent(err)) {
          this.failed++;
          this.current = undefined;
          attempt = 0;
          this.opts.onPermanentFailure?.(item, err);
          continue;
        }
        attempt++;
        this.opts.onSendError?.(err, attempt);
        await this.sleep(this.opts.retryDelayMs?.(attempt) ?? Math.min(30_000, 250 * 2 ** Math.min(attempt, 7)));
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      // Only close() cuts a retry delay short; new items do not (the head item is what is failing).
      this.wake = () => {
        if (!this.closed) return;
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }
}
