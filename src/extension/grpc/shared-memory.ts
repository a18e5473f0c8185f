import { closeSync, ftruncateSync, openSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Shared-memory transfer (dataTransfer.mode SharedMemory, lva-spec §5.3): pictures are written into
 * one file under /dev/shm and the sample carries only {address_offset, length_bytes}. The extension
 * acknowledges each sample (ack_sequence_number) when it no longer needs the bytes; until then the
 * region is reserved.
 *
 * ShmRing is the pure allocator: regions are handed out ring-wise, in order, and freed by
 * acknowledgement in any order; space is reclaimed from the oldest end once the oldest region is
 * freed (a region acknowledged early waits for the ones before it). A picture never wraps around
 * the end: if it does not fit before the end, it goes at offset 0 when the start is free.
 */
export class ShmRing {
  /** Live regions, oldest first. */
  private readonly regions: Array<{ id: number; offset: number; length: number; freed: boolean }> = [];
  /** Next write position. */
  private head = 0;
  /** Regions have been placed at the start again while older ones still sit near the end. */
  private wrapped = false;

  constructor(readonly size: number) {
    if (!(Number.isInteger(size) && size > 0)) throw new RangeError(`shared memory size must be a positive integer, got ${size}`);
  }

  /** Bytes currently reserved (including freed regions not yet reclaimed). */
  get used(): number {
    return this.regions.reduce((s, r) => s + r.length, 0);
  }

  get liveRegions(): number {
    return this.regions.length;
  }

  /** Reserves `length` bytes for region `id`; returns the offset, or undefined when there is no room. */
  allocate(id: number, length: number): number | undefined {
    if (!(Number.isInteger(length) && length > 0) || length > this.size) return undefined;
    if (this.regions.length === 0) {
      this.head = 0;
      this.wrapped = false;
    }
    const tail = this.regions[0]?.offset ?? 0;
    let offset: number | undefined;
    if (!this.wrapped) {
      if (this.size - this.head >= length) offset = this.head;
      else if (this.regions.length > 0 && tail >= length) {
        offset = 0;
        this.wrapped = true;
      } else if (this.regions.length === 0) offset = 0;
    } else if (tail - this.head >= length) offset = this.head;
    if (offset === undefined) return undefined;
    this.regions.push({ id, offset, length, freed: false });
    this.head = offset + length;
    return offset;
  }

  /** Frees region `id` (unknown ids are ignored: a late or repeated acknowledgement). */
  release(id: number): boolean {
    const r = this.regions.find((x) => x.id === id && !x.freed);
    if (!r) return false;
    r.freed = true;
    while (this.regions.length > 0 && this.regions[0]!.freed) {
      const gone = this.regions.shift()!;
      const next = this.regions[0];
      // Passing the wrap point: the oldest region now lies before the one just reclaimed.
      if (next && next.offset < gone.offset) this.wrapped = false;
    }
    if (this.regions.length === 0) {
      this.head = 0;
      this.wrapped = false;
    }
    return true;
  }

  /** Forgets every region (a new stream: the old one's acknowledgements will never come). */
  reset(): void {
    this.regions.length = 0;
    this.head = 0;
    this.wrapped = false;
  }
}

export const SHM_DIR = '/dev/shm';

/** The /dev/shm file behind a ShmRing: created 0600 at its full size, removed on close. */
export class SharedMemoryFile {
  readonly handleName: string;
  readonly path: string;
  readonly ring: ShmRing;
  private fd: number | null;

  constructor(readonly size: number, label: string, dir = SHM_DIR) {
    const safe = label.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 80);
    this.handleName = `lva-edge-${safe}-${randomBytes(4).toString('hex')}`;
    this.path = path.join(dir, this.handleName);
    this.fd = openSync(this.path, 'wx+', 0o600);
    try {
      ftruncateSync(this.fd, size);
    } catch (err) {
      this.close();
      throw err;
    }
    this.ring = new ShmRing(size);
  }

  /** Writes `data` as region `id`; returns its offset, or undefined when the ring is full. */
  put(id: number, data: Buffer): number | undefined {
    if (this.fd === null) return undefined;
    const offset = this.ring.allocate(id, data.length);
    if (offset === undefined) return undefined;
    writeSync(this.fd, data, 0, data.length, offset);
    return offset;
  }

  release(id: number): void {
    this.ring.release(id);
  }

  close(): void {
    if (this.fd === null) return;
    try {
      closeSync(this.fd);
    } catch {
      /* already closed */
    }
    this.fd = null;
    try {
      unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }
}
