import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { parseFmp4Stream } from '../media/fmp4-parser.js';
import { recoverPartial } from '../media/fmp4-writer.js';
import { TICKS_PER_SECOND } from '../media/sample.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import type { SegmentJob } from './uploader.js';

/**
 * The asset sink's local media cache: `<localMediaCachePath>/<asset>/<segment>.mp4`, each with a
 * sidecar `<segment>.mp4.json` holding what the upload needs (times, size, hashes). A segment being
 * written is `<segment>.mp4.partial` (Fmp4Writer). Segment names start with the UTC start time
 * `yyyyMMddTHHmmss.fffZ`, so names sort in time order, in the cache and in the container.
 */

export const SEGMENT_NAME = /^(\d{8}T\d{6}\.\d{3}Z)-(\d+)\.mp4$/;

/** `2020-01-01T00:00:30.000Z` → `20200101T000030.000Z`. */
export function compactTime(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '');
}

export function parseCompactTime(s: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z$/.exec(s);
  if (!m) return new Date(NaN);
  return new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z`);
}

export interface SegmentMeta {
  asset: string;
  name: string;
  startTime: string;
  endTime: string;
  durationSeconds: number;
  sizeBytes: number;
  sha256: string;
  md5: string;
}

export async function hashFile(file: string): Promise<{ sha256: string; md5: string; size: number }> {
  const sha = createHash('sha256');
  const md5 = createHash('md5');
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    sha.update(chunk as Buffer);
    md5.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: sha.digest('hex'), md5: md5.digest('hex'), size };
}

export async function writeSidecar(meta: SegmentMeta, file: string): Promise<void> {
  await writeFileAtomic(`${file}.json`, `${JSON.stringify(meta)}\n`, 0o644);
}

export function jobFromMeta(meta: SegmentMeta, file: string, tag?: unknown): SegmentJob {
  return { ...meta, path: file, metaPath: `${file}.json`, tag };
}

/** Presentation span of a finished fMP4 (seconds), read from its fragments. */
async function durationOf(file: string): Promise<number> {
  let lo = Infinity;
  let hi = -Infinity;
  for await (const it of parseFmp4Stream(createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>)) {
    if (it.kind !== 'sample') continue;
    const s = it.sample;
    const end = s.pts90k + Math.round((s.duration * TICKS_PER_SECOND) / s.track.timescale);
    lo = Math.min(lo, s.pts90k);
    hi = Math.max(hi, end);
  }
  return hi > lo ? (hi - lo) / TICKS_PER_SECOND : 0;
}

export type LeftoverReport =
  | { kind: 'segment'; job: SegmentJob; recoveredPartial: boolean }
  | { kind: 'unrecoverable'; file: string; reason: string };

/**
 * Segments a previous run left in `assetDir` (crash, outage at shutdown): finished ones (sidecar
 * rebuilt when missing), `.partial` ones finished by recoverPartial. Oldest first.
 */
export async function scanAssetDir(asset: string, assetDir: string): Promise<LeftoverReport[]> {
  const out: LeftoverReport[] = [];
  const entries = await fs.readdir(assetDir).catch(() => [] as string[]);
  for (const f of entries.filter((e) => e.endsWith('.mp4.partial') && SEGMENT_NAME.test(e.slice(0, -'.partial'.length)))) {
    const r = await recoverPartial(path.join(assetDir, f));
    if (!r.ok) {
      out.push({ kind: 'unrecoverable', file: path.join(assetDir, f), reason: r.reason });
      continue;
    }
    await fs.rm(`${r.path}.json`, { force: true }); // a sidecar can only belong to a finished file
  }
  const names = (await fs.readdir(assetDir).catch(() => [] as string[])).sort();
  for (const f of names) {
    const file = path.join(assetDir, f);
    if (f.endsWith('.mp4.json') && !names.includes(f.slice(0, -'.json'.length))) {
      await fs.rm(file, { force: true }); // sidecar of a segment already uploaded
      continue;
    }
    const m = SEGMENT_NAME.exec(f);
    if (!m) continue;
    let meta: SegmentMeta | undefined;
    try {
      const parsed = JSON.parse(await fs.readFile(`${file}.json`, 'utf8')) as SegmentMeta;
      const st = await fs.stat(file);
      if (parsed.name === f && parsed.sizeBytes === st.size) meta = parsed;
    } catch {
      /* no or unreadable sidecar: rebuild it */
    }
    const recovered = !meta && !names.includes(`${f}.json`);
    if (!meta) {
      try {
        const h = await hashFile(file);
        const start = parseCompactTime(m[1]!);
        const durationSeconds = round3(await durationOf(file));
        meta = {
          asset, name: f, startTime: start.toISOString(), endTime: new Date(start.getTime() + durationSeconds * 1000).toISOString(),
          durationSeconds, sizeBytes: h.size, sha256: h.sha256, md5: h.md5,
        };
        await writeSidecar(meta, file);
      } catch (err) {
        out.push({ kind: 'unrecoverable', file, reason: (err as Error).message });
        continue;
      }
    }
    out.push({ kind: 'segment', job: jobFromMeta(meta, file), recoveredPartial: recovered });
  }
  return out;
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
