// Spawns the real `lva-edge run` daemon (bin/lva-edge.js) and the CLI for end-to-end tests and benches.
//
// - The daemon binds `--http 127.0.0.1:0` and prints `{"ready":true,"http":{"host","port"}}` on stdout
//   once listening; startDaemon resolves on that line and fails (with the captured stderr/stdout) when the
//   process exits first or the line does not come within `readyTimeoutMs`.
// - stop() is the graceful path (SIGTERM → resolves with the exit code, which tests assert is 0); kill()
//   is the crash path (default SIGKILL; the daemon's own descendants, e.g. ffmpeg, are SIGKILLed too so
//   a crash test leaves no orphans behind).
// - Every daemon started here is tracked; stopAllDaemons() is the after() safety net (it also removes the
//   data directories startDaemon made itself when no `dataDir` was given).
// - Environment: variables that would change the daemon's control plane (IoT Edge, token, default URL)
//   are removed from the inherited environment unless `env` sets them explicitly.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { listDescendantProcesses } from './processes.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(REPO_ROOT, 'bin', 'lva-edge.js');

export interface MethodReply {
  /** `status` of the reply body. */
  status: number;
  payload: any;
  /** HTTP status code of the response (the contract: equals `status`). */
  httpStatus: number;
  /** The whole parsed reply body. */
  body: any;
}

export interface StartDaemonOptions {
  dataDir?: string;
  /** Desired properties; written to a JSON file passed as `--config`. */
  config?: object;
  env?: Record<string, string>;
  /** Extra `run` arguments (appended; a repeated `--http` overrides the default). */
  args?: string[];
  /** `--http` value (default 127.0.0.1:0). */
  http?: string;
  readyTimeoutMs?: number;
}

export interface DaemonHandle {
  /** Base URL of the local API, e.g. http://127.0.0.1:40123 (a wildcard bind is reached via loopback). */
  url: string;
  host: string;
  port: number;
  pid: number;
  dataDir: string;
  /** POST /v1/methods/{method} with `payload` (a string is sent verbatim); adds the bearer token when the daemon has one. */
  call(method: string, payload?: unknown, opts?: { token?: string | null }): Promise<MethodReply>;
  /** Raw request against the local API (keep-alive agent). */
  request(method: string, urlPath: string, opts?: { body?: string | Buffer; headers?: Record<string, string> }): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }>;
  /** SIGTERM and wait: resolves with the exit code (128 + signal number when killed by a signal). */
  stop(timeoutMs?: number): Promise<number>;
  /** Sends `signal` (default SIGKILL) and waits for the exit; after SIGKILL the daemon's descendants are killed too. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
  stdout(): string;
}

const live = new Set<DaemonHandle>();
/** Data directories startDaemon created itself (no `dataDir` given); removed by stopAllDaemons(). */
const createdDirs = new Set<string>();

/** A fresh directory under os.tmpdir(). */
export function tempDir(prefix = 'lva-e2e-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** The inherited environment minus what would change the daemon's control plane, plus `env`. */
export function childEnv(env: Record<string, string> = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^IOTEDGE_/.test(k) || ['EdgeHubConnectionString', 'LVA_API_TOKEN', 'LVA_HTTP', 'LVA_URL'].includes(k)) continue;
    out[k] = v;
  }
  return { ...out, ...env };
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0);
}

export async function startDaemon(opts: StartDaemonOptions = {}): Promise<DaemonHandle> {
  let dataDir = opts.dataDir;
  if (dataDir === undefined) {
    dataDir = tempDir('lva-daemon-');
    createdDirs.add(dataDir);
  }
  const args = [CLI, 'run', '--http', opts.http ?? '127.0.0.1:0', '--data-dir', dataDir];
  let configDir: string | undefined;
  if (opts.config) {
    configDir = tempDir('lva-config-');
    const file = path.join(configDir, 'config.json');
    writeFileSync(file, JSON.stringify(opts.config));
    args.push('--config', file);
  }
  args.push(...(opts.args ?? []));
  const env = childEnv(opts.env);
  const token = env.LVA_API_TOKEN || undefined;
  const child: ChildProcess = spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (c: string) => {
    err += c;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      if (configDir) rmSync(configDir, { recursive: true, force: true });
      resolve({ code, signal });
    });
  });
  const timeoutMs = opts.readyTimeoutMs ?? 60_000;
  let ready: { host: string; port: number };
  try {
    ready = await new Promise<{ host: string; port: number }>((resolve, reject) => {
      let scanned = 0;
      const timer = setTimeout(() => reject(new Error(`daemon not ready after ${timeoutMs} ms`)), timeoutMs);
      child.stdout!.on('data', (c: string) => {
        out += c;
        let nl: number;
        while ((nl = out.indexOf('\n', scanned)) >= 0) {
          const line = out.slice(scanned, nl);
          scanned = nl + 1;
          if (!line.includes('"ready"')) continue;
          try {
            const v = JSON.parse(line);
            if (v?.ready === true && v.http && typeof v.http.port === 'number') {
              clearTimeout(timer);
              resolve(v.http);
              return;
            }
          } catch {
            // a log line that merely mentions "ready"
          }
        }
      });
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      void exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`daemon exited before ready (code ${code}, signal ${signal})`));
      });
    });
  } catch (e) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    throw new Error(`${(e as Error).message}\n--- stderr ---\n${err}\n--- stdout ---\n${out.slice(-4000)}`);
  }
  const connectHost = ready.host === '0.0.0.0' ? '127.0.0.1' : ready.host === '::' ? '::1' : ready.host;
  const hostInUrl = connectHost.includes(':') ? `[${connectHost}]` : connectHost;
  const url = `http://${hostInUrl}:${ready.port}`;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

  const request: DaemonHandle['request'] = (method, urlPath, ropts = {}) =>
    new Promise((resolve, reject) => {
      const body = ropts.body;
      const headers: Record<string, string | number> = { ...(ropts.headers ?? {}) };
      if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);
      const req = http.request(`${url}${urlPath}`, { method, agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });

  const handle: DaemonHandle = {
    url,
    host: ready.host,
    port: ready.port,
    pid: child.pid!,
    dataDir,
    exited,
    stderr: () => err,
    stdout: () => out,
    request,
    async call(method, payload = { '@apiVersion': '2.0' }, copts = {}) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      const t = copts.token === undefined ? token : copts.token;
      if (t) headers.authorization = `Bearer ${t}`;
      const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
      const r = await request('POST', `/v1/methods/${encodeURIComponent(method)}`, { body, headers });
      let parsed: any;
      try {
        parsed = JSON.parse(r.text);
      } catch {
        throw new Error(`${method}: HTTP ${r.status} with a non-JSON body: ${r.text.slice(0, 500)}`);
      }
      return { status: parsed?.status, payload: parsed?.payload, httpStatus: r.status, body: parsed };
    },
    async stop(stopTimeoutMs = 60_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const result = await Promise.race([
        exited,
        new Promise<null>((resolve) => {
          timer = setTimeout(() => resolve(null), stopTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
      agent.destroy();
      live.delete(handle);
      if (result === null) {
        await handle.kill('SIGKILL');
        throw new Error(`daemon did not stop within ${stopTimeoutMs} ms of SIGTERM\n--- stderr ---\n${err}`);
      }
      return exitCodeOf(result.code, result.signal);
    },
    async kill(signal = 'SIGKILL') {
      const descendants = signal === 'SIGKILL' ? listDescendantProcesses(child.pid!) : [];
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
      agent.destroy();
      live.delete(handle);
      for (const p of descendants) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    },
  };
  live.add(handle);
  return handle;
}

/**
 * Safety net for after() hooks: SIGKILLs every daemon this process started and has not stopped, and
 * removes the data directories startDaemon created itself.
 */
export async function stopAllDaemons(): Promise<void> {
  await Promise.all([...live].map((d) => d.kill('SIGKILL')));
  for (const d of createdDirs) rmSync(d, { recursive: true, force: true });
  createdDirs.clear();
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/lva-edge.js ...args` to completion (stdin: `input`, else empty). */
export function runCli(args: string[], opts: { input?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, env: childEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`lva-edge ${args.join(' ')}: no exit within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: exitCodeOf(code, signal), stdout, stderr });
    });
    child.stdin.on('error', () => {}); // the CLI may exit without reading stdin
    child.stdin.end(opts.input ?? '');
  });
}

/** Maps `fn` over `items` with at most `limit` running at once; results in input order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
