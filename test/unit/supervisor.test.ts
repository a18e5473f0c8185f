// Supervisor with a fake clock: no real waiting, every delay is observed through state changes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelayMs, Supervisor, type RunContext, type RunOutcome, type SupervisorClock, type SupervisorState } from '../../src/runtime/supervisor.js';

class FakeClock implements SupervisorClock {
  private t = 0;
  private sleepers: { until: number; resolve: () => void }[] = [];
  now(): number {
    return this.t;
  }
  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const sleeper = { until: this.t + ms, resolve };
      this.sleepers.push(sleeper);
      signal.addEventListener('abort', () => {
        this.sleepers = this.sleepers.filter((s) => s !== sleeper);
        resolve();
      }, { once: true });
    });
  }
  advance(ms: number): void {
    this.t += ms;
    const due = this.sleepers.filter((s) => s.until <= this.t);
    this.sleepers = this.sleepers.filter((s) => s.until > this.t);
    for (const s of due) s.resolve();
  }
  get sleeping(): number {
    return this.sleepers.length;
  }
}

/** Lets pending promise callbacks run (the supervisor loop is all promises). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A supervisor whose runs are driven by the test: each run waits for `runs[i]` to be settled. */
function harness(options: { random?: () => number; restartOnEnd?: boolean; resetAfterMs?: number; settleOnAbort?: boolean } = {}) {
  const clock = new FakeClock();
  const states: SupervisorState[] = [];
  const runs: { ctx: RunContext; result: Deferred<RunOutcome> }[] = [];
  const supervisor = new Supervisor({
    clock,
    random: options.random ?? (() => 0.5), // 0.5 = no jitter
    ...(options.restartOnEnd !== undefined ? { restartOnEnd: options.restartOnEnd } : {}),
    ...(options.resetAfterMs !== undefined ? { resetAfterMs: options.resetAfterMs } : {}),
    onStateChange: (s) => states.push(s),
    run: (ctx) => {
      const result = deferred<RunOutcome>();
      // A well-behaved task ends when aborted; tests that check stop() waiting settle it by hand.
      if (options.settleOnAbort ?? true) ctx.signal.addEventListener('abort', () => result.resolve('ended'), { once: true });
      runs.push({ ctx, result });
      return result.promise;
    },
  });
  const lastDelay = (): number => {
    const s = states.at(-1);
    assert.equal(s?.kind, 'backing-off', `expected backing-off, got ${JSON.stringify(s)}`);
    return (s as Extract<SupervisorState, { kind: 'backing-off' }>).delayMs;
  };
  /** Fails the current run, returns the chosen delay, and sleeps through it. */
  const failAndWait = async (): Promise<number> => {
    runs.at(-1)!.result.resolve('failed');
    await settle();
    const delay = lastDelay();
    clock.advance(delay);
    await settle();
    return delay;
  };
  return { clock, states, runs, supervisor, lastDelay, failAndWait };
}

describe('backoffDelayMs', () => {
  const opts = { initialDelayMs: 1000, maxDelayMs: 30_000, multiplier: 2, jitterRatio: 0.2 };

  test('doubles from 1 s and caps at 30 s without jitter (u = 0.5)', () => {
    const seq = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffDelayMs(n, 0.5, opts));
    assert.deepEqual(seq, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  });

  test('jitter stays within ±20 % of the base and never exceeds the cap', () => {
    const low = [1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelayMs(n, 0, opts));
    assert.deepEqual(low, [800, 1600, 3200, 6400, 12800, 24000, 24000]);
    const high = [1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelayMs(n, 0.999999, opts));
    assert.deepEqual(high, [1200, 2400, 4800, 9600, 19200, 30000, 30000]);
    for (let i = 0; i < 1000; i++) {
      const n = 1 + (i % 8);
      const base = Math.min(30_000, 1000 * 2 ** (n - 1));
      const d = backoffDelayMs(n, Math.random(), opts);
      assert.ok(d >= Math.floor(base * 0.8) && d <= Math.min(30_000, Math.ceil(base * 1.2)), `n=${n} d=${d}`);
    }
  });
});

describe('Supervisor', () => {
  test('reports connecting → running → backing-off, and retries with 1, 2, 4, … 30, 30 s', async () => {
    const h = harness();
    h.supervisor.start();
    await settle();
    assert.deepEqual(h.states, [{ kind: 'connecting', attempt: 1 }]);
    h.runs[0]!.ctx.reportRunning();
    assert.deepEqual(h.states.at(-1), { kind: 'running', attempt: 1 });
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) delays.push(await h.failAndWait());
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    assert.equal(h.runs.length, 8);
    assert.deepEqual(h.states.at(-1), { kind: 'connecting', attempt: 8 });
    const backoff = h.states.find((s) => s.kind === 'backing-off');
    assert.deepEqual(backoff, { kind: 'backing-off', attempt: 1, outcome: 'failed', delayMs: 1000 });
    await h.supervisor.stop();
  });

  test('jitter from the injected random source is applied to each delay', async () => {
    const h = harness({ random: () => 0 });
    h.supervisor.start();
    await settle();
    const delays = [await h.failAndWait(), await h.failAndWait(), await h.failAndWait()];
    assert.deepEqual(delays, [800, 1600, 3200]);
    await h.supervisor.stop();
  });

  test('the backoff resets after a run that stayed healthy longer than resetAfterMs', async () => {
    const h = harness({ resetAfterMs: 60_000 });
    h.supervisor.start();
    await settle();
    assert.deepEqual([await h.failAndWait(), await h.failAndWait(), await h.failAndWait()], [1000, 2000, 4000]);
    // Healthy for 61 s, then the camera drops: back to the initial delay.
    h.runs.at(-1)!.ctx.reportRunning();
    h.clock.advance(61_000);
    assert.equal(await h.failAndWait(), 1000);
    assert.equal(await h.failAndWait(), 2000);
    await h.supervisor.stop();
  });

  test('time spent connecting does not count as healthy', async () => {
    const h = harness({ resetAfterMs: 60_000 });
    h.supervisor.start();
    await settle();
    assert.deepEqual([await h.failAndWait(), await h.failAndWait()], [1000, 2000]);
    // 90 s trying to connect, healthy only for the last second: keeps growing.
    h.clock.advance(89_000);
    h.runs.at(-1)!.ctx.reportRunning();
    h.clock.advance(1_000);
    assert.equal(await h.failAndWait(), 4000);
    await h.supervisor.stop();
  });

  test('a run that never reports running is measured from its start', async () => {
    const h = harness({ resetAfterMs: 60_000 });
    h.supervisor.start();
    await settle();
    assert.deepEqual([await h.failAndWait(), await h.failAndWait()], [1000, 2000]);
    h.clock.advance(60_000);
    assert.equal(await h.failAndWait(), 1000);
    await h.supervisor.stop();
  });

  test('stop() during the backoff ends the loop without another run', async () => {
    const h = harness();
    h.supervisor.start();
    await settle();
    h.runs[0]!.result.resolve('failed');
    await settle();
    assert.equal(h.states.at(-1)?.kind, 'backing-off');
    assert.equal(h.clock.sleeping, 1);
    await h.supervisor.stop();
    assert.deepEqual(h.states.at(-1), { kind: 'stopped', reason: 'stop' });
    assert.equal(h.clock.sleeping, 0);
    h.clock.advance(60_000);
    await settle();
    assert.equal(h.runs.length, 1);
  });

  test('stop() during a run aborts its signal and waits until the run has settled', async () => {
    const h = harness({ settleOnAbort: false });
    h.supervisor.start();
    await settle();
    const run = h.runs[0]!;
    run.ctx.reportRunning();
    let stopped = false;
    const stopping = h.supervisor.stop().then(() => {
      stopped = true;
    });
    await settle();
    assert.equal(run.ctx.signal.aborted, true);
    assert.equal(stopped, false, 'stop() must wait for the run to finish its cleanup');
    run.result.resolve('ended');
    await stopping;
    assert.deepEqual(h.states.at(-1), { kind: 'stopped', reason: 'stop' });
    assert.equal(h.runs.length, 1);
    // A late reportRunning after abort does not resurrect the state.
    run.ctx.reportRunning();
    assert.deepEqual(h.states.at(-1), { kind: 'stopped', reason: 'stop' });
  });

  test('a rejected run counts as failed and carries the error', async () => {
    const h = harness();
    h.supervisor.start();
    await settle();
    const boom = new Error('connection refused');
    h.runs[0]!.result.reject(boom);
    await settle();
    assert.deepEqual(h.states.at(-1), { kind: 'backing-off', attempt: 1, outcome: 'failed', delayMs: 1000, error: boom });
    await h.supervisor.stop();
  });

  test("'ended' restarts by default but stops the supervisor with restartOnEnd: false", async () => {
    const restarting = harness();
    restarting.supervisor.start();
    await settle();
    restarting.runs[0]!.result.resolve('ended');
    await settle();
    assert.equal(restarting.states.at(-1)?.kind, 'backing-off');
    await restarting.supervisor.stop();

    const once = harness({ restartOnEnd: false });
    once.supervisor.start();
    await settle();
    once.runs[0]!.result.resolve('ended');
    await once.supervisor.whenStopped();
    assert.deepEqual(once.states.at(-1), { kind: 'stopped', reason: 'ended' });
    assert.equal(once.runs.length, 1);
  });

  test('stop() before start() and repeated start()/stop() are harmless', async () => {
    const h = harness();
    await h.supervisor.stop();
    assert.deepEqual(h.states, [{ kind: 'stopped', reason: 'stop' }]);
    h.supervisor.start();
    await settle();
    assert.equal(h.runs.length, 0);

    const g = harness({ settleOnAbort: false });
    g.supervisor.start();
    g.supervisor.start();
    await settle();
    assert.equal(g.runs.length, 1);
    const a = g.supervisor.stop();
    const b = g.supervisor.stop();
    g.runs[0]!.result.resolve('failed');
    await Promise.all([a, b]);
    assert.equal(g.supervisor.state.kind, 'stopped');
  });
});
