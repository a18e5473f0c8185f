// FfmpegProcess owns exactly one child process (ffmpeg, or any command in tests) from spawn to reap.
//
// Why this much ceremony: orphaned, hung and zombie ffmpeg processes are the most common operational
// complaint about NVRs built on ffmpeg (peers.md §3 item 6). The rules applied here:
//   - spawn without a shell, `detached: true`, so the child leads its own process group; every signal
//     goes to the whole group (-pid), which also reaches anything the child spawned;
//   - a progress watchdog: no output bytes for `stallTimeoutMs` → terminate (reason 'stall'), because a
//     hung RTSP pull never exits by itself;
//   - stop = SIGTERM (+ SIGCONT, so a stopped process can act on it) → after a grace period SIGKILL to
//     the group → resolve only once the child has been reaped (the 'exit' event is Node's waitpid);
//   - the stderr tail is kept for diagnostics, with credentials redacted from every line;
//   - a module-level registry of live children, swept with SIGKILL when Node exits, and inspectable by
//     tests and /healthz.
// Restarting is not this class's job: a Supervisor (runtime/supervisor.ts) decides when to spawn again.
//
// SIGTERM rather than 'q' on stdin: ffmpeg treats SIGTERM like 'q' (it finishes the muxer and writes the
// trailer), SIGTERM also works for arbitrary commands, and neither reaches a truly hung process — that is
// what the SIGKILL escalation is for.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { findFfmpeg } from '../util/executables.js';

export type FfmpegExitReason =
  /** The child exited by itself (any exit code or signal not caused by us). */
  | 'exit'
  /** The progress watchdog saw no output for `stallTimeoutMs` and terminated the child. */
  | 'stall'
  /** stop()/kill() was called. */
  | 'killed'
  /** The child could not be started (binary missing, not executable, bad arguments). */
  | 'spawn-error';

export interface FfmpegExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  reason: FfmpegExitReason;
  /** Last stderr lines (redacted), oldest first. For 'spawn-error' it holds the error message. */
  stderrTail: string[];
  /** The spawn error, for reason 'spawn-error' only. */
  error?: Error;
}

export interface FfmpegProcessOptions {
  /** Arguments after the command. Passed as-is, never through a shell. */
  args: readonly string[];
  /** Executable; defaults to findFfmpeg(). Tests pass e.g. '/bin/sh'. */
  command?: string;
  /** 'ignore' (default; /dev/null — pass `-nostdin` to ffmpeg too) or 'pipe' to feed input via `stdin`. */
  stdin?: 'ignore' | 'pipe';
  /** 'pipe' (default) exposes `stdout`; 'ignore' when ffmpeg writes to files. */
  stdout?: 'pipe' | 'ignore';
  /** Open fd 3 as a second output pipe (ffmpeg output `pipe:3`), exposed as `extraOutput`. */
  extraOutput?: boolean;
  /** Open this many output pipes from fd 3 on (`pipe:3`, `pipe:4`, …), exposed as `extraOutputs`;
   * overrides `extraOutput`. */
  extraOutputCount?: number;
  /** How many stderr lines to keep (default 50). */
  stderrLines?: number;
  /**
   * Applied to every stderr line (after the built-in URL-credential redaction, which always runs) before
   * it is stored or handed to onStderrLine. Use it for secrets that are not URL userinfo.
   */
  redact?: (line: string) => string;
  /** Called with each redacted stderr line, e.g. for logging. Must not throw. */
  onStderrLine?: (line: string) => void;
  /**
   * Progress watchdog: terminate with reason 'stall' when neither stdout nor the extra output produced a
   * byte for this long (measured from spawn, so it also bounds connection time). Unset or 0: off.
   * An unread stdout counts as stalled: once pipe buffers fill, ffmpeg blocks and stops producing.
   * Children writing to files can feed the watchdog with markProgress().
   */
  stallTimeoutMs?: number;
  /** Grace between SIGTERM and SIGKILL for stop() without argument and for the watchdog (default 3000). */
  stopGraceMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * Marker put into every child's environment so leftover detection (test/helpers/processes.ts) can
 * attribute a child to this Node process even after it was re-parented to init.
 */
export const SPAWNED_BY_ENV = 'LVA_EDGE_SPAWNED_BY';

const DEFAULT_STDERR_LINES = 50;
const DEFAULT_STOP_GRACE_MS = 3000;
/** After the child is reaped, how long to wait for its pipes to drain before resolving anyway
 * (a grandchild that escaped the group could hold them open forever). */
const PIPE_DRAIN_TIMEOUT_MS = 1000;
/** A stderr "line" longer than this without a newline is cut, so a child cannot grow memory unbounded. */
const MAX_STDERR_LINE = 4096;

// userinfo with a password: scheme://user:password@  → scheme://user:***@
// The password part is greedy up to the last '@' of the authority, so unescaped '@' in passwords are covered.
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@:'"]*):([^\s/?#'"]*)@/gi;

/** Replaces the password in every `scheme://user:password@` occurrence with `***`. */
export function redactUrlCredentials(line: string): string {
  return line.replace(URL_CREDENTIALS, '$1$2:***@');
}

/** Live (spawned and not yet fully reaped) children → a synchronous group SIGKILL. */
const live = new Map<FfmpegProcess, () => void>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous; process.kill is. Children are in their own groups, so without
  // this sweep they would survive Node (a terminal's Ctrl-C does not reach them either).
  process.on('exit', () => {
    killAllFfmpegProcessesSync();
  });
}

/** Snapshot of the children that are running or not yet reaped. */
export function liveFfmpegProcesses(): FfmpegProcess[] {
  return [...live.keys()];
}

export function liveFfmpegProcessCount(): number {
  return live.size;
}

/**
 * SIGKILLs the process group of every live child, synchronously; returns how many were signalled.
 * Runs automatically on process 'exit'; call it from fatal-signal handlers (Node's default SIGTERM/SIGINT
 * action skips 'exit' handlers).
 */
export function killAllFfmpegProcessesSync(): number {
  let n = 0;
  for (const killGroup of live.values()) {
    killGroup();
    n++;
  }
  return n;
}

function quoteArg(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export class FfmpegProcess {
  /** Process id (= process group id); undefined when the spawn failed. */
  readonly pid: number | undefined;
  /** The child's stdout (null with `stdout: 'ignore'` or after a spawn error). Consume it. */
  readonly stdout: Readable | null = null;
  /** fd 3 of the child (null unless `extraOutput: true` or `extraOutputCount` ≥ 1). */
  readonly extraOutput: Readable | null = null;
  /** fds 3, 4, … of the child (`extraOutputCount` of them). */
  readonly extraOutputs: Readable[] = [];
  /** The child's stdin (null unless `stdin: 'pipe'`). */
  readonly stdin: Writable | null = null;
  /** Resolves once, when the child has been reaped (or failed to spawn). Never rejects. */
  readonly exited: Promise<FfmpegExit>;
  /** Command line for logs, with credentials redacted. */
  readonly commandLine: string;

  private resolveExited!: (exit: FfmpegExit) => void;
  private result: FfmpegExit | undefined;
  private readonly stderrCapacity: number;
  private readonly stderrRing: string[] = [];
  private stderrPartial = '';
  private readonly redactLine: (line: string) => string;
  private readonly onStderrLine: ((line: string) => void) | undefined;
  private readonly stallTimeoutMs: number;
  private readonly stopGraceMs: number;
  private lastProgressAt = performance.now();
  private watchdogTimer: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  /** Set once termination was started by us; decides the reported reason. */
  private terminationReason: 'stall' | 'killed' | undefined;
  private terminating = false;
  /** After the leader was reaped its pid may be reused, so no further signals are sent. */
  private reaped = false;
  private exitStatus: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(options: FfmpegProcessOptions) {
    this.exited = new Promise<FfmpegExit>((resolve) => {
      this.resolveExited = resolve;
    });
    const userRedact = options.redact;
    this.redactLine = userRedact ? (l) => userRedact(redactUrlCredentials(l)) : redactUrlCredentials;
    this.onStderrLine = options.onStderrLine;
    this.stderrCapacity = Math.max(1, options.stderrLines ?? DEFAULT_STDERR_LINES);
    this.stallTimeoutMs = options.stallTimeoutMs ?? 0;
    this.stopGraceMs = options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;

    let command: string;
    try {
      command = options.command ?? findFfmpeg();
    } catch (err) {
      this.commandLine = this.redactLine(['ffmpeg', ...options.args].map(quoteArg).join(' '));
      this.finishWithSpawnError(err);
      return;
    }
    this.commandLine = this.redactLine([command, ...options.args].map(quoteArg).join(' '));

    const stdio: StdioOptions = [
      options.stdin ?? 'ignore',
      options.stdout ?? 'pipe',
      'pipe',
      ...Array.from({ length: options.extraOutputCount ?? (options.extraOutput ? 1 : 0) }, () => 'pipe' as const),
    ];
    let child: ChildProcess;
    try {
      child = spawn(command, [...options.args], {
        detached: true,
        stdio,
        cwd: options.cwd,
        env: { ...(options.env ?? process.env), [SPAWNED_BY_ENV]: String(process.pid) },
      });
    } catch (err) {
      // Synchronous spawn failures (e.g. a NUL byte in an argument).
      this.finishWithSpawnError(err);
      return;
    }

    child.on('error', (err) => {
      // Without a pid the spawn itself failed (ENOENT, EACCES…); other 'error's (a failed kill) are
      // irrelevant because termination always escalates to a group SIGKILL.
      if (child.pid === undefined) this.finishWithSpawnError(err);
    });
    if (child.pid === undefined) return; // the 'error' event follows

    this.pid = child.pid;
    installExitHook();
    const pid = child.pid;
    live.set(this, () => {
      if (!this.reaped) signalGroup(pid, 'SIGKILL');
    });

    if (child.stdout) {
      const out = new PassThrough();
      child.stdout.on('data', () => this.markProgress());
      child.stdout.on('error', () => {});
      child.stdout.pipe(out);
      this.stdout = out;
    }
    for (let fd = 3; fd < stdio.length; fd++) {
      const pipe = child.stdio[fd];
      if (!pipe || !('read' in pipe)) continue;
      const out = new PassThrough();
      pipe.on('data', () => this.markProgress());
      pipe.on('error', () => {});
      pipe.pipe(out);
      this.extraOutputs.push(out);
    }
    this.extraOutput = this.extraOutputs[0] ?? null;
    if (child.stdin) {
      child.stdin.on('error', () => {}); // EPIPE once the child is gone
      this.stdin = child.stdin;
    }
    if (child.stderr) {
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk: string) => this.onStderrChunk(chunk));
      child.stderr.on('error', () => {});
    }

    child.on('exit', (code, signal) => {
      this.exitStatus = { code, signal };
      // Sweep whatever the leader left in its group (e.g. a shell's background job), then stop signalling:
      // from now on the pid can be reused by an unrelated process.
      signalGroup(pid, 'SIGKILL');
      this.reaped = true;
      this.clearTimers();
      this.drainTimer = setTimeout(() => this.finishReaped(), PIPE_DRAIN_TIMEOUT_MS);
    });
    child.on('close', (code, signal) => {
      this.exitStatus ??= { code, signal };
      this.reaped = true;
      this.finishReaped();
    });

    if (this.stallTimeoutMs > 0) this.armWatchdog(this.stallTimeoutMs);
  }

  /** The exit result once known (synchronous peek), else undefined. */
  get exitResult(): FfmpegExit | undefined {
    return this.result;
  }

  /** Snapshot of the redacted stderr tail so far. */
  stderrTail(): string[] {
    return [...this.stderrRing];
  }

  /** Tells the watchdog the child is making progress (for children whose output is not a pipe). */
  markProgress(): void {
    this.lastProgressAt = performance.now();
  }

  /**
   * Terminates the child: SIGTERM (and SIGCONT) to its group, SIGKILL after `graceMs`; resolves when it
   * has been reaped. `graceMs` 0 kills at once. Safe to call repeatedly and after the child exited.
   */
  stop(graceMs: number = this.stopGraceMs): Promise<FfmpegExit> {
    if (this.result === undefined && !this.reaped && this.pid !== undefined) {
      this.terminationReason ??= 'killed';
      this.terminate(graceMs);
    }
    return this.exited;
  }

  /** stop(0): SIGKILL to the group now. */
  kill(): Promise<FfmpegExit> {
    return this.stop(0);
  }

  private terminate(graceMs: number): void {
    const pid = this.pid;
    if (pid === undefined || this.reaped) return;
    this.stopWatchdog();
    if (graceMs <= 0) {
      signalGroup(pid, 'SIGKILL');
      return;
    }
    if (this.terminating) return; // already escalating on an earlier grace timer
    this.terminating = true;
    signalGroup(pid, 'SIGTERM');
    // A stopped process (SIGSTOP, or T state under a debugger) only handles SIGTERM once continued.
    signalGroup(pid, 'SIGCONT');
    this.killTimer = setTimeout(() => {
      if (!this.reaped) signalGroup(pid, 'SIGKILL');
    }, graceMs);
  }

  private armWatchdog(delayMs: number): void {
    this.watchdogTimer = setTimeout(() => this.checkProgress(), delayMs);
    // The child and its pipes keep the event loop alive; the watchdog alone must not.
    this.watchdogTimer.unref();
  }

  // One timer re-armed for the remaining time, instead of resetting a timer on every chunk.
  private checkProgress(): void {
    this.watchdogTimer = undefined;
    if (this.reaped || this.result) return;
    const idleMs = performance.now() - this.lastProgressAt;
    if (idleMs >= this.stallTimeoutMs) {
      this.terminationReason ??= 'stall';
      this.terminate(this.stopGraceMs);
    } else {
      this.armWatchdog(this.stallTimeoutMs - idleMs);
    }
  }

  private stopWatchdog(): void {
    if (this.watchdogTimer) clearTimeout(this.watchdogTimer);
    this.watchdogTimer = undefined;
  }

  private clearTimers(): void {
    this.stopWatchdog();
    if (this.killTimer) clearTimeout(this.killTimer);
    this.killTimer = undefined;
  }

  private onStderrChunk(chunk: string): void {
    // ffmpeg ends progress lines with '\r', so both '\r' and '\n' terminate a line.
    const parts = (this.stderrPartial + chunk).split(/\r\n|\r|\n/);
    this.stderrPartial = parts.pop() ?? '';
    for (const part of parts) this.pushStderrLine(part);
    if (this.stderrPartial.length > MAX_STDERR_LINE) {
      this.pushStderrLine(this.stderrPartial.slice(0, MAX_STDERR_LINE));
      this.stderrPartial = '';
    }
  }

  private pushStderrLine(raw: string): void {
    if (raw.length === 0) return;
    const line = this.redactLine(raw);
    this.stderrRing.push(line);
    if (this.stderrRing.length > this.stderrCapacity) this.stderrRing.shift();
    this.onStderrLine?.(line);
  }

  private finishReaped(): void {
    if (this.result) return;
    if (this.drainTimer) clearTimeout(this.drainTimer);
    if (this.stderrPartial) {
      this.pushStderrLine(this.stderrPartial);
      this.stderrPartial = '';
    }
    const status = this.exitStatus ?? { code: null, signal: null };
    this.finish({ code: status.code, signal: status.signal, reason: this.terminationReason ?? 'exit', stderrTail: this.stderrTail() });
  }

  private finishWithSpawnError(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    this.finish({ code: null, signal: null, reason: 'spawn-error', stderrTail: [this.redactLine(error.message)], error });
  }

  private finish(result: FfmpegExit): void {
    if (this.result) return;
    this.result = result;
    this.clearTimers();
    live.delete(this);
    this.resolveExited(result);
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already empty.
  }
}
