/**
 * `npm run bench`: runs every benchmark with `--json` (each in its own process, with a timeout),
 * collects the JSON report each prints as its last stdout line (bench/report.ts), and writes
 * bench/results.md: machine info, a summary, and per bench a table of our figures next to their
 * same-run baselines. A bench that fails, times out or is missing is listed with its reason; the run
 * goes on.
 *
 *   node --import tsx bench/run-all.ts [--quick] [--only a,b] [--out FILE]
 *
 * --quick passes --quick to every bench (short runs; the smoke test uses it). Exit status: 1 when a
 * bench failed (crashed, timed out, no valid report), else 0 — missing benches are listed as skipped,
 * and goals that are not met are shown in the table, not in the exit status.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseReportLine, renderResultsMarkdown, type BenchOutcome, type MachineInfo } from './report.js';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH_DIR);

/** Every bench, in the order they run (cheap ones first), with a time limit for full and quick runs. */
export const BENCHES: ReadonlyArray<{ name: string; timeoutMin: number; quickTimeoutMin: number }> = [
  { name: 'control-plane', timeoutMin: 15, quickTimeoutMin: 2 },
  { name: 'motion-core', timeoutMin: 5, quickTimeoutMin: 1 },
  { name: 'recording', timeoutMin: 30, quickTimeoutMin: 6 },
  { name: 'rtsp-relay', timeoutMin: 10, quickTimeoutMin: 3 },
  { name: 'motion-accuracy', timeoutMin: 60, quickTimeoutMin: 10 },
  { name: 'motion-speed', timeoutMin: 30, quickTimeoutMin: 6 },
  { name: 'extension', timeoutMin: 30, quickTimeoutMin: 6 },
  { name: 'grpc-extension', timeoutMin: 5, quickTimeoutMin: 2 },
  { name: 'load', timeoutMin: 60, quickTimeoutMin: 10 },
];

/** Modules in bench/ that are not benches themselves. */
export const HELPERS = new Set(['cpu', 'topologies', 'profile-paths', 'report', 'run-all', 'motion-clips']);

/** bench/*.ts files that are neither in BENCHES nor helpers (they would silently never run). */
export function unlistedBenches(files: readonly string[]): string[] {
  const listed = new Set(BENCHES.map((b) => b.name));
  return files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => f.slice(0, -3))
    .filter((stem) => !listed.has(stem) && !HELPERS.has(stem))
    .sort();
}

function firstLine(cmd: string, args: string[]): string | undefined {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? r.stdout.split('\n')[0]?.trim() : undefined;
}

export function machineInfo(): MachineInfo {
  let osName = `${os.type()} ${os.release()}`;
  try {
    const pretty = /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'));
    if (pretty) osName = `${pretty[1]} (${os.release()})`;
  } catch {
    /* not Linux or no os-release: keep the kernel name */
  }
  const ffmpeg = firstLine(process.env.FFMPEG_PATH || 'ffmpeg', ['-hide_banner', '-version']) ?? 'not found';
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism?.() ?? os.cpus().length,
    memoryGiB: os.totalmem() / 2 ** 30,
    os: osName,
    node: process.version,
    ffmpeg: ffmpeg.replace(/ Copyright.*$/, ''),
    date: new Date().toISOString(),
    commit: firstLine('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']),
  };
}

/** Runs one bench; its stdout is echoed (the human-readable part), stderr kept for the failure reason. */
function runBench(name: string, quick: boolean, timeoutMs: number): Promise<BenchOutcome> {
  const file = path.join(BENCH_DIR, `${name}.ts`);
  if (!existsSync(file)) return Promise.resolve({ bench: name, status: 'skipped', reason: `bench/${name}.ts is not in this checkout yet.` });
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file, '--json', ...(quick ? ['--quick'] : [])], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true, // own process group: a timeout kills its ffmpegs too
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
      process.stdout.write(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
      if (stderr.length > 64_000) stderr = stderr.slice(-32_000);
    });
    let timedOut = false;
    const killGroup = (sig: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, sig);
      } catch {
        /* already gone */
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup('SIGTERM');
      setTimeout(() => killGroup('SIGKILL'), 5000).unref();
    }, timeoutMs);
    const onSignal = () => killGroup('SIGKILL');
    process.once('exit', onSignal);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      process.off('exit', onSignal);
      killGroup('SIGKILL'); // leftovers of a bench that exited without reaping its children
      const seconds = (Date.now() - started) / 1000;
      const tail = stderr.trim().split('\n').slice(-5).join(' ⏎ ').slice(-600);
      if (timedOut) return resolve({ bench: name, status: 'failed', reason: `timed out after ${Math.round(timeoutMs / 60_000)} min`, seconds });
      if (code !== 0) return resolve({ bench: name, status: 'failed', reason: `exited with ${code ?? signal}${tail ? `: ${tail}` : ''}`, seconds });
      const report = parseReportLine(stdout, name);
      if (typeof report === 'string') return resolve({ bench: name, status: 'failed', reason: `no valid JSON report (${report})`, seconds });
      resolve({ bench: name, status: 'ok', report, seconds });
    });
  });
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: {
    quick: { type: 'boolean', default: false }, only: { type: 'string' }, out: { type: 'string' },
  } });
  const quick = values.quick;
  const only = values.only?.split(',').map((s) => s.trim()).filter(Boolean);
  if (only) {
    const unknown = only.filter((o) => !BENCHES.some((b) => b.name === o));
    if (unknown.length) {
      process.stderr.write(`run-all: unknown bench ${unknown.join(', ')}; known: ${BENCHES.map((b) => b.name).join(', ')}\n`);
      return 2;
    }
  }
  const unlisted = unlistedBenches(readdirSync(BENCH_DIR));
  for (const u of unlisted) process.stderr.write(`run-all: warning: bench/${u}.ts is not in the list in bench/run-all.ts; it is not run\n`);
  const machine = machineInfo();
  const outcomes: BenchOutcome[] = [];
  for (const b of BENCHES) {
    if (only && !only.includes(b.name)) continue;
    process.stdout.write(`\n=== ${b.name}${quick ? ' (quick)' : ''} ===\n`);
    const o = await runBench(b.name, quick, (quick ? b.quickTimeoutMin : b.timeoutMin) * 60_000);
    if (o.status !== 'ok') process.stdout.write(`${b.name}: ${o.status}: ${o.reason}\n`);
    outcomes.push(o);
  }
  const out = values.out ? path.resolve(values.out) : path.join(BENCH_DIR, 'results.md');
  writeFileSync(out, renderResultsMarkdown({ machine, outcomes, quick, unlisted: only ? [] : unlisted }));
  process.stdout.write(`\nwrote ${path.relative(process.cwd(), out) || out}\n`);
  return outcomes.some((o) => o.status === 'failed') ? 1 : 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main();
}
