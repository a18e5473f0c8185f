// Chaos: the file sink's disk fills up (issue 8). The sink writes to a small tmpfs (8 MiB, root only);
// clips are ~1 MB (a busy 640x360 camera). Checked: oldest clips are deleted per maximumSizeMiB; when
// another process fills the disk mid-clip, a diagnostics event (StorageError DiskSpaceExhausted)
// arrives, the clip is finished with what reached the disk and reported (truncated), no half-written
// file is left unreported, the daemon does not crash, and once space is freed the next event records.
//
// Env: LVA_CHAOS_DISK_TRIALS (fill-ups, default 2).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, rmSync, statfsSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { startDaemon, stopAllDaemons, tempDir, type DaemonHandle } from '../helpers/daemon.js';
import { startRtspServer, type RtspTestServer } from '../helpers/rtsp-server.js';
import { makeClip } from '../helpers/clips.js';
import { readSample } from '../helpers/samples.js';
import { assertNoLeftoverFfmpeg } from '../helpers/processes.js';
import { assertValidLiveClip, recordChaosResult, sleep, trialCount, until } from './lib.js';

const TRIALS = trialCount('LVA_CHAOS_DISK_TRIALS', 2);
const MiB = 1024 * 1024;
const FLOOR = 2 * MiB; // LVA_FILESINK_FREE_FLOOR_BYTES for the daemon
const QUOTA_MIB = 2;
const isRoot = process.getuid?.() === 0;
const FAULT = 'disk: file sink filesystem full (8 MiB tmpfs)';

function subscribe(url: string): { events: any[]; close(): void } {
  const events: any[] = [];
  const req = http.get(`${url}/v1/events`, (res) => {
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => {
      buf += c;
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const msg = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = msg.split('\n').find((l) => l.startsWith('data: '));
        if (data) events.push(JSON.parse(data.slice(6)));
      }
    });
    res.on('error', () => {});
  });
  req.on('error', () => {});
  return { events, close: () => req.destroy() };
}

/** Writes zeros into `file` until only about `leaveBytes` are free on its filesystem (or ENOSPC). */
function fillDisk(file: string, leaveBytes: number): void {
  const dir = path.dirname(file);
  const free = () => {
    const st = statfsSync(dir);
    return st.bavail * st.bsize;
  };
  const block = Buffer.alloc(64 * 1024);
  const fd = openSync(file, 'a');
  try {
    for (let left = free() - leaveBytes; left > 0; left -= block.length) {
      writeSync(fd, block, 0, Math.min(block.length, left));
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

describe(`${FAULT}, ${TRIALS} fill-ups`, { skip: isRoot ? false : 'needs root to mount a tmpfs' }, () => {
  let rtsp: RtspTestServer | undefined;
  let d: DaemonHandle | undefined;
  const work = tempDir('lva-chaos-disk-');
  const mount = path.join(work, 'disk');
  let mounted = false;

  before(async () => {
    mkdirSync(mount);
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0755', 'tmpfs', mount], { encoding: 'utf8' });
    assert.equal(r.status, 0, `mount tmpfs: ${r.stderr}`);
    mounted = true;
  });
  after(async () => {
    await stopAllDaemons();
    await rtsp?.stop();
    if (mounted) spawnSync('umount', ['-l', mount]);
    rmSync(work, { recursive: true, force: true });
    await assertNoLeftoverFfmpeg();
  });

  test('quota retention, diagnostics, salvaged clip, no unreported partial, recording resumes', async () => {
    const loop = await makeClip({ seconds: 10, fps: 25, container: 'ts' }); // busy picture: ~190 KiB/s
    rtsp = await startRtspServer({ loopFile: loop });
    const topology = readSample('topologies/2.0/evr-hubMessage-files.topology.json');
    topology.properties.sinks[0].maximumSizeMiB = String(QUOTA_MIB);
    const clipDir = path.join(mount, 'var', 'media');
    d = await startDaemon({
      dataDir: path.join(work, 'state'),
      config: {
        applicationDataDirectory: path.join(work, 'state'),
        outputRootDirectory: mount,
        endpointAliases: { [topology.properties.sources[0].endpoint.url]: rtsp.url('/loop') },
      },
      env: { LVA_FILESINK_FREE_FLOOR_BYTES: String(FLOOR) },
    });
    const sse = subscribe(d.url);
    const typed = (type: string) => sse.events.filter((e) => String(e.applicationProperties.eventType).endsWith(`.${type}`));
    const trigger = async () => {
      const r = await d!.request('POST', '/v1/inputs/recordingTrigger', {
        body: JSON.stringify({ body: {}, applicationProperties: { eventTime: new Date().toISOString() } }),
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(r.status, 202);
    };
    const recordOne = async (): Promise<any> => {
      const before = typed('RecordingAvailable').length;
      await trigger();
      await until(() => typed('RecordingAvailable').length > before, 25_000, 'a clip');
      return typed('RecordingAvailable')[before];
    };
    const mp4s = () => readdirSync(clipDir).filter((f) => f.endsWith('.mp4')).map((f) => path.join(clipDir, f));
    const problems: string[] = [];

    try {
      assert.equal((await d.call('GraphTopologySet', topology)).status, 201);
      assert.equal((await d.call('GraphInstanceSet', { '@apiVersion': '2.0', name: 'disk', properties: { topologyName: topology.name, parameters: [{ name: 'rtspUrl', value: 'rtsp://x.invalid/' }] } })).status, 201);
      assert.equal((await d.call('GraphInstanceActivate', { '@apiVersion': '2.0', name: 'disk' })).status, 200);
      await until(() => typed('MediaSessionEstablished').length > 0, 20_000, 'the camera session');
      await sleep(2500);

      // 1. Retention: ~1 MB clips under a 2 MiB quota → after a few clips the oldest are deleted, and
      // what is kept is always the newest ones, within the quota plus the clip just finished.
      const first: any[] = [];
      while (first.length < 6) {
        first.push(await recordOne());
        if (!mp4s().includes(String(first[0].body.outputLocation))) break;
      }
      const kept = mp4s();
      const total = kept.reduce((s, f) => s + statSync(f).size, 0);
      const recorded = first.map((c) => String(c.body.outputLocation));
      assert.ok(!kept.includes(recorded[0]!), `the oldest clip was deleted after ${first.length} clips (kept: ${kept.map((f) => path.basename(f)).join(', ')})`);
      assert.deepEqual([...kept].sort(), recorded.slice(recorded.length - kept.length).sort(), 'the newest clips are the ones kept');
      assert.ok(total <= QUOTA_MIB * MiB + Number(first.at(-1).body.sizeBytes), `${total} bytes kept, quota ${QUOTA_MIB} MiB (+ the newest clip)`);

      let salvaged = 0;
      let diagnostics = 0;
      for (let trial = 1; trial <= TRIALS; trial++) {
        // 2. Another process fills the disk while a clip is being written.
        const startedBefore = typed('RecordingStarted').length;
        const availBefore = typed('RecordingAvailable').length;
        const diagBefore = typed('StorageError').length;
        await trigger();
        await until(() => typed('RecordingStarted').length > startedBefore, 10_000, 'RecordingStarted');
        await sleep(1000);
        const filler = path.join(mount, `filler-${trial}`);
        fillDisk(filler, 64 * 1024);
        await until(() => typed('StorageError').slice(diagBefore).some((e) => e.body.code === 'DiskSpaceExhausted'), 10_000, 'a DiskSpaceExhausted diagnostics event');
        diagnostics++;
        // The cut clip is finished with what reached the disk and reported.
        await until(() => typed('RecordingAvailable').length > availBefore, 10_000, 'the cut clip to be reported');
        const cut = typed('RecordingAvailable')[availBefore];
        assert.equal(cut.body.truncated, true, 'the clip cut by the full disk is reported truncated');
        assertValidLiveClip(cut.body, { maxSeconds: 7.5 });
        salvaged++;
        await sleep(3000); // the gate keeps going; the sink must not open and fail clips meanwhile
        // No unreported half-written file: no .partial, and every .mp4 in the directory was reported.
        const partials = readdirSync(clipDir).filter((f) => f.endsWith('.partial'));
        assert.deepEqual(partials, [], 'no half-written file is left');
        const reported = new Set(typed('RecordingAvailable').map((e) => String(e.body.outputLocation)));
        const unreported = mp4s().filter((f) => !reported.has(f));
        assert.deepEqual(unreported, [], 'every clip on disk was reported');
        assert.ok(typed('RecordingStarted').length === typed('RecordingAvailable').length, 'every started clip was reported available');
        // No crash.
        assert.equal(d.stderr().includes('"level":60') || d.stderr().includes('uncaught'), false, 'no fatal log line');
        assert.equal((await d.call('GraphInstanceGet', { '@apiVersion': '2.0', name: 'disk' })).payload.properties.state, 'Active');

        // 3. Space is freed → the next event records a full clip.
        rmSync(filler);
        await sleep(500);
        const next = await recordOne();
        assert.notEqual(next.body.truncated, true, 'the clip after the space came back is complete');
        assertValidLiveClip(next.body, { maxSeconds: 7.5 });
      }
      recordChaosResult({
        fault: FAULT,
        trials: TRIALS,
        recovered: Math.min(salvaged, diagnostics),
        dataLost: 'only what arrived while the disk was full; cut clips finished+reported, no stray .partial',
        worstRecoveryMs: null,
        detail: `quota ${QUOTA_MIB} MiB: oldest deleted, ${kept.length} kept; ${diagnostics} DiskSpaceExhausted events; recording resumed after freeing space`,
      });
    } catch (err) {
      problems.push((err as Error).message.split('\n')[0]!);
      recordChaosResult({ fault: FAULT, trials: TRIALS, recovered: 0, dataLost: problems.join('; '), worstRecoveryMs: null });
      throw err;
    } finally {
      sse.close();
    }
    assert.equal((await d.call('GraphInstanceDeactivate', { '@apiVersion': '2.0', name: 'disk' })).status, 200);
    assert.equal(await d.stop(), 0);
  });
});

if (!isRoot) recordChaosResult({ fault: FAULT, trials: 0, recovered: 0, dataLost: '–', worstRecoveryMs: null, skipped: 'not root (mounting a tmpfs needs root)' });
