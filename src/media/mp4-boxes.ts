/**
 * ISO BMFF box primitives shared by the fMP4 parser and writer: walking the children of a complete box
 * held in memory, and serialising boxes. Pure (no I/O).
 */

export class Mp4FormatError extends Error {
  override readonly name = 'Mp4FormatError';
}

export interface BoxRef {
  readonly type: string;
  /** Offset of the box's first byte (size field) in the buffer being walked. */
  readonly start: number;
  /** Offset of the payload (after size, type and the optional 64-bit size). */
  readonly body: number;
  /** Offset just past the box. */
  readonly end: number;
}

export function fourcc(buf: Uint8Array, at: number): string {
  return String.fromCharCode(buf[at]!, buf[at + 1]!, buf[at + 2]!, buf[at + 3]!);
}

/**
 * The child boxes of `buf[start, end)`. Throws on a size that overruns the parent or is smaller than its
 * header, so a corrupt container can never make a caller loop or read outside the parent.
 */
export function* childBoxes(buf: Buffer, start: number, end: number, where = 'box'): Generator<BoxRef> {
  let pos = start;
  while (pos < end) {
    if (end - pos < 8) throw new Mp4FormatError(`${where}: ${end - pos} trailing bytes, too short for a box header`);
    let size = buf.readUInt32BE(pos);
    const type = fourcc(buf, pos + 4);
    let header = 8;
    if (size === 1) {
      if (end - pos < 16) throw new Mp4FormatError(`${where}: truncated 64-bit size of '${type}'`);
      const large = buf.readBigUInt64BE(pos + 8);
      if (large > BigInt(end - pos)) throw new Mp4FormatError(`${where}: '${type}' (${large} bytes) overruns its parent`);
      size = Number(large);
      header = 16;
    } else if (size === 0) {
      size = end - pos; // "extends to the end of the enclosing container"
    }
    if (size < header) throw new Mp4FormatError(`${where}: '${type}' has invalid size ${size}`);
    if (pos + size > end) throw new Mp4FormatError(`${where}: '${type}' (${size} bytes) overruns its parent`);
    yield { type, start: pos, body: pos + header, end: pos + size };
    pos += size;
  }
}

export function findChild(buf: Buffer, parent: BoxRef, type: string): BoxRef | undefined {
  for (const c of childBoxes(buf, parent.body, parent.end, parent.type)) if (c.type === type) return c;
  return undefined;
}

/** Checks that a full box body holds at least `need` bytes, so field reads cannot run into a sibling. */
export function requireBytes(box: BoxRef, need: number): void {
  if (box.end - box.body < need) {
    throw new Mp4FormatError(`'${box.type}' too short: ${box.end - box.body} bytes, need ${need}`);
  }
}

/** Reads an unsigned 64-bit integer as a JS number; throws beyond 2^53 (no real media time gets there). */
export function readU64(buf: Buffer, at: number, what: string): number {
  const v = buf.readBigUInt64BE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Mp4FormatError(`${what}: 64-bit value ${v} is too large`);
  return Number(v);
}

// ---- writing ----

export function box(type: string, ...parts: Buffer[]): Buffer {
  let size = 8;
  for (const p of parts) size += p.length;
  const head = Buffer.alloc(8);
  head.writeUInt32BE(size, 0);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, ...parts], size);
}

export function fullBox(type: string, version: number, flags: number, ...parts: Buffer[]): Buffer {
  const vf = Buffer.alloc(4);
  vf.writeUInt32BE(((version & 0xff) << 24) | (flags & 0xffffff), 0);
  return box(type, vf, ...parts);
}

export function u8(v: number): Buffer {
  return Buffer.from([v & 0xff]);
}
export function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v, 0);
  return b;
}
export function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0, 0);
  return b;
}
export function i32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(v, 0);
  return b;
}
export function u64(v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(v), 0);
  return b;
}
export function i64(v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(BigInt(v), 0);
  return b;
}
export function zeros(n: number): Buffer {
  return Buffer.alloc(n);
}
