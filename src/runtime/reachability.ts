// A Supervisor clock whose backoff sleeps end early when a camera that was unreachable comes back.
//
// Why: exponential backoff alone makes a camera that returns after a 10 s reboot wait for the next
// retry (up to 30 s later), and a camera that flaps keeps the backoff long. Spawning ffmpeg every
// second instead would cost a process start per camera per second while it is away. A TCP connect to
// the camera's RTSP port is nearly free, so while backing off we probe it every `pollMs`; when a probe
// that failed is followed by one that succeeds, the camera's server has just come back and the sleep
// ends at once. A camera whose port answers all along (it refuses the stream: 404, 401…) keeps the
// normal backoff: only the transition unreachable → reachable wakes the supervisor, so a permanent
// protocol error never turns into a hot retry loop.
import { connect } from 'node:net';
import { systemClock, type SupervisorClock } from './supervisor.js';

export interface ReachabilityTarget {
  host: string;
  port: number;
}

export interface ReachabilityOptions {
  /** Interval between probes while sleeping (default 500 ms). */
  pollMs?: number;
  /** A probe that takes longer counts as unreachable (default 1000 ms). */
  connectTimeoutMs?: number;
  /** Injected for tests; default: a real TCP connect. */
  probe?: (target: ReachabilityTarget, timeoutMs: number) => Promise<boolean>;
  /** Base clock (default systemClock). */
  base?: SupervisorClock;
}

/** True when a TCP connection to `target` is accepted within `timeoutMs`; the socket is closed at once. */
export function tcpProbe(target: ReachabilityTarget, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: target.host, port: target.port });
    let settled = false;
    const done = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** host and port of an rtsp:// or rtsps:// URL (default ports 554 and 322); undefined if unparsable. */
export function rtspTarget(url: string): ReachabilityTarget | undefined {
  try {
    const u = new URL(url);
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    if (!host) return undefined;
    const port = u.port ? Number(u.port) : u.protocol === 'rtsps:' ? 322 : 554;
    return { host, port };
  } catch {
    return undefined;
  }
}

export function reachabilityWakingClock(target: ReachabilityTarget, options: ReachabilityOptions = {}): SupervisorClock {
  const base = options.base ?? systemClock;
  const pollMs = options.pollMs ?? 500;
  const connectTimeoutMs = options.connectTimeoutMs ?? 1000;
  const probe = options.probe ?? tcpProbe;
  return {
    now: () => base.now(),
    sleep(ms, signal) {
      if (ms <= pollMs || signal.aborted) return base.sleep(ms, signal);
      // One controller ends both the base sleep and the probe loop, whichever finishes first.
      const local = new AbortController();
      const onAbort = (): void => local.abort();
      signal.addEventListener('abort', onAbort, { once: true });
      const probing = (async () => {
        let sawUnreachable = false;
        while (!local.signal.aborted) {
          const reachable = await probe(target, connectTimeoutMs);
          if (local.signal.aborted) return;
          if (reachable) {
            if (sawUnreachable) return; // the camera's server is back: retry now
            return new Promise<void>(() => {}); // answering all along: plain backoff (never wakes)
          }
          sawUnreachable = true;
          await base.sleep(pollMs, local.signal);
        }
      })();
      return Promise.race([base.sleep(ms, local.signal), probing]).finally(() => {
        local.abort();
        signal.removeEventListener('abort', onAbort);
      });
    },
  };
}
