// Chaos: bad camera data (issue 8) — timestamps jumping backwards and hours forwards, a codec change
// mid-stream, truncated input, and a live stream cut short. Each must give: no crash, no clip with an
// absurd duration, every clip valid, and a diagnostics event.
//
// Inputs are made with ffmpeg from the synthetic clips (cached next to them): MPEG-TS segments with
// -output_ts_offset, concatenated byte for byte (as a camera or recorder glues streams), a truncated
// file, and an H.264 → H.265 concatenation. Files go through `lva-edge replay` (the same ingest,
// parser and timeline code as a live camera, at full speed); the cut stream is served live by the
// RTSP test server's /file mount.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, truncateSync, copyFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { replay } from '../../src/replay.js';
import { makeClip, clipCacheDir } from '../helpers/clips.js';
import { readSample } from '../helpers/samples.js';
import { probeClip } from '../helpers/clip-check.js';
import { assertNoLeftoverFfmpeg } from '../helpers/processes.js';
import { startRtspServer, type RtspTestServer } from '../helpers/rtsp-server.js';
import { startRecordingHarness, isType, type RecordingHarness } from '../helpers/recording.js';
import type { EventLine } from '../../src/runtime/events.js';
import { findFfmpeg } from '../../src/util/executables.js';
import { decodeErrors, recordChaosResult, sleep, until } from './lib.js';

const START = '2021-03-04T05:06:07Z';
/** Tmax 5 s + one 2 s GOP of pre-roll + a frame: the longest clip evr-motion-files can make. */
const MAX_CLIP_S = 7.1;
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'lva-chaos-bad-'));
  dirs.push(d);
  return d;
};

/** Runs ffmpeg once to make `name` in the clip cache (reused while it exists). */
function derived(name: string, args: (out: string) => string[]): string {
  const out = path.join(clipCacheDir, `chaos-v1-${name}`);
  if (existsSync(out)) return out;
  const part = `${out}.${process.pid}.tmp`;
  const r = spawnSync(findFfmpeg(), ['-v', 'error', '-y', ...args(part)], { encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL' });
  assert.equal(r.status, 0, `ffmpeg ${name}: ${r.stderr}`);
  renameSync(part, out);
  return out;
}

function concatBytes(name: string, parts: string[]): string {
  const out = path.join(clipCacheDir, `chaos-v1-${name}`);
  if (!existsSync(out)) {
    writeFileSync(`${out}.${process.pid}.tmp`, Buffer.concat(parts.map((p) => readFileSync(p))));
    renameSync(`${out}.${process.pid}.tmp`, out);
  }
  return out;
}

const withOffset = (src: string, seconds: number) =>
  derived(`${path.basename(src, '.ts')}-at${seconds}.ts`, (out) => ['-i', src, '-c', 'copy', '-output_ts_offset', String(seconds), '-f', 'mpegts', out]);

interface Outcome {
  events: EventLine[];
  clips: EventLine[];
  ok: boolean;
  errors: string[];
}

/**
 * evr-hubMessage-files over `input`, with a recording trigger at each of `triggerS` (seconds of media
 * time after --start-time). The record-only path: no decode branch (see the report on decode and jumps).
 */
async function replayTriggered(input: string, triggerS: number[]): Promise<Outcome> {
  const out = tmp();
  const zero = Date.parse(START);
  const r = await replay({
    topology: readSample('topologies/2.0/evr-hubMessage-files.topology.json'), input, output: out, startTime: START,
    params: { rtspUrl: 'rtsp://unused.invalid/' },
    messages: triggerS.map((t) => ({ inputName: 'recordingTrigger', eventTime: new Date(zero + t * 1000).toISOString() })),
  });
  const events = readFileSync(r.eventsFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as EventLine);
  return { events, clips: events.filter(isType('RecordingAvailable')), ok: r.ok, errors: r.errors };
}

const diagnostics = (events: EventLine[]) => events.filter((e) => e.applicationProperties.eventType.includes('.Diagnostics.'));

/** Every clip: exists, decodes cleanly, 0 < duration ≤ MAX_CLIP_S, and the file agrees with its event. */
function clipProblems(clips: EventLine[], codec?: string): string[] {
  const problems: string[] = [];
  for (const c of clips) {
    const file = String(c.body.outputLocation);
    try {
      const p = probeClip(file);
      if (codec && p.video.codec !== codec) problems.push(`${path.basename(file)}: codec ${p.video.codec}`);
      const d = Number(c.body.durationSeconds);
      if (!(d > 0 && d <= MAX_CLIP_S)) problems.push(`${path.basename(file)}: absurd duration ${d} s`);
      if (Math.abs(p.durationSeconds - d) > 0.1) problems.push(`${path.basename(file)}: file ${p.durationSeconds} s vs event ${d} s`);
      const span = (Date.parse(String(c.body.endTime)) - Date.parse(String(c.body.startTime))) / 1000;
      if (Math.abs(span - d) > 0.01) problems.push(`${path.basename(file)}: window ${span} s vs duration ${d} s`);
      const errs = decodeErrors(file);
      if (errs) problems.push(`${path.basename(file)}: ${errs.split('\n')[0]}`);
    } catch (err) {
      problems.push(`${path.basename(file)}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  return problems;
}

after(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await assertNoLeftoverFfmpeg();
});

describe('bad camera data', () => {
  test('timestamps jumping hours forwards', async () => {
    // Two 6 s segments: media time 100 s, then 3 h later. Triggers in each.
    const seg = await makeClip({ seconds: 6, fps: 25, gop: 50, container: 'ts' });
    const input = concatBytes('jump-forward.ts', [withOffset(seg, 100), withOffset(seg, 10_900)]);
    const o = await replayTriggered(input, [102.5, 108.5]);
    const jumps = diagnostics(o.events).filter((e) => e.body.code === 'TimestampDiscontinuity');
    const problems = clipProblems(o.clips);
    // The timeline stays continuous: 12 s of input span about 12 s of event time, not hours.
    const times = o.clips.flatMap((c) => [Date.parse(String(c.body.startTime)), Date.parse(String(c.body.endTime))]);
    const spanS = times.length ? (Math.max(...times) - Math.min(...times)) / 1000 : 0;
    recordChaosResult({
      fault: 'camera data: timestamps jump 3 h forwards',
      trials: 1,
      recovered: problems.length === 0 && jumps.length === 1 && o.clips.length >= 2 && spanS < 13 ? 1 : 0,
      dataLost: problems.length ? problems.join('; ') : 'none',
      worstRecoveryMs: null,
      detail: `${o.clips.length} clips (${o.clips.map((c) => c.body.durationSeconds).join('/')} s) spanning ${spanS.toFixed(1)} s; ${jumps.length} TimestampDiscontinuity event`,
    });
    assert.ok(o.ok, `replay finished (${o.errors.join('; ')})`);
    assert.deepEqual(problems, []);
    assert.equal(jumps.length, 1, 'a diagnostics event for the jump');
    assert.ok(o.clips.length >= 2, `the clip cut by the jump and the one after it (${o.clips.length})`);
    assert.ok(spanS < 13, `clip times stay on one continuous timeline (${spanS} s)`);
    // Clips never overlap on the timeline.
    for (let i = 1; i < o.clips.length; i++) {
      assert.ok(Date.parse(String(o.clips[i]!.body.startTime)) >= Date.parse(String(o.clips[i - 1]!.body.endTime)), 'clips do not overlap');
    }
  });

  // Known gap (see the report): ffmpeg's muxer "fixes" a backward dts jump by making every following
  // packet 1 tick after the previous one until the clock passes its old maximum, so the source sees
  // seconds of video squeezed into microseconds and cannot report the jump. Kept as a todo so the
  // summary shows it; it runs and records what happens.
  test('timestamps jumping backwards', { todo: 'ffmpeg squeezes the packets after a backward dts jump; needs re-timing in the ingest' }, async () => {
    const seg = await makeClip({ seconds: 6, fps: 25, gop: 50, container: 'ts' });
    const input = concatBytes('jump-back.ts', [withOffset(seg, 100), withOffset(seg, 20)]);
    const o = await replayTriggered(input, [102.5, 108.5]);
    const jumps = diagnostics(o.events).filter((e) => e.body.code === 'TimestampDiscontinuity');
    const problems = clipProblems(o.clips);
    const ok = o.ok && problems.length === 0 && jumps.length >= 1 && o.clips.length >= 2;
    recordChaosResult({
      fault: 'camera data: timestamps jump 80 s backwards',
      knownGap: true,
      trials: 1,
      recovered: ok ? 1 : 0,
      dataLost: problems.length ? problems.join('; ') : o.clips.length < 2 ? 'the 6 s after the jump (squeezed by ffmpeg), trigger in it not recorded' : 'none',
      worstRecoveryMs: null,
      detail: `no crash, replay ok=${o.ok}; ${o.clips.length} clips (${o.clips.map((c) => c.body.durationSeconds).join('/')} s); ${jumps.length} TimestampDiscontinuity events`,
    });
    assert.ok(o.ok, 'no crash');
    assert.deepEqual(problems, [], 'no broken or absurd clip');
    assert.ok(jumps.length >= 1, 'a diagnostics event for the jump');
    assert.ok(o.clips.length >= 2, 'the trigger after the jump records');
  });

  // Known gap (see the report): ffmpeg's MPEG-TS demuxer keeps the first stream's codec when the PMT
  // switches the PID to H.265, so the H.265 packets reach the clip as H.264 samples (undecodable tail),
  // and nothing reports the change. A live camera that changes codec reconnects with a new SDP, which is
  // handled (the last test below).
  test('codec change mid-stream (H.264 then H.265)', { todo: 'a codec change inside one MPEG-TS stream is not detected' }, async () => {
    const h264 = await makeClip({ seconds: 6, fps: 25, gop: 50, motion: { start: 2, end: 3 }, container: 'ts' });
    const hevc = await makeClip({ seconds: 6, fps: 25, gop: 50, codec: 'hevc', motion: { start: 2, end: 3 }, container: 'ts' });
    const input = concatBytes('h264-then-hevc.ts', [h264, hevc]);
    const o = await replayTriggered(input, [2.5, 8.5]);
    const problems = clipProblems(o.clips, 'h264');
    const diags = diagnostics(o.events).filter((e) => !e.applicationProperties.eventType.endsWith('MediaSessionEstablished'));
    recordChaosResult({
      fault: 'camera data: codec changes H.264 → H.265 inside one TS stream',
      knownGap: true,
      trials: 1,
      recovered: problems.length === 0 && o.clips.length >= 1 && diags.length >= 1 ? 1 : 0,
      dataLost: problems.length ? problems.join('; ') : 'the H.265 part (a new stream the H.264 session cannot carry), reported',
      worstRecoveryMs: null,
      detail: `${o.clips.length} clips; diagnostics: ${diags.map((e) => `${e.applicationProperties.eventType.split('.').pop()}/${String(e.body.code ?? e.body.errorCode ?? '')}`).join(', ') || 'none'}`,
    });
    assert.deepEqual(problems, [], 'no clip mixes codecs or is broken');
    assert.ok(o.clips.length >= 1, 'the H.264 part is recorded');
    assert.ok(diags.length >= 1, 'the change is reported by a diagnostics event');
  });

  test('truncated file (cut mid-packet)', async () => {
    const full = await makeClip({ seconds: 8, fps: 25, gop: 50, motion: { start: 2, end: 3 }, container: 'ts' });
    const cut = path.join(tmp(), 'truncated.ts');
    copyFileSync(full, cut);
    truncateSync(cut, Math.floor(statSync(full).size * 0.6) + 77); // not on a 188-byte packet boundary
    const o = await replayTriggered(cut, [1.5]);
    // The cut leaves the file's last frame incomplete, and ffmpeg passes it on: the clip's last frame
    // is damaged (noted in the summary); everything before it must decode.
    const problems = clipProblems(o.clips).filter((p) => !/error while decoding|bytestream|concealing/.test(p));
    const damaged = clipProblems(o.clips).length - problems.length;
    const diags = diagnostics(o.events).filter((e) => !e.applicationProperties.eventType.endsWith('MediaSessionEstablished'));
    recordChaosResult({
      fault: 'camera data: truncated input (cut mid-packet at 60 %)',
      trials: 1,
      recovered: problems.length === 0 && o.clips.length >= 1 ? 1 : 0,
      dataLost: problems.length ? problems.join('; ') : `only the missing tail${damaged ? '; the last (partial) frame is kept damaged' : ''}`,
      worstRecoveryMs: null,
      detail: `${o.clips.length} clips (${o.clips.map((c) => `${String(c.body.durationSeconds)} s${c.body.truncated ? ' truncated' : ''}`).join(', ')}); diagnostics: ${diags.map((e) => String(e.body.code ?? e.body.errorCode ?? e.applicationProperties.eventType.split('.').pop())).join(', ') || 'none'}`,
    });
    assert.ok(o.ok, `no crash (${o.errors.join('; ')})`);
    assert.deepEqual(problems, []);
    assert.ok(o.clips.length >= 1, 'what was there is recorded');
    assert.equal(o.clips[0]!.body.truncated, true, 'the clip cut by the end of the input is reported truncated');
    // A file that ends is the end of a replay, not a camera fault: the live case (next test) reports it.
  });

  describe('live stream cut short mid-clip, then the camera comes back with another codec', () => {
    let rtsp: RtspTestServer | undefined;
    let h: RecordingHarness | undefined;
    after(async () => {
      await h?.close();
      await rtsp?.stop();
    });
    test('the cut clip is closed and reported; the H.265 stream after it records', async () => {
      const served = path.join(tmp(), 'camera.mkv');
      const h264 = await makeClip({ seconds: 8, fps: 25, gop: 50, container: 'mkv' });
      const hevc = await makeClip({ seconds: 30, fps: 25, gop: 50, codec: 'hevc', container: 'mkv' });
      // The H.264 stream ends abruptly at 60 % (a truncated file: the server's pipeline stops there).
      copyFileSync(h264, served);
      truncateSync(served, Math.floor(statSync(h264).size * 0.6));
      rtsp = await startRtspServer({ file: served });
      h = await startRecordingHarness();
      const topology = readSample('topologies/2.0/evr-hubMessage-files.topology.json');
      topology.name = 'EVRLiveBadData';
      topology.properties.sources[0].endpoint.url = '${rtspUrl}';
      delete topology.properties.sources[0].endpoint.credentials;
      assert.equal((await h.call('GraphTopologySet', topology)).status, 201);
      await h.call('GraphInstanceSet', { name: 'bad', properties: { topologyName: topology.name, parameters: [{ name: 'rtspUrl', value: rtsp.url('/file') }] } });
      assert.equal((await h.call('GraphInstanceActivate', { name: 'bad' })).status, 200);
      await h.waitFor(isType('MediaSessionEstablished'), 20_000, 'the H.264 session');
      // Once restarted, the camera serves H.265.
      copyFileSync(hevc, `${served}.next`);
      renameSync(`${served}.next`, served);
      await sleep(2200);
      const trigger = () => {
        const now = new Date();
        return h!.daemon.inputs.deliver({ inputName: 'recordingTrigger', body: {}, applicationProperties: { eventTime: now.toISOString() }, receivedAt: now });
      };
      assert.equal(trigger(), 1);
      const cut = await h.waitFor(isType('RecordingAvailable'), 20_000, 'the clip cut by the end of the stream');
      const lost = await h.waitFor((e) => /Diagnostics\.(NetworkError|ProtocolError|MediaFormatError)$/.test(e.applicationProperties.eventType), 20_000, 'a diagnostics event for the cut stream');
      // The camera restarts with the new configuration (the test server picks the codec at start-up).
      await rtsp.restart();
      await until(() => h!.ofType('MediaSessionEstablished').length >= 2, 30_000, 'the H.265 session');
      await sleep(2500);
      const before = h.ofType('RecordingAvailable').length;
      assert.equal(trigger(), 1);
      await until(() => h!.ofType('RecordingAvailable').length > before, 20_000, 'a clip of the H.265 stream');
      const next = h.ofType('RecordingAvailable')[before]!;
      const problems = [...clipProblems([cut], 'h264'), ...clipProblems([next], 'hevc')];
      recordChaosResult({
        fault: 'camera data: live stream ends mid-clip, returns as H.265',
        trials: 1,
        recovered: problems.length === 0 && cut.body.truncated === true ? 1 : 0,
        dataLost: problems.length ? problems.join('; ') : 'none: cut clip closed+reported',
        worstRecoveryMs: null,
        detail: `cut clip ${String(cut.body.durationSeconds)} s (truncated: ${String(cut.body.truncated)}), diagnostics ${lost.applicationProperties.eventType.split('.').pop()}; next clip ${String(next.body.durationSeconds)} s H.265`,
      });
      assert.deepEqual(problems, []);
      assert.equal(cut.body.truncated, true, 'the cut clip is reported truncated');
      assert.equal((await h.call('GraphInstanceDeactivate', { name: 'bad' })).status, 200);
    });
  });
});
