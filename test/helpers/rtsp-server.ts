// Starts the GStreamer RTSP test camera (test/fixtures/gst_rtsp_server.py) on a free loopback port.
//
//   const server = await startRtspServer({ file: await makeClip({ seconds: 4 }) });
//   after(() => server.stop());
//   server.url('/test')  → rtsp://127.0.0.1:PORT/test   (mounts: see the fixture's docstring)
//
// The server runs in its own process group under /usr/bin/python3; stop()/kill() signal the whole group
// (the /loop feeder ffmpeg included) and resolve once the server has been reaped. As further safety
// nets, the server exits when our end of its stdin closes (this process died), and any server still
// running when Node exits is SIGKILLed.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SPAWNED_BY_ENV } from '../../src/media/ffmpeg-process.js';
import { findFfmpeg, findFfprobe } from '../../src/util/executables.js';
import { freePort, freeUdpPort } from './ports.js';

export interface RtspServerOptions {
  /** Served once, in real time, on /file (.mp4/.mkv/.ts; H.264/H.265, optional AAC). */
  file?: string;
  /** MPEG-TS H.264 clip looped forever into /loop (makeClip({ container: 'ts', … })). */
  loopFile?: string;
  /** Size of the synthetic mounts (/test, /test265, /testav); default '640x360' to spare CPU. */
  size?: string;
  /** Frame rate of the synthetic mounts; default 30 (IDR every 2 s). */
  fps?: number;
  /**
   * Every mount requires these credentials (GstRtspServer's RTSPAuth: Basic, or Digest MD5 with
   * qop=auth). Handed to the server through its environment, never its command line (`ps` shows that).
   */
  auth?: { method: 'basic' | 'digest'; username: string; password: string };
}

export interface RtspTestServer {
  /** rtsp://127.0.0.1:PORT/MOUNT; `mount` with or without the leading '/'. */
  url(mount: string): string;
  /** Fixed for the server's lifetime, also across restart(). */
  readonly port: number;
  /** Pid of the running server (= its process group id), undefined while stopped. */
  readonly pid: number | undefined;
  /** SIGTERM to the group (SIGKILL after 5 s), resolves once reaped. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL to the group — an abrupt camera loss; resolves once reaped. */
  kill(): Promise<void>;
  /** Stops the server if running and starts it again on the same port (camera-drop tests). */
  restart(): Promise<void>;
}

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../fixtures/gst_rtsp_server.py', import.meta.url));
const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

function whenExited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

class BindError extends Error {}

/** Spawns one server process and waits for its READY line. */
function spawnServer(port: number, relayPort: number, opts: RtspServerOptions): Promise<ChildProcess> {
  const args = [
    SCRIPT, '--port', String(port), '--address', HOST, '--relay-port', String(relayPort),
    '--size', opts.size ?? '640x360', '--fps', String(opts.fps ?? 30),
    '--ffmpeg', findFfmpeg(), '--ffprobe', findFfprobe(), '--exit-on-stdin-eof',
    ...(opts.file ? ['--file', opts.file] : []),
    ...(opts.loopFile ? ['--loop-file', opts.loopFile] : []),
  ];
  const child = spawn(PYTHON, args, {
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
    // The marker lets leftover detection attribute the /loop feeder ffmpeg to this test process.
    env: {
      ...process.env,
      [SPAWNED_BY_ENV]: String(process.pid),
      ...(opts.auth ? { LVA_TEST_RTSP_AUTH: JSON.stringify(opts.auth) } : {}),
    },
  });
  running.add(child);
  child.once('exit', () => {
    running.delete(child);
    // Sweep the group right away (the feeder), while the group id cannot have been reused yet.
    if (child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // empty group
      }
    }
  });
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of running) killGroup(c, 'SIGKILL');
    });
  }
  child.stdin?.on('error', () => {});

  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      killGroup(child, 'SIGKILL');
      void whenExited(child).then(() => reject(err));
    };
    const timer = setTimeout(() => fail(new Error(`RTSP test server gave no READY within ${READY_TIMEOUT_MS} ms:\n${stderr}`)), READY_TIMEOUT_MS);
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      if (settled) return;
      stdout += chunk;
      if (/^READY /m.test(stdout)) {
        settled = true;
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      // Keep only the tail: GStreamer can be chatty over a long test.
      stderr = (stderr + chunk).slice(-8000);
    });
    child.once('error', (err) => fail(err));
    child.once('exit', (code, signal) => {
      const message = `RTSP test server exited before READY (code ${code}, signal ${signal}):\n${stderr}`;
      fail(code === 2 && /cannot listen/.test(stderr) ? new BindError(message) : new Error(message));
    });
  });
}

async function stopChild(child: ChildProcess | undefined, graceMs: number): Promise<void> {
  if (!child) return;
  child.stdin?.end();
  if (graceMs > 0) {
    killGroup(child, 'SIGTERM');
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
    await whenExited(child);
    clearTimeout(timer);
  } else {
    killGroup(child, 'SIGKILL');
    await whenExited(child);
  }
}

export async function startRtspServer(opts: RtspServerOptions = {}): Promise<RtspTestServer> {
  let port = 0;
  let relayPort = 0;
  let child: ChildProcess | undefined;
  // Another process can grab a "free" port before the server binds it: try a few fresh ports.
  for (let attempt = 1; ; attempt++) {
    port = await freePort(HOST);
    relayPort = await freeUdpPort(HOST);
    try {
      child = await spawnServer(port, relayPort, opts);
      break;
    } catch (err) {
      if (!(err instanceof BindError) || attempt >= 5) throw err;
    }
  }

  const server: RtspTestServer = {
    port,
    get pid() {
      return child && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
    },
    url(mount: string) {
      return `rtsp://${HOST}:${port}/${mount.replace(/^\/+/, '')}`;
    },
    async stop() {
      const current = child;
      child = undefined;
      await stopChild(current, STOP_GRACE_MS);
    },
    async kill() {
      const current = child;
      child = undefined;
      await stopChild(current, 0);
    },
    async restart() {
      await server.stop();
      // The same port must come back (clients reconnect to the URL they know). A just-closed listener
      // can take a moment to be released, so retry binding for a few seconds.
      for (let attempt = 1; ; attempt++) {
        try {
          child = await spawnServer(port, relayPort, opts);
          return;
        } catch (err) {
          if (!(err instanceof BindError) || attempt >= 25) throw err;
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
    },
  };
  return server;
}
