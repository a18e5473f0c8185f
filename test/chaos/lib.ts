// Shared pieces of the chaos suite (npm run test:chaos → scripts/run-chaos.mjs).
//
// Every scenario measures its trials and appends ONE line per fault to the JSONL file named by
// LVA_CHAOS_RESULTS; run-chaos.mjs turns those lines into the summary table. A scenario records its
// line before asserting, so a failing run still shows what was measured.
import assert from 'node:assert/strict';
import { appendFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { probeClip, type ClipProbe } from '../helpers/clip-check.js';
import { findFfprobe } from '../../src/util/executables.js';

export interface ChaosResult {
  fault: string;
  trials: number;
  /** Trials after which everything the scenario checks was back to normal. */
  recovered: number;
  /** Human-readable, e.g. "none" or "2 clips cut, all closed and reported". */
  dataLost: string;
  /** Worst time from the fault's end (or injection) to recovery, ms; null when not applicable. */
  worstRecoveryMs: number | null;
  detail?: string;
  /** Set instead of trials when the scenario could not run here (e.g. not root). */
  skipped?: string;
  /** A fault the product does not handle yet (its test is a todo): shown, does not fail the suite. */
  knownGap?: boolean;
}

export function recordChaosResult(r: ChaosResult): void {
  const line = JSON.stringify(r);
  const file = process.env.LVA_CHAOS_RESULTS;
  if (file) appendFileSync(file, line + '\n');
  else console.log(`chaos result: ${line}`);
}

/** Trial count from the environment (`name`), else `fallback`; at least 1. */
export function trialCount(name: string, fallback: number): number {
  const v = Number(process.env[name] ?? process.env.LVA_CHAOS_TRIALS ?? fallback);
  return Number.isInteger(v) && v >= 1 ? v : fallback;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function until<T>(fn: () => T | undefined | null | false, timeoutMs: number, what: string, stepMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

/**
 * Decodes every video frame of `file` (ffprobe, so no muxer judges the timestamps: live cameras
 * jitter); returns the decoder's error output, or a note when fewer frames decode than there are
 * packets. Empty = clean.
 */
export function decodeErrors(file: string): string {
  const r = spawnSync(findFfprobe(), ['-v', 'error', '-select_streams', 'v:0', '-count_frames', '-count_packets',
    '-show_entries', 'stream=nb_read_frames,nb_read_packets', '-of', 'json', file], { encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
  if (r.status !== 0) return `exit ${r.status}: ${r.stderr}`;
  if (r.stderr.trim()) return r.stderr.trim();
  const s = JSON.parse(r.stdout).streams?.[0] ?? {};
  const frames = Number(s.nb_read_frames);
  const packets = Number(s.nb_read_packets);
  return frames === packets && frames > 0 ? '' : `${frames} frames decoded from ${packets} packets`;
}

/**
 * A clip recorded from a live camera (no source file to compare with): it exists, starts on a
 * keyframe, decodes without an error, and its duration matches the window its event reports (within
 * `slackS`) and is bounded by `maxSeconds`.
 */
export function assertValidLiveClip(event: Record<string, unknown>, opts: { maxSeconds: number; slackS?: number; codec?: string }): ClipProbe {
  const file = String(event.outputLocation);
  assert.ok(existsSync(file), `${file} exists`);
  const p = probeClip(file);
  assert.equal(p.video.codec, opts.codec ?? 'h264', `${file}: codec`);
  assert.ok(p.videoPackets.length > 0 && p.videoPackets[0]!.keyframe, `${file}: starts on a keyframe`);
  const window = (Date.parse(String(event.endTime)) - Date.parse(String(event.startTime))) / 1000;
  const slack = opts.slackS ?? 0.1;
  assert.ok(Math.abs(p.durationSeconds - window) <= slack, `${file}: ffprobe duration ${p.durationSeconds} s vs event window ${window} s`);
  assert.ok(Math.abs(Number(event.durationSeconds) - window) <= 0.01, `${file}: durationSeconds ${String(event.durationSeconds)} vs window ${window}`);
  assert.ok(p.durationSeconds > 0 && p.durationSeconds <= opts.maxSeconds, `${file}: duration ${p.durationSeconds} s within (0, ${opts.maxSeconds}]`);
  const errors = decodeErrors(file);
  assert.equal(errors, '', `${file}: decodes cleanly`);
  return p;
}

export const fmtMs = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`);
