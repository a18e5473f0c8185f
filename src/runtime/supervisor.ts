// Supervisor: runs a "run once" task (connect, stream until it ends or fails) again and again, with capped
// exponential backoff and jitter between attempts — MediaMTX's static-source pattern. The task knows how
// to connect; the supervisor alone knows when to try again, so reconnect policy lives in one place.
//
// States (reported through onStateChange):
//   idle        constructed, start() not called yet
//   connecting  a run has started and has not reported itself healthy yet
//   running     the run called ctx.reportRunning() (e.g. first packet received)
//   backing-off waiting `delayMs` before the next run, after `outcome`
//   stopped     stop() was called, or a run ended with restartOnEnd=false; terminal
//
// Backoff: the n-th consecutive unhealthy run waits min(max, initial * multiplier^(n-1)), jittered by
// ±jitterRatio (then capped at max again). A run that stayed healthy for at least `resetAfterMs` resets
// the sequence, so a camera that drops once a day reconnects after `initial`, not after `max`.

export type RunOutcome = 'ended' | 'failed';

export interface RunContext {
  /** Aborted by stop(); the task must settle promptly once it fires (kill its child, close sockets). */
  signal: AbortSignal;
  /** 1 for the first run, counting every run since start(). */
  attempt: number;
  /** Marks the run healthy ("connected"); healthy time counts towards the backoff reset. */
  reportRunning(): void;
}

export type SupervisorState =
  | { kind: 'idle' }
  | { kind: 'connecting'; attempt: number }
  | { kind: 'running'; attempt: number }
  | { kind: 'backing-off'; attempt: number; outcome: RunOutcome; delayMs: number; error?: unknown }
  | { kind: 'stopped'; reason: 'stop' | 'ended' };

/** Time source and abortable sleep; inject a fake in unit tests. */
export interface SupervisorClock {
  /** Monotonic milliseconds. */
  now(): number;
  /** Resolves after `ms`, or early (without rejecting) when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export interface SupervisorOptions {
  /** One attempt. Resolve 'ended' (stream finished) or 'failed'; a rejection counts as 'failed'. */
  run: (ctx: RunContext) => Promise<RunOutcome>;
  /** First delay (default 1000 ms). */
  initialDelayMs?: number;
  /** Cap (default 30000 ms). */
  maxDelayMs?: number;
  /** Growth per consecutive failure (default 2). */
  multiplier?: number;
  /** Delay is scaled by a uniform factor in [1 - r, 1 + r] (default 0.2), then capped at maxDelayMs. */
  jitterRatio?: number;
  /**
   * A run that was healthy this long resets the backoff (default 30000 ms). Healthy time is measured from
   * ctx.reportRunning(), or from the start of the run for tasks that never call it.
   */
  resetAfterMs?: number;
  /** Restart after 'ended' too (default true: a live camera that closes the stream is reconnected).
   * false: 'ended' stops the supervisor (replaying a file). */
  restartOnEnd?: boolean;
  onStateChange?: (state: SupervisorState) => void;
  clock?: SupervisorClock;
  /** Uniform [0, 1) source for jitter (default Math.random). */
  random?: () => number;
}

export const systemClock: SupervisorClock = {
  now: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    }),
};

/**
 * Pure backoff rule: delay before the next run after `consecutiveFailures` (≥ 1) unhealthy runs, given a
 * uniform random `u` in [0, 1).
 */
export function backoffDelayMs(
  consecutiveFailures: number,
  u: number,
  opts: { initialDelayMs: number; maxDelayMs: number; multiplier: number; jitterRatio: number },
): number {
  const exponent = Math.max(0, consecutiveFailures - 1);
  const base = Math.min(opts.maxDelayMs, opts.initialDelayMs * opts.multiplier ** exponent);
  const jittered = base * (1 - opts.jitterRatio + 2 * opts.jitterRatio * u);
  return Math.max(0, Math.min(opts.maxDelayMs, Math.round(jittered)));
}

export class Supervisor {
  private readonly opts: Required<Omit<SupervisorOptions, 'onStateChange'>> & Pick<SupervisorOptions, 'onStateChange'>;
  private currentState: SupervisorState = { kind: 'idle' };
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(options: SupervisorOptions) {
    this.opts = {
      initialDelayMs: 1000,
      maxDelayMs: 30_000,
      multiplier: 2,
      jitterRatio: 0.2,
      resetAfterMs: 30_000,
      restartOnEnd: true,
      clock: systemClock,
      random: Math.random,
      ...options,
    };
  }

  get state(): SupervisorState {
    return this.currentState;
  }

  /** Starts the loop (first run immediately). Idempotent. */
  start(): void {
    if (this.loop || this.abort.signal.aborted) return;
    this.loop = this.runLoop();
  }

  /** Aborts the current run or backoff and resolves once the run has settled. Idempotent. */
  async stop(): Promise<void> {
    this.abort.abort();
    if (this.loop) await this.loop;
    else this.setState({ kind: 'stopped', reason: 'stop' });
  }

  /** Resolves when the loop has finished (after stop(), or an 'ended' run with restartOnEnd=false). */
  async whenStopped(): Promise<void> {
    if (this.loop) await this.loop;
  }

  private async runLoop(): Promise<void> {
    const { clock } = this.opts;
    const signal = this.abort.signal;
    let attempt = 0;
    let consecutiveFailures = 0;
    while (!signal.aborted) {
      attempt++;
      const startedAt = clock.now();
      let healthySince: number | undefined;
      const runAttempt = attempt;
      this.setState({ kind: 'connecting', attempt: runAttempt });
      const ctx: RunContext = {
        signal,
        attempt: runAttempt,
        reportRunning: () => {
          if (healthySince !== undefined || signal.aborted) return;
          healthySince = clock.now();
          this.setState({ kind: 'running', attempt: runAttempt });
        },
      };
      let outcome: RunOutcome;
      let error: unknown;
      try {
        outcome = await this.opts.run(ctx);
      } catch (err) {
        outcome = 'failed';
        error = err;
      }
      if (signal.aborted) break;
      if (outcome === 'ended' && !this.opts.restartOnEnd) {
        this.setState({ kind: 'stopped', reason: 'ended' });
        return;
      }
      const healthyMs = clock.now() - (healthySince ?? startedAt);
      consecutiveFailures = healthyMs >= this.opts.resetAfterMs ? 1 : consecutiveFailures + 1;
      const delayMs = backoffDelayMs(consecutiveFailures, this.opts.random(), this.opts);
      this.setState({ kind: 'backing-off', attempt: runAttempt, outcome, delayMs, ...(error !== undefined ? { error } : {}) });
      await clock.sleep(delayMs, signal);
    }
    this.setState({ kind: 'stopped', reason: 'stop' });
  }

  private setState(state: SupervisorState): void {
    this.currentState = state;
    try {
      this.opts.onStateChange?.(state);
    } catch (err) {
      // A throwing listener is a bug in the caller; surface it without corrupting the restart loop.
      queueMicrotask(() => {
        throw err;
      });
    }
  }
}
