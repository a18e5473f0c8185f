import assert from 'node:assert/strict';
import { decodedFrameHashes, isContiguousSubsequence, probeClip, videoPacketHashes, type ClipProbe } from './clip-check.js';

/**
 * The checks every recorded clip must pass (issue: event-based recording, "Done when"):
 * codec copied (packets byte-identical to a contiguous run of the source's), starts on a keyframe,
 * actual start ≤ requested start ≤ actual start + one GOP, end as the gate formula says within one
 * frame interval, and its first frame bit-identical to the source frame at that time.
 */
export interface ClipExpectation {
  /** The RecordingAvailable body. */
  event: Record<string, unknown>;
  /** Source file (replay input) — for byte and pixel comparisons. */
  source: string;
  /** Replay --start-time in ms (media time 0). */
  mediaZeroMs: number;
  gopSeconds: number;
  fps: number;
  /** Expected end, ms since the epoch (e.g. requestedStart + Tmax); omitted = not checked. */
  expectedEndMs?: number;
  codec?: string;
  audio?: boolean;
  /** Cached source hashes (they are slow to compute). */
  cache?: Map<string, unknown>;
}

export function assertGoodClip(file: string, x: ClipExpectation): ClipProbe {
  const p = probeClip(file);
  const frameMs = 1000 / x.fps;
  assert.equal(p.video.codec, x.codec ?? 'h264', `${file}: codec`);
  assert.ok(p.videoPackets.length > 0, `${file}: has video`);
  assert.ok(p.videoPackets[0]!.keyframe, `${file}: first packet is a keyframe`);
  if (x.audio !== undefined) assert.equal(p.audio !== undefined, x.audio, `${file}: audio track present = ${x.audio}`);

  const start = Date.parse(String(x.event.startTime));
  const requested = Date.parse(String(x.event.requestedStartTime));
  const end = Date.parse(String(x.event.endTime));
  assert.ok(start <= requested + 1, `${file}: actual start ${start} ≤ requested ${requested}`);
  assert.ok(requested - start <= x.gopSeconds * 1000 + frameMs, `${file}: requested start within one GOP of the actual start (${requested - start} ms)`);
  if (x.expectedEndMs !== undefined) {
    assert.ok(Math.abs(end - x.expectedEndMs) <= frameMs + 1, `${file}: end ${end - x.mediaZeroMs} ms vs expected ${x.expectedEndMs - x.mediaZeroMs} ms`);
  }
  assert.ok(Math.abs(p.durationSeconds - (end - start) / 1000) <= frameMs / 1000 + 0.03,
    `${file}: ffprobe duration ${p.durationSeconds} s vs event window ${(end - start) / 1000} s`);

  // Stream copy: every video packet is byte-identical to the source's, in one contiguous run.
  const cache = x.cache ?? new Map();
  const srcPackets = (cache.get(`p:${x.source}`) as string[] | undefined) ?? videoPacketHashes(x.source);
  cache.set(`p:${x.source}`, srcPackets);
  const clipPackets = videoPacketHashes(file);
  assert.ok(isContiguousSubsequence(clipPackets, srcPackets), `${file}: packets are a contiguous copy of the source's`);

  // The first picture equals the source picture at the clip's start time.
  const srcFrames = (cache.get(`f:${x.source}`) as Array<{ pts: number; md5: string }> | undefined) ?? decodedFrameHashes(x.source);
  cache.set(`f:${x.source}`, srcFrames);
  const clipFrames = decodedFrameHashes(file);
  const startSec = (start - x.mediaZeroMs) / 1000;
  const match = srcFrames.find((f) => Math.abs(f.pts - startSec) < frameMs / 2000);
  assert.ok(match, `${file}: a source frame at ${startSec} s`);
  assert.equal(clipFrames[0]!.md5, match.md5, `${file}: first frame bit-identical to the source frame at ${startSec} s`);
  return p;
}
