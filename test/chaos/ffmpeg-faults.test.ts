// Chaos: the ingest ffmpeg child is SIGKILLed, or SIGSTOPped (a hang), mid-stream while a clip is being
// recorded (issue 8). The fault must be detected within 10 s (a NetworkError diagnostics event), the
// child reaped (no zombie, no stopped process left), a new child started, and recording must continue:
// the cut clip is closed, valid and reported, and the next event records a full clip.
//
// Env: LVA_CHAOS_FFMPEG_TRIALS (per signal, default 3).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRtspServer, type RtspTestServer } from '../helpers/rtsp-server.js';
import { startRecordingHarness, isType, type RecordingHarness } from '../helpers/recording.js';
import { readSample } from '../helpers/samples.js';
import { assertNoLeftoverFfmpeg, listFfmpegPids, readProcessTable } from '../helpers/processes.js';
import { liveFfmpegProcesses } from '../../src/media/ffmpeg-process.js';
import { assertValidLiveClip, fmtMs, recordChaosResult, sleep, trialCount, until } from './lib.js';

const TRIALS = trialCount('LVA_CHAOS_FFMPEG_TRIALS', 3);
const DETECT_GOAL_MS = 10_000;
const MAX_CLIP_S = 7.5;

describe('ffmpeg child SIGKILLed or SIGSTOPped mid-stream', () => {
  let rtsp: RtspTestServer;
  let h: RecordingHarness;
  const topology = readSample('topologies/2.0/evr-hubMessage-files.topology.json');
  const arrivals: number[] = [];

  before(async () => {
    rtsp = await startRtspServer();
    h = await startRecordingHarness({ endpointAliases: { [topology.properties.sources[0].endpoint.url]: rtsp.url('/test') } });
    h.daemon.bus.subscribe(() => arrivals.push(Date.now()));
    assert.equal((await h.call('GraphTopologySet', topology)).status, 201);
    await h.call('GraphInstanceSet', { name: 'ff', properties: { topologyName: topology.name, parameters: [{ name: 'rtspUrl', value: 'rtsp://x.invalid/' }] } });
    assert.equal((await h.call('GraphInstanceActivate', { name: 'ff' })).status, 200);
    await h.waitFor(isType('MediaSessionEstablished'), 20_000, 'first session');
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
  const firstAfter = (type: string, index: number): { i: number; at: number } | undefined => {
    for (let i = index; i < h.events.length; i++) if (isType(type)(h.events[i]!)) return { i, at: arrivals[i]! };
    return undefined;
  };
  const ingestPid = (): number => {
    const live = liveFfmpegProcesses();
    assert.equal(live.length, 1, 'one ingest ffmpeg');
    return live[0]!.pid!;
  };

  for (const signal of ['SIGKILL', 'SIGSTOP'] as const) {
    test(`${signal}: detected within 10 s, reaped, restarted, recording continues (${TRIALS} trials)`, async () => {
      const detections: number[] = [];
      const restarts: number[] = [];
      const problems: string[] = [];
      let recovered = 0;
      for (let trial = 1; trial <= TRIALS; trial++) {
        await sleep(2500); // a keyframe in the pre-roll buffer
        const startedBefore = count('RecordingStarted');
        assert.equal(trigger(), 1);
        await until(() => count('RecordingStarted') > startedBefore, 5000, 'RecordingStarted');
        await sleep(500);
        const pid = ingestPid();
        const eventIndex = h.events.length;
        const injectedAt = Date.now();
        process.kill(pid, signal);
        try {
          // Detection: the source reports the lost stream.
          await until(() => firstAfter('NetworkError', eventIndex), 20_000, 'a NetworkError after the fault');
          const detected = firstAfter('NetworkError', eventIndex)!;
          detections.push(detected.at - injectedAt);
          if (signal === 'SIGSTOP') assert.equal(h.events[detected.i]!.body.errorCode, 'Stalled', 'a hang is reported as Stalled');
          // Reaped: the old pid is gone from the process table (no zombie, no stopped process).
          await until(() => !readProcessTable().some((p) => p.pid === pid), 5000, `pid ${pid} reaped`);
          // Restarted: a new session delivers media.
          await until(() => firstAfter('MediaSessionEstablished', eventIndex), 20_000, 'a new session');
          restarts.push(firstAfter('MediaSessionEstablished', eventIndex)!.at - injectedAt);
          assert.notEqual(ingestPid(), pid, 'a new child');
          // The clip the fault cut is closed and reported.
          await until(() => count('RecordingAvailable') > startedBefore, 10_000, 'the cut clip to be reported');
          const cut = h.ofType('RecordingAvailable')[startedBefore]!;
          assert.equal(cut.body.truncated, true, 'the cut clip is reported truncated');
          assertValidLiveClip(cut.body, { maxSeconds: MAX_CLIP_S });
          if (detections.at(-1)! <= DETECT_GOAL_MS) recovered++;
          else problems.push(`trial ${trial}: detected after ${fmtMs(detections.at(-1)!)}`);
        } catch (err) {
          problems.push(`trial ${trial}: ${(err as Error).message.split('\n')[0]}`);
          detections.push(Infinity);
        }
      }
      // Recording continues: the next event gives a full clip.
      let next = 'not checked';
      try {
        await sleep(2500);
        const availBefore = count('RecordingAvailable');
        assert.equal(trigger(), 1);
        await until(() => count('RecordingAvailable') > availBefore, 20_000, 'the clip after the last fault');
        const clip = h.ofType('RecordingAvailable')[availBefore]!;
        assert.notEqual(clip.body.truncated, true);
        assertValidLiveClip(clip.body, { maxSeconds: MAX_CLIP_S });
        next = `next clip ${String(clip.body.durationSeconds)} s`;
      } catch (err) {
        problems.push(`after the faults: ${(err as Error).message.split('\n')[0]}`);
        next = 'next clip FAILED';
      }
      const worstDetect = Math.max(...detections);
      recordChaosResult({
        fault: `process: ingest ffmpeg ${signal === 'SIGKILL' ? 'SIGKILLed' : 'SIGSTOPped (hang)'}`,
        trials: TRIALS,
        recovered: problems.length === 0 ? recovered : Math.min(recovered, TRIALS - problems.length),
        dataLost: problems.length === 0 ? `none beyond the fault: ${TRIALS} cut clips closed+reported+valid` : problems.join('; '),
        worstRecoveryMs: restarts.length ? Math.max(...restarts) : null,
        detail: `detected ≤ ${Number.isFinite(worstDetect) ? fmtMs(worstDetect) : '∞'} (goal ≤ 10 s); recovery = fault → media again; ${next}; ffmpeg now ${listFfmpegPids().length}`,
      });
      assert.deepEqual(problems, []);
    });
  }
});
