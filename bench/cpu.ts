import { readFileSync } from 'node:fs';

/**
 * CPU accounting for benchmarks. `process.cpuUsage()` covers this Node process; children (ffmpeg)
 * are counted through /proc/self/stat's cutime+cstime, which Linux adds once a child has been reaped
 * (so measure around work that reaps its children before it returns).
 */
const TICKS = 100; // USER_HZ on Linux

function childrenSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the comm field: state is [0], so utime/stime/cutime/cstime are fields 14..17 → [11..14].
  return (Number(fields[13]) + Number(fields[14])) / TICKS;
}

export interface CpuSample {
  self: number;
  children: number;
  total: number;
  wall: number;
}

export async function measureCpu(fn: () => Promise<unknown>): Promise<CpuSample> {
  const c0 = childrenSeconds();
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const wall = (performance.now() - t0) / 1000;
  const u = process.cpuUsage(u0);
  const self = (u.user + u.system) / 1e6;
  const children = childrenSeconds() - c0;
  return { self, children, total: self + children, wall };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function rssOfPid(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}
