// Leftover-process detection for after() hooks, read straight from /proc (Linux only).
//
// Which ffmpeg processes count as "ours": those whose parent chain leads to this Node process, plus those
// whose environment carries LVA_EDGE_SPAWNED_BY=<this pid> (set by FfmpegProcess and inherited through
// e.g. the RTSP test server), which catches orphans that were re-parented to init after their parent
// died. Other ffmpeg processes on the machine (other engineers' test runs) are deliberately ignored.
// Zombies (state Z) count: an unreaped child is exactly the leak we are looking for.
import { readdirSync, readFileSync } from 'node:fs';
import { killAllFfmpegProcessesSync, liveFfmpegProcesses, SPAWNED_BY_ENV } from '../../src/media/ffmpeg-process.js';

export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** Process group id. */
  pgid: number;
  /** Single-letter state from /proc/PID/stat: R, S, D, T, Z… */
  state: string;
  /** Executable name as the kernel reports it (at most 15 characters). */
  comm: string;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined; // the process vanished meanwhile, or is not readable
  }
}

/** Parses /proc/PID/stat; `comm` may contain spaces and ')' so fields are read after the last ')'. */
function parseStat(pid: number, text: string): ProcessInfo | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const rest = text.slice(close + 2).split(' ');
  return { pid, comm: text.slice(open + 1, close), state: rest[0] ?? '?', ppid: Number(rest[1]), pgid: Number(rest[2]) };
}

/** Every process visible in /proc right now. */
export function readProcessTable(): ProcessInfo[] {
  const table: ProcessInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const text = readText(`/proc/${entry}/stat`);
    const info = text === undefined ? undefined : parseStat(Number(entry), text);
    if (info) table.push(info);
  }
  return table;
}

/** Processes whose parent chain reaches `root` (default: this process), excluding `root` itself. */
export function listDescendantProcesses(root: number = process.pid, table = readProcessTable()): ProcessInfo[] {
  const parentOf = new Map(table.map((p) => [p.pid, p.ppid]));
  const isDescendant = (pid: number): boolean => {
    const seen = new Set<number>();
    let current = parentOf.get(pid);
    while (current !== undefined && current > 0 && !seen.has(current)) {
      if (current === root) return true;
      seen.add(current);
      current = parentOf.get(current);
    }
    return false;
  };
  return table.filter((p) => p.pid !== root && isDescendant(p.pid));
}

function spawnedByUs(pid: number): boolean {
  const environ = readText(`/proc/${pid}/environ`);
  return environ !== undefined && environ.split('\0').includes(`${SPAWNED_BY_ENV}=${process.pid}`);
}

function ourFfmpegProcesses(): ProcessInfo[] {
  const table = readProcessTable();
  const descendants = new Set(listDescendantProcesses(process.pid, table).map((p) => p.pid));
  return table.filter((p) => p.comm === 'ffmpeg' && (descendants.has(p.pid) || spawnedByUs(p.pid)));
}

/** Pids of ffmpeg processes belonging to this test process (see the file comment for the rule). */
export function listFfmpegPids(): number[] {
  return ourFfmpegProcesses().map((p) => p.pid);
}

function describe(p: ProcessInfo): string {
  const cmdline = (readText(`/proc/${p.pid}/cmdline`) ?? '').split('\0').join(' ').trim();
  return `pid ${p.pid} (state ${p.state}, ppid ${p.ppid}): ${cmdline || p.comm}`;
}

/**
 * Fails when an ffmpeg process of ours is still alive (or unreaped) or when the FfmpegProcess registry
 * is not empty. Waits up to `waitMs` (default 3000) for children that are being stopped right now.
 * On failure the leftovers are SIGKILLed before throwing, so one leak does not cascade into later files.
 */
export async function assertNoLeftoverFfmpeg(options: { waitMs?: number } = {}): Promise<void> {
  const deadline = Date.now() + (options.waitMs ?? 3000);
  for (;;) {
    const registry = liveFfmpegProcesses();
    const leftovers = ourFfmpegProcesses();
    if (registry.length === 0 && leftovers.length === 0) return;
    if (Date.now() >= deadline) {
      const lines = [
        ...registry.map((p) => `registry: pid ${p.pid ?? '-'}: ${p.commandLine}`),
        ...leftovers.map((p) => `process: ${describe(p)}`),
      ];
      killAllFfmpegProcessesSync();
      for (const p of leftovers) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      throw new Error(`leftover ffmpeg processes:\n  ${lines.join('\n  ')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
