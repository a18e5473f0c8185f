// Helpers for tests that plant secrets and then look for them everywhere.
import { execFileSync } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** A secret that cannot occur by chance: a fixed prefix (to name it in failures) plus random hex. */
export function plantSecret(label: string): string {
  return `${label}-${Math.random().toString(16).slice(2)}${Date.now().toString(16)}`;
}

/** Command lines of every process on the host (`ps -eo args`), one per entry. */
export function psArgs(): string[] {
  return execFileSync('ps', ['-eo', 'args', '--no-headers'], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }).split('\n');
}

/**
 * Samples `ps -eo args` every `intervalMs` until stop() is called; collects every distinct line seen, so a
 * short-lived child (ffmpeg retrying a camera) is caught as well as a long-lived one.
 */
export function watchProcessTable(intervalMs = 150): { lines: Set<string>; stop(): Set<string> } {
  const lines = new Set<string>();
  const sample = () => {
    try {
      for (const l of psArgs()) lines.add(l);
    } catch {
      // ps can fail transiently under load; the next sample covers it
    }
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    lines,
    stop() {
      clearInterval(timer);
      sample();
      return lines;
    },
  };
}

/** Every occurrence of any secret (also URL-encoded and base64 forms) in `text`, as "secret in where". */
export function findSecrets(text: string, secrets: readonly string[], where: string): string[] {
  const found: string[] = [];
  for (const s of secrets) {
    const forms = new Set([s, encodeURIComponent(s), Buffer.from(s).toString('base64')]);
    for (const f of forms) if (text.includes(f)) found.push(`${s} in ${where}`);
  }
  return found;
}

export interface FileEntry {
  path: string;
  mode: number;
  isDirectory: boolean;
}

/** Every file and directory under `root` (symlinks not followed). */
export function walk(root: string): FileEntry[] {
  const out: FileEntry[] = [];
  const visit = (p: string) => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return;
    }
    out.push({ path: p, mode: st.mode & 0o777, isDirectory: st.isDirectory() });
    if (st.isDirectory()) for (const e of readdirSync(p)) visit(path.join(p, e));
  };
  visit(root);
  return out;
}

/** Reads a regular file as latin1 text (binary-safe substring search), or '' when it is not readable. */
export function readText(p: string): string {
  try {
    if (!statSync(p).isFile()) return '';
    return readFileSync(p).toString('latin1');
  } catch {
    return '';
  }
}
