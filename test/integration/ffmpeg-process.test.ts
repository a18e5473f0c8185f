// FfmpegProcess against real children: a clean ffmpeg run, a failing one, a hung one, one that ignores
// SIGTERM, and a Node process that exits with a child still running. Deadlines below only guard
// against hangs; nothing asserts on elapsed time.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { FfmpegProcess, liveFfmpegProcessCount, liveFfmpegProcesses, type FfmpegExit } from '../../src/media/ffmpeg-process.js';
import { assertNoLeftoverFfmpeg, listFfmpegPids, readProcessTable } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';

const DEADLINE_MS = 30_000;

function withDeadline<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`deadline exceeded: ${what}`)), DEADLINE_MS);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

function collect(stream: Readable | null): Promise<Buffer> {
  assert.ok(stream, 'expected a stream');
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve, reject) => {
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

function firstData(stream: Readable | null): Promise<Buffer> {
  assert.ok(stream, 'expected a stream');
  return once(stream, 'data').then(([chunk]) => chunk as Buffer);
}

function processExists(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

/** Running (not a zombie). A killed orphan stays a zombie until init reaps it, which is not our job. */
function isAlive(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** SIGKILL is asynchronous for processes we do not reap; give the kernel a moment. */
async function waitUntilDead(pids: number[]): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (pids.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

function groupMembers(pgid: number): number[] {
  return readProcessTable()
    .filter((p) => p.pgid === pgid)
    .map((p) => p.pid);
}

const rawGrayFrames = (frames: number) => [
  '-nostdin', '-hide_banner', '-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=10',
  '-frames:v', String(frames), '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1',
];

describe('FfmpegProcess', () => {
  after(async () => {
    await assertNoLeftoverFfmpeg();
  });

  test('a normal run streams stdout, exits 0 with reason "exit" and leaves the registry', async () => {
    const proc = new FfmpegProcess({ args: rawGrayFrames(5) });
    assert.ok(proc.pid !== undefined);
    assert.ok(liveFfmpegProcesses().includes(proc));
    const [bytes, exit] = await withDeadline(Promise.all([collect(proc.stdout), proc.exited]), 'normal exit');
    assert.equal(bytes.length, 5 * 64 * 48);
    assert.deepEqual({ code: exit.code, signal: exit.signal, reason: exit.reason }, { code: 0, signal: null, reason: 'exit' });
    assert.ok(!liveFfmpegProcesses().includes(proc));
    assert.equal(processExists(proc.pid), false);
  });

  test('a failing child reports its exit code and the stderr tail', async () => {
    const proc = new FfmpegProcess({ args: ['-nostdin', '-hide_banner', '-i', '/nonexistent/input.mp4', '-f', 'null', '-'] });
    const exit = await withDeadline(proc.exited, 'failing child');
    assert.equal(exit.reason, 'exit');
    assert.notEqual(exit.code, 0);
    assert.ok(exit.code !== null);
    assert.ok(exit.stderrTail.some((l) => l.includes('No such file or directory')), exit.stderrTail.join('\n'));
  });

  test('a child that cannot be spawned is reported through exited, not thrown', async () => {
    const proc = new FfmpegProcess({ command: '/nonexistent/bin/ffmpeg', args: ['-version'] });
    const exit = await withDeadline(proc.exited, 'spawn error');
    assert.equal(proc.pid, undefined);
    assert.equal(exit.reason, 'spawn-error');
    assert.ok(exit.error instanceof Error);
    assert.match(exit.stderrTail.join('\n'), /ENOENT/);
    assert.equal(liveFfmpegProcesses().includes(proc), false);
    // stop() on a never-started child is a no-op returning the same result.
    assert.equal(await proc.stop(), exit);
  });

  test('the stderr ring keeps only the last N lines', async () => {
    const proc = new FfmpegProcess({
      command: '/bin/sh',
      args: ['-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do echo "line $i" >&2; done; printf "partial" >&2'],
      stderrLines: 3,
    });
    const exit = await withDeadline(proc.exited, 'stderr ring');
    assert.deepEqual(exit.stderrTail, ['line 9', 'line 10', 'partial']);
  });

  test('a second output on fd 3 delivers bytes alongside stdout', async () => {
    const proc = new FfmpegProcess({
      args: [
        '-nostdin', '-hide_banner', '-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=10',
        // Output options apply per output, so each one gets its own frame limit.
        '-map', '0:v', '-frames:v', '3', '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1',
        '-map', '0:v', '-frames:v', '3', '-vf', 'scale=32:24', '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:3',
      ],
      extraOutput: true,
    });
    const [main, extra, exit] = await withDeadline(
      Promise.all([collect(proc.stdout), collect(proc.extraOutput), proc.exited]),
      'two outputs',
    );
    assert.equal(exit.code, 0, exit.stderrTail.join('\n'));
    assert.equal(main.length, 3 * 64 * 48);
    assert.equal(extra.length, 3 * 32 * 24);
  });

  test('watchdog: a hung (SIGSTOPped) ffmpeg is killed with reason "stall" and reaped', async () => {
    const proc = new FfmpegProcess({
      args: ['-nostdin', '-hide_banner', '-re', '-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=10', '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1'],
      stallTimeoutMs: 1000,
      stopGraceMs: 1000,
    });
    const pid = proc.pid;
    assert.ok(pid !== undefined);
    const bytes = collect(proc.stdout);
    await withDeadline(firstData(proc.stdout), 'first frame');
    assert.ok(listFfmpegPids().includes(pid));
    process.kill(pid, 'SIGSTOP'); // simulates ffmpeg stuck in a read that never returns
    const exit = await withDeadline(proc.exited, 'stall kill');
    assert.equal(exit.reason, 'stall');
    assert.ok(exit.signal !== null || exit.code !== 0, `expected a termination, got ${JSON.stringify(exit)}`);
    assert.ok((await bytes).length > 0);
    assert.equal(processExists(pid), false);
    await waitUntilDead(groupMembers(pid));
    assert.deepEqual(groupMembers(pid).filter(isAlive), []);
    assert.ok(!listFfmpegPids().includes(pid));
  });

  test('watchdog: a child that never writes is killed with reason "stall"', async () => {
    const proc = new FfmpegProcess({ command: '/bin/sh', args: ['-c', 'exec sleep 100'], stallTimeoutMs: 500, stopGraceMs: 500 });
    const exit = await withDeadline(proc.exited, 'silent child');
    assert.equal(exit.reason, 'stall');
    assert.equal(exit.signal, 'SIGTERM');
  });

  test('markProgress keeps the watchdog quiet for a child that makes progress elsewhere', async () => {
    // The child runs ~1.5 s with a 400 ms watchdog and no output; we feed progress every 50 ms.
    const proc = new FfmpegProcess({ command: '/bin/sh', args: ['-c', 'sleep 1.5'], stallTimeoutMs: 400 });
    const feeder = setInterval(() => proc.markProgress(), 50);
    const exit = await withDeadline(proc.exited, 'progress via markProgress').finally(() => clearInterval(feeder));
    assert.deepEqual({ reason: exit.reason, code: exit.code }, { reason: 'exit', code: 0 });
  });

  test('stop(): a child ignoring SIGTERM is SIGKILLed after the grace, with its whole group', async () => {
    // The shell ignores TERM (so does its background sleep, which inherits the disposition), prints the
    // sleep's pid once the trap is in place, and waits.
    const proc = new FfmpegProcess({ command: '/bin/sh', args: ['-c', 'trap "" TERM; sleep 100 & echo $!; wait'] });
    const pid = proc.pid;
    assert.ok(pid !== undefined);
    const grandchild = Number((await withDeadline(firstData(proc.stdout), 'ready line')).toString().trim());
    assert.ok(grandchild > 0 && processExists(grandchild));
    const exit = await withDeadline(proc.stop(300), 'stop with grace');
    assert.deepEqual({ reason: exit.reason, signal: exit.signal }, { reason: 'killed', signal: 'SIGKILL' });
    assert.equal(processExists(pid), false);
    await waitUntilDead([grandchild]);
    assert.equal(isAlive(grandchild), false, 'the background child in the group must be killed too');
  });

  test('stop(): ffmpeg ends on SIGTERM within the grace with reason "killed"', async () => {
    const proc = new FfmpegProcess({
      args: ['-nostdin', '-hide_banner', '-re', '-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=10', '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1'],
    });
    void collect(proc.stdout);
    await withDeadline(firstData(proc.stdout), 'first frame');
    const exit = await withDeadline(proc.stop(20_000), 'graceful stop');
    assert.equal(exit.reason, 'killed');
    assert.notEqual(exit.signal, 'SIGKILL', 'ffmpeg handles SIGTERM itself');
  });

  test('stop() on an already exited child resolves to the original result', async () => {
    const proc = new FfmpegProcess({ args: rawGrayFrames(1) });
    void collect(proc.stdout);
    const exit = await withDeadline(proc.exited, 'short run');
    const again: FfmpegExit = await withDeadline(proc.stop(), 'stop after exit');
    assert.equal(again, exit);
    assert.equal(again.reason, 'exit');
    assert.equal(await proc.kill(), exit);
  });

  test('passwords in URLs never reach the stderr tail, the callback or the command line', async () => {
    const port = await freePort(); // closed port: ffmpeg fails fast and prints the URL
    const url = `rtsp://admin:s3cr%40t@127.0.0.1:${port}/stream`;
    const seen: string[] = [];
    const proc = new FfmpegProcess({
      args: ['-nostdin', '-hide_banner', '-rtsp_transport', 'tcp', '-i', url, '-f', 'null', '-'],
      onStderrLine: (l) => seen.push(l),
      redact: (l) => l.replaceAll('admin', '<user>'),
    });
    const exit = await withDeadline(proc.exited, 'refused connection');
    assert.notEqual(exit.code, 0);
    const all = [...exit.stderrTail, ...seen, proc.commandLine].join('\n');
    assert.ok(!all.includes('s3cr'), all);
    assert.ok(!all.includes('admin'), all);
    assert.ok(exit.stderrTail.some((l) => l.includes(`rtsp://<user>:***@127.0.0.1:${port}/stream`)), all);
  });

  test('children still running when Node exits are SIGKILLed by the exit hook', async () => {
    const fixture = fileURLToPath(new URL('../fixtures/exit-with-live-child.ts', import.meta.url));
    const node = spawn(process.execPath, ['--import', 'tsx', fixture], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    node.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    node.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const [code] = (await withDeadline(once(node, 'exit'), 'fixture exit')) as [number | null];
    assert.equal(code, 0, err);
    const match = /^CHILD (\d+) GRANDCHILD (\d+)$/m.exec(out);
    assert.ok(match, `unexpected fixture output: ${out} ${err}`);
    const [childPid, grandchildPid] = [Number(match[1]), Number(match[2])];
    await waitUntilDead([childPid, grandchildPid]);
    assert.equal(isAlive(childPid), false);
    assert.equal(isAlive(grandchildPid), false);
  });

  test('registry is empty after all of the above', () => {
    assert.equal(liveFfmpegProcessCount(), 0);
  });
});
