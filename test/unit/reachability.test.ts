// reachabilityWakingClock: a backoff sleep ends early only on the transition unreachable → reachable.
// A fake base clock (manual time) and a scripted probe make every case deterministic; one case uses a
// real loopback listener for tcpProbe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { reachabilityWakingClock, rtspTarget, tcpProbe } from '../../src/runtime/reachability.js';
import type { SupervisorClock } from '../../src/runtime/supervisor.js';
import { freePort } from '../helpers/ports.js';

/** Manual time: sleeps resolve when advance() passes their deadline, or on abort. */
function manualClock() {
  let now = 0;
  const timers: Array<{ at: number; resolve: () => void }> = [];
  const clock: SupervisorClock = {
    now: () => now,
    sleep: (ms, signal) => new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const t = { at: now + ms, resolve };
      timers.push(t);
      signal.addEventListener('abort', () => {
        timers.splice(timers.indexOf(t), 1);
        resolve();
      }, { once: true });
    }),
  };
  const flush = () => new Promise<void>((r) => setImmediate(r));
  return {
    clock,
    get now() {
      return now;
    },
    async advance(ms: number) {
      const end = now + ms;
      for (;;) {
        await flush();
        const due = timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        now = due.at;
        timers.splice(timers.indexOf(due), 1);
        due.resolve();
      }
      now = end;
      await flush();
    },
  };
}

/** A probe answering from a script: results[i] for the i-th probe, the last one repeated. */
function scriptedProbe(results: boolean[]) {
  let i = 0;
  const probe = async () => results[Math.min(i++, results.length - 1)]!;
  return { probe, get calls() {
    return i;
  } };
}

async function sleepOutcome(clock: SupervisorClock, ms: number, signal = new AbortController().signal) {
  let done = false;
  const p = clock.sleep(ms, signal).then(() => {
    done = true;
  });
  return { p, isDone: () => done };
}

test('unreachable, then reachable: the sleep ends at the first successful probe', async () => {
  const m = manualClock();
  const s = scriptedProbe([false, false, false, true]);
  const clock = reachabilityWakingClock({ host: 'cam', port: 554 }, { pollMs: 500, probe: s.probe, base: m.clock });
  const o = await sleepOutcome(clock, 16_000);
  await m.advance(1400);
  assert.equal(o.isDone(), false, 'still unreachable');
  await m.advance(100); // the 4th probe at 1500 ms succeeds
  assert.equal(o.isDone(), true);
  assert.equal(m.now, 1500);
  assert.equal(s.calls, 4);
});

test('reachable from the start (the camera refuses the stream): the full backoff is kept', async () => {
  const m = manualClock();
  const s = scriptedProbe([true]);
  const clock = reachabilityWakingClock({ host: 'cam', port: 554 }, { pollMs: 500, probe: s.probe, base: m.clock });
  const o = await sleepOutcome(clock, 8000);
  await m.advance(7999);
  assert.equal(o.isDone(), false);
  assert.equal(s.calls, 1, 'no probing once the port was seen answering');
  await m.advance(1);
  assert.equal(o.isDone(), true);
});

test('never reachable: the sleep lasts its full time and the probing stops with it', async () => {
  const m = manualClock();
  const s = scriptedProbe([false]);
  const clock = reachabilityWakingClock({ host: 'cam', port: 554 }, { pollMs: 500, probe: s.probe, base: m.clock });
  const o = await sleepOutcome(clock, 4000);
  await m.advance(4000);
  assert.equal(o.isDone(), true);
  const calls = s.calls;
  assert.ok(calls >= 8 && calls <= 9, `probed every 500 ms (${calls})`);
  await m.advance(5000);
  assert.equal(s.calls, calls, 'no probe after the sleep ended');
});

test('abort ends the sleep at once; short sleeps do not probe', async () => {
  const m = manualClock();
  const s = scriptedProbe([false]);
  const clock = reachabilityWakingClock({ host: 'cam', port: 554 }, { pollMs: 500, probe: s.probe, base: m.clock });
  const ac = new AbortController();
  const o = await sleepOutcome(clock, 30_000, ac.signal);
  await m.advance(1000);
  ac.abort();
  await o.p;
  assert.equal(m.now, 1000);
  const before = s.calls;
  const short = await sleepOutcome(clock, 400);
  await m.advance(400);
  assert.equal(short.isDone(), true);
  assert.equal(s.calls, before, 'a sleep no longer than one poll interval just sleeps');
});

test('rtspTarget: host and port, with the RTSP default ports', () => {
  assert.deepEqual(rtspTarget('rtsp://user:pw@10.0.0.5:8554/stream'), { host: '10.0.0.5', port: 8554 });
  assert.deepEqual(rtspTarget('rtsp://camera.local/live'), { host: 'camera.local', port: 554 });
  assert.deepEqual(rtspTarget('rtsps://camera.local/live'), { host: 'camera.local', port: 322 });
  assert.deepEqual(rtspTarget('rtsp://[::1]:9000/x'), { host: '::1', port: 9000 });
  assert.equal(rtspTarget('not a url'), undefined);
});

test('tcpProbe against a real loopback port: true while listening, false once closed', async () => {
  const port = await freePort();
  const server = createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  assert.equal(await tcpProbe({ host: '127.0.0.1', port }, 1000), true);
  await new Promise<void>((r) => server.close(() => r()));
  assert.equal(await tcpProbe({ host: '127.0.0.1', port }, 1000), false);
});
