import { promises as fs } from 'node:fs';
import { RestError } from '@azure/storage-blob';
import type { AssetStore } from './asset-store.js';
import { safeMessage } from './redact.js';

/**
 * Uploads finished segments from the local cache, oldest first, one at a time.
 *
 * - A segment is deleted from the cache only after the service confirmed the upload (and, when it
 *   returned one, the Content-MD5 it computed matches ours).
 * - Failures are retried with capped exponential backoff (base · 2^n, at most `maxDelayMs`); the
 *   segment stays in the cache meanwhile. Nothing is ever given up on while the sink runs: the cache
 *   limit (the sink's business, through `drop()`) decides what is lost in a long outage.
 * - `drain()` waits for the queue to empty, bounded by a deadline; what is left stays in the cache and
 *   is uploaded by the next sink started on the same cache.
 */

/** A finished segment waiting in the cache. */
export interface SegmentJob {
  asset: string;
  /** File name in the cache and blob name below the asset's prefix, e.g. `20200101T000000.000Z-000001.mp4`. */
  name: string;
  path: string;
  /** Sidecar with the segment's metadata (deleted with the segment). */
  metaPath: string;
  sizeBytes: number;
  sha256: string;
  md5: string;
  startTime: string;
  endTime: string;
  durationSeconds: number;
  /** Owner's bookkeeping (e.g. the recording the segment belongs to). */
  tag?: unknown;
}

export interface UploadedInfo {
  containerName: string;
  blobName: string;
  accountName: string;
}

export interface UploaderCallbacks {
  uploaded(job: SegmentJob, info: UploadedInfo): void;
  /** `consecutive` counts failures since the last success (1 = storage just became unreachable). */
  failed(job: SegmentJob, err: unknown, consecutive: number): void;
  /** Uploads succeed again after failures. */
  restored(failures: number): void;
}

export interface UploaderOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export class SegmentUploader {
  private readonly queue: SegmentJob[] = [];
  private inFlight: { job: SegmentJob; abort: AbortController; dropRequested: boolean; settled: Promise<boolean> } | null = null;
  private failures = 0;
  private retryAt = 0;
  private stopped = false;
  private wakeUp: (() => void) | null = null;
  private idleWaiters: Array<() => void> = [];
  private loop: Promise<void> | null = null;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(private readonly store: AssetStore, private readonly cb: UploaderCallbacks, opts: UploaderOptions = {}) {
    this.baseDelayMs = opts.baseDelayMs ?? 500;
    this.maxDelayMs = opts.maxDelayMs ?? 30_000;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Segments not yet uploaded, oldest first. */
  get pending(): readonly SegmentJob[] {
    return this.queue;
  }

  get pendingBytes(): number {
    let n = 0;
    for (const j of this.queue) n += j.sizeBytes;
    return n;
  }

  enqueue(job: SegmentJob): void {
    this.queue.push(job);
    this.wake();
  }

  /**
   * Removes a segment without uploading it and deletes it from the cache. An upload in progress is
   * aborted; if it completed anyway, nothing is dropped and false is returned.
   */
  async drop(job: SegmentJob): Promise<boolean> {
    const f = this.inFlight;
    if (f && f.job === job) {
      f.dropRequested = true;
      f.abort.abort();
      if (await f.settled) return false;
    }
    const i = this.queue.indexOf(job);
    if (i < 0) return false;
    this.queue.splice(i, 1);
    await removeSegmentFiles(job);
    this.notifyIdle();
    return true;
  }

  /** Waits until every queued segment is uploaded or `timeoutMs` passed; returns what is left. */
  async drain(timeoutMs: number): Promise<SegmentJob[]> {
    if (this.queue.length > 0 && !this.stopped) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((r) => this.idleWaiters.push(r)),
        new Promise<void>((r) => (timer = setTimeout(r, timeoutMs))),
      ]);
      clearTimeout(timer);
    }
    return [...this.queue];
  }

  /** Stops uploading (an upload in progress is aborted); queued segments stay in the cache. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.inFlight?.abort.abort();
    this.wake();
    this.notifyIdle(true);
    await this.loop?.catch(() => undefined);
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  private sleep(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
      if (ms !== undefined) {
        timer = setTimeout(() => {
          this.wakeUp = null;
          resolve();
        }, ms);
      }
    });
  }

  private notifyIdle(force = false): void {
    if (!force && this.queue.length > 0) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const job = this.queue[0];
      if (!job) {
        this.notifyIdle();
        await this.sleep();
        continue;
      }
      const wait = this.retryAt - Date.now();
      if (wait > 0) {
        await this.sleep(wait);
        continue;
      }
      const abort = new AbortController();
      let settle!: (uploaded: boolean) => void;
      const flight = { job, abort, dropRequested: false, settled: new Promise<boolean>((r) => (settle = r)) };
      this.inFlight = flight;
      let info: UploadedInfo | null = null;
      let error: unknown;
      try {
        info = await this.uploadOne(job, abort.signal);
      } catch (err) {
        error = err;
      }
      this.inFlight = null;
      if (info) {
        const i = this.queue.indexOf(job);
        if (i >= 0) this.queue.splice(i, 1);
        await removeSegmentFiles(job);
        const hadFailures = this.failures;
        this.failures = 0;
        this.retryAt = 0;
        settle(true);
        if (hadFailures > 0) this.cb.restored(hadFailures);
        this.cb.uploaded(job, info);
        this.notifyIdle();
        continue;
      }
      settle(false);
      if (flight.dropRequested || this.stopped) continue;
      this.failures++;
      if (error instanceof RestError && (error.statusCode === 401 || error.statusCode === 403)) this.store.invalidate(job.asset);
      if (error instanceof IntegrityError) this.store.invalidate(job.asset);
      this.retryAt = Date.now() + Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(this.failures - 1, 30));
      this.cb.failed(job, error, this.failures);
    }
  }

  private async uploadOne(job: SegmentJob, signal: AbortSignal): Promise<UploadedInfo> {
    // The file must still be what was closed: a changed size means the cache was tampered with.
    const st = await fs.stat(job.path);
    if (st.size !== job.sizeBytes) throw new IntegrityError(`cached segment ${job.name} is ${st.size} bytes, expected ${job.sizeBytes}`);
    const loc = await this.store.locate(job.asset, signal);
    const blobName = `${loc.prefix}${job.name}`;
    const blob = loc.container.getBlockBlobClient(blobName);
    const res = await blob.uploadFile(job.path, {
      abortSignal: signal,
      blobHTTPHeaders: { blobContentType: 'video/mp4', blobContentMD5: Buffer.from(job.md5, 'hex') },
      metadata: {
        asset: encodeMeta(job.asset),
        starttime: job.startTime,
        endtime: job.endTime,
        durationseconds: String(job.durationSeconds),
        sha256: job.sha256,
        recorder: 'lva-edge',
      },
    });
    if (res.contentMD5 && Buffer.from(res.contentMD5).toString('hex') !== job.md5) {
      throw new IntegrityError(`the service stored ${job.name} with a different MD5`);
    }
    return { containerName: loc.containerName, blobName, accountName: loc.accountName };
  }
}

export class IntegrityError extends Error {
  override readonly name = 'IntegrityError';
}

/** Blob metadata values must be ASCII. */
function encodeMeta(s: string): string {
  return /^[\x20-\x7e]*$/.test(s) ? s : encodeURIComponent(s);
}

export async function removeSegmentFiles(job: Pick<SegmentJob, 'path' | 'metaPath'>): Promise<void> {
  await fs.rm(job.path, { force: true });
  await fs.rm(job.metaPath, { force: true });
}
