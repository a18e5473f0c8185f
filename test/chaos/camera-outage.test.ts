// Chaos: the camera's RTSP server is killed for 10 s and restarted on the same port, 20 times in a row
// (issue 8). Each return must be followed by media within 5 s; every clip an outage cut is closed,
// valid and reported; the event after the last return records normally; no ffmpeg process is leaked.
//
// Env: LVA_CHAOS_CAMERA_TRIALS (default 20), LVA_CHAOS_OUTAGE_MS (default 10000).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRtspServer, type RtspTestServer } from '../helpers/rtsp-server.js';
import { startRecordingHarness, isType, type RecordingHarness } from '../helpers/recording.js';
import { readSample } from '../helpers/samples.js';
import { assertNoLeftoverFfmpeg, listFfmpegPids } from '../helpers/processes.js';
import type { EventLine } from '../../src/runtime/events.js';
import { assertValidLiveClip, fmtMs, recordChaosResult, sleep, trialCount, until } from './lib.js';

const TRIALS = trialCount('LVA_CHAOS_CAMERA_TRIALS', 20);
const OUTAGE_MS = Number(process.env.LVA_CHAOS_OUTAGE_MS ?? 10_000);
const RECOVERY_GOAL_MS = 5_000;
/** Tmax (5 s) plus one GOP of pre-roll (2 s) plus slack: no clip may be longer. */
const MAX_CLIP_S = 7.5;

describe(`camera outage: RTSP server killed for ${OUTAGE_MS / 1000} s and restarted, ${TRIALS} times`, () => {
  let rtsp: RtspTestServer;
  let h: RecordingHarness;
  const topology = readSample('topologies/2.0/evr-hubMessage-files.topology.json');
  /** Arrival time (Date.now()) of every event, in the order of h.events. */
  const arrivals: number[] = [];

  before(async () => {
    rtsp = await startRtspServer();
    h = await startRecordingHarness({ endpointAliases: { [topology.properties.sources[0].endpoint.url]: rtsp.url('/test') } });
    h.daemon.bus.subscribe(() => arrivals.push(Date.now()));
  });
  after(async () => {
    await h?.close();
    await rtsp?.stop();
    await assertNoLeftoverFfmpeg();
  });

  const trigger = () => {
    const now = new Date();
    return h.daemon.inputs.deliver({ inputName: 'recordingTrigger', body: {}, applicationProperties: { eventTime: now.toISOString() }, receivedAt: now });
  };
  const count = (type: string) => h.ofType(type).length;
  /** Arrival time of the n-th (0-based) event of `type`. */
  const arrivalOf = (type: string, n: number): number | undefined => {
    let seen = 0;
    for (let i = 0; i < h.events.length; i++) {
      if (!isType(type)(h.events[i]!)) continue;
      if (seen++ === n) return arrivals[i];
    }
    return undefined;
  };

  test('every return recovers within 5 s; cut clips are closed, valid and reported; the next event records', async () => {
    assert.equal((await h.call('GraphTopologySet', topology)).status, 201);
    await h.call('GraphInstanceSet', { name: 'outage', properties: { topologyName: topology.name, parameters: [{ name: 'rtspUrl', value: 'rtsp://x.invalid/' }] } });
    assert.equal((await h.call('GraphInstanceActivate', { name: 'outage' })).status, 200);
    await h.waitFor(isType('MediaSessionEstablished'), 20_000, 'first session');
    await sleep(1000);
    const ffmpegBefore = listFfmpegPids().length;
    assert.equal(ffmpegBefore, 1, 'one ingest ffmpeg for one camera');

    const recoveries: number[] = [];
    const failures: string[] = [];
    let cutClips = 0;
    for (let trial = 1; trial <= TRIALS; trial++) {
      // Record something so that the outage cuts a clip (when a keyframe comes in time).
      const startedBefore = count('RecordingStarted');
      assert.equal(trigger(), 1);
      const cutting = await until(() => count('RecordingStarted') > startedBefore, 3500, 'RecordingStarted').then(() => true, () => false);
      if (cutting) cutClips++;
      await sleep(300);
      const sessionsBefore = count('MediaSessionEstablished');
      await rtsp.kill();
      await sleep(OUTAGE_MS);
      await rtsp.restart();
      const returnedAt = Date.now();
      try {
        await until(() => count('MediaSessionEstablished') > sessionsBefore, 30_000, `media after return ${trial}`);
        const recovery = arrivalOf('MediaSessionEstablished', sessionsBefore)! - returnedAt;
        recoveries.push(recovery);
        if (recovery > RECOVERY_GOAL_MS) failures.push(`trial ${trial}: recovered after ${fmtMs(recovery)}`);
      } catch (err) {
        failures.push(`trial ${trial}: ${(err as Error).message}`);
        recoveries.push(Infinity);
      }
    }

    // The event after the last return records normally (a full, untruncated clip).
    await sleep(2500); // a keyframe in the pre-roll buffer
    const availBefore = count('RecordingAvailable');
    const startedBefore = count('RecordingStarted');
    assert.equal(trigger(), 1);
    await h.waitFor(() => count('RecordingAvailable') > availBefore && count('RecordingStarted') > startedBefore
      && h.ofType('RecordingAvailable').some((e, i) => i >= availBefore && e.body.truncated !== true), 20_000, 'a clip after the last return');
    const last = h.ofType('RecordingAvailable').slice(availBefore).find((e) => e.body.truncated !== true)!;
    assertValidLiveClip(last.body, { maxSeconds: MAX_CLIP_S });
    assert.ok(Number(last.body.durationSeconds) >= 4.9, `the last clip is a full one (${String(last.body.durationSeconds)} s)`);
    await sleep(500);
    const ffmpegAfter = listFfmpegPids().length;

    // Every clip that was started was closed and reported, and is valid.
    const started = h.ofType('RecordingStarted').map((e) => String(e.body.outputLocation));
    const available = new Map(h.ofType('RecordingAvailable').map((e) => [String(e.body.outputLocation), e] as [string, EventLine]));
    const stopped = new Set(h.ofType('RecordingStopped').map((e) => String(e.body.outputLocation)));
    const unreported = started.filter((f) => !available.has(f) || !stopped.has(f));
    const invalid: string[] = [];
    for (const e of available.values()) {
      try {
        assertValidLiveClip(e.body, { maxSeconds: MAX_CLIP_S });
      } catch (err) {
        invalid.push((err as Error).message.split('\n')[0]!);
      }
    }
    const truncated = [...available.values()].filter((e) => e.body.truncated === true).length;
    const worst = Math.max(...recoveries);
    const sorted = [...recoveries].sort((a, b) => a - b);
    recordChaosResult({
      fault: `camera: RTSP server killed ${OUTAGE_MS / 1000} s, restarted`,
      trials: TRIALS,
      recovered: recoveries.filter((r) => r <= RECOVERY_GOAL_MS).length,
      dataLost: unreported.length + invalid.length === 0
        ? `none beyond the outages: ${truncated} cut clips closed+reported+valid`
        : `${unreported.length} unreported, ${invalid.length} invalid clips`,
      worstRecoveryMs: Number.isFinite(worst) ? worst : null,
      detail: `median recovery ${fmtMs(sorted[Math.floor(sorted.length / 2)]!)} (goal ≤ 5 s); ${started.length} clips; ffmpeg ${ffmpegBefore} → ${ffmpegAfter}`,
    });

    assert.deepEqual(failures, [], 'every return recovered within 5 s');
    assert.deepEqual(unreported, [], 'every started clip is stopped and available');
    assert.deepEqual(invalid, [], 'every clip is valid');
    assert.ok(truncated >= Math.min(cutClips, 1), `clips cut by outages are reported truncated (${truncated} of ${cutClips})`);
    assert.equal(ffmpegAfter, ffmpegBefore, 'the same number of ffmpeg processes before and after');
    assert.equal((await h.call('GraphInstanceGet', { name: 'outage' })).payload.properties.state, 'Active');
    assert.equal((await h.call('GraphInstanceDeactivate', { name: 'outage' })).status, 200);
  });
});
