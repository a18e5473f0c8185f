/**
 * The one result format every bench prints (common contract): human-readable text always, and with
 * `--json` one JSON object as the LAST stdout line, which `npm run bench` (bench/run-all.ts) collects
 * into bench/results.md.
 *
 *   {"bench":"<file stem>","title":"...","rows":[{"measure","ours","unit","baseline","baselineValue",
 *    "ratio","goal","pass"}],"notes":["..."]}
 */

export interface BenchRow {
  measure: string;
  ours: number;
  unit: string;
  /** Label of the baseline measured in the same run (e.g. "bare ffmpeg -c copy"); "" when none. */
  baseline: string;
  baselineValue: number | null;
  /** ours ÷ baselineValue. */
  ratio: number | null;
  /** Human text of the goal, e.g. "ratio ≤ 1.2" or "< 5 ms"; "" when there is none. */
  goal: string;
  pass: boolean | null;
}

export interface BenchReport {
  bench: string;
  title: string;
  rows: BenchRow[];
  notes: string[];
}

/** A goal on the ratio or on our own figure; `max`/`min` inclusive unless `strict`. */
export interface Goal {
  on: 'ratio' | 'ours';
  max?: number;
  min?: number;
  strict?: boolean;
}

export function goalText(g: Goal | undefined, unit: string): string {
  if (!g) return '';
  const what = g.on === 'ratio' ? 'ratio ' : '';
  const u = g.on === 'ours' && unit ? ` ${unit}` : '';
  const parts: string[] = [];
  if (g.min !== undefined) parts.push(`${what}${g.strict ? '>' : '≥'} ${g.min}${u}`);
  if (g.max !== undefined) parts.push(`${what}${g.strict ? '<' : '≤'} ${g.max}${u}`);
  return parts.join(', ');
}

export function meetsGoal(g: Goal | undefined, ours: number, ratio: number | null): boolean | null {
  if (!g) return null;
  const v = g.on === 'ratio' ? ratio : ours;
  if (v === null || !Number.isFinite(v)) return null;
  if (g.max !== undefined && (g.strict ? !(v < g.max) : !(v <= g.max))) return false;
  if (g.min !== undefined && (g.strict ? !(v > g.min) : !(v >= g.min))) return false;
  return true;
}

export function row(r: { measure: string; ours: number; unit: string; baseline?: string; baselineValue?: number | null; goal?: Goal }): BenchRow {
  const baselineValue = r.baselineValue ?? null;
  const ratio = baselineValue !== null && baselineValue !== 0 && Number.isFinite(baselineValue) ? r.ours / baselineValue : null;
  return {
    measure: r.measure, ours: r.ours, unit: r.unit, baseline: r.baseline ?? '', baselineValue, ratio,
    goal: goalText(r.goal, r.unit), pass: meetsGoal(r.goal, r.ours, ratio),
  };
}

/** `--json` / `--quick` as every bench understands them (other flags are the bench's own). */
export function commonFlags(argv: readonly string[] = process.argv.slice(2)): { json: boolean; quick: boolean } {
  return { json: argv.includes('--json'), quick: argv.includes('--quick') };
}

function fmt(x: number | null): string {
  if (x === null) return '—';
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : a >= 1 ? x.toFixed(2) : x.toFixed(3);
}

/** Human-readable table of one report. */
export function renderText(r: BenchReport): string {
  const lines = [r.title];
  for (const x of r.rows) {
    const base = x.baseline ? `  vs ${x.baseline} ${fmt(x.baselineValue)}` : '';
    const ratio = x.ratio !== null ? `  ratio ${fmt(x.ratio)}` : '';
    const goal = x.goal ? `  goal ${x.goal}: ${x.pass === null ? 'n/a' : x.pass ? 'PASS' : 'FAIL'}` : '';
    lines.push(`  ${x.measure}: ${fmt(x.ours)} ${x.unit}${base}${ratio}${goal}`);
  }
  for (const n of r.notes) lines.push(`  note: ${n}`);
  return `${lines.join('\n')}\n`;
}

/** Prints the text form, then (with --json) the JSON line last. */
export function printReport(r: BenchReport, json: boolean): void {
  process.stdout.write(renderText(r));
  if (json) process.stdout.write(`${JSON.stringify(r)}\n`);
}

// ---- collection (bench/run-all.ts) --------------------------------------------------------------

/**
 * The report in a bench's stdout: its last non-empty line, which must be a JSON object of the
 * contract's shape. Returns an error message instead when it is not.
 */
export function parseReportLine(stdout: string, expectedBench: string): BenchReport | string {
  const lines = stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  const last = lines[lines.length - 1];
  if (!last) return 'no output';
  let v: unknown;
  try {
    v = JSON.parse(last);
  } catch {
    return `last stdout line is not JSON: ${last.slice(0, 200)}`;
  }
  const r = v as Partial<BenchReport>;
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return 'last stdout line is not a JSON object';
  if (r.bench !== expectedBench) return `"bench" is ${JSON.stringify(r.bench)}, expected "${expectedBench}"`;
  if (typeof r.title !== 'string') return '"title" is not a string';
  if (!Array.isArray(r.rows)) return '"rows" is not an array';
  for (const [i, x] of r.rows.entries()) {
    const bad = typeof x !== 'object' || x === null || typeof x.measure !== 'string' || typeof x.ours !== 'number' ||
      typeof x.unit !== 'string' || typeof x.baseline !== 'string' || !(x.baselineValue === null || typeof x.baselineValue === 'number') ||
      !(x.ratio === null || typeof x.ratio === 'number') || typeof x.goal !== 'string' || !(x.pass === null || typeof x.pass === 'boolean');
    if (bad) return `rows[${i}] does not follow the contract: ${JSON.stringify(x).slice(0, 200)}`;
  }
  return { bench: r.bench, title: r.title, rows: r.rows, notes: Array.isArray(r.notes) ? r.notes.map(String) : [] };
}

export type BenchOutcome =
  | { bench: string; status: 'ok'; report: BenchReport; seconds: number }
  | { bench: string; status: 'failed' | 'skipped'; reason: string; seconds?: number };

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  ffmpeg: string;
  date: string;
  commit?: string;
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function num(x: number | null, unit = ''): string {
  if (x === null) return '—';
  return `${fmt(x)}${unit ? ` ${unit}` : ''}`;
}

/** bench/results.md: machine, summary, then one table per bench; failures and skips with their reason. */
export function renderResultsMarkdown(input: { machine: MachineInfo; outcomes: BenchOutcome[]; quick: boolean; unlisted?: string[] }): string {
  const { machine, outcomes, quick } = input;
  const out: string[] = [];
  out.push('# lva-edge benchmark results', '');
  out.push(`Generated by \`npm run bench${quick ? ' -- --quick' : ''}\` on ${machine.date}${machine.commit ? ` at commit ${machine.commit}` : ''}.` +
    ' Every figure of ours is shown next to a baseline measured in the same run on the same machine.' +
    (quick ? ' **Quick mode: shortened runs, for smoke testing only — not representative figures.**' : ''), '');
  out.push('## Machine', '', '| | |', '|---|---|');
  out.push(`| CPU | ${cell(machine.cpu)} |`, `| cores | ${machine.cores} |`, `| memory | ${machine.memoryGiB.toFixed(1)} GiB |`,
    `| OS | ${cell(machine.os)} |`, `| Node.js | ${cell(machine.node)} |`, `| ffmpeg | ${cell(machine.ffmpeg)} |`, '');
  out.push('## Summary', '', '| bench | status | goals met | time |', '|---|---|---|---|');
  for (const o of outcomes) {
    const time = o.seconds !== undefined ? `${o.seconds.toFixed(0)} s` : '—';
    if (o.status === 'ok') {
      const judged = o.report.rows.filter((r) => r.pass !== null);
      const met = judged.filter((r) => r.pass).length;
      out.push(`| [${o.bench}](#${o.bench}) | ok | ${judged.length ? `${met} / ${judged.length}` : 'no goals'} | ${time} |`);
    } else {
      out.push(`| ${o.bench} | ${o.status} | — | ${time} |`);
    }
  }
  out.push('');
  for (const o of outcomes) {
    if (o.status !== 'ok') continue;
    const r = o.report;
    out.push(`<a id="${o.bench}"></a>`, `## ${o.bench}`, '', cell(r.title), '');
    out.push('| measure | ours | same-run baseline | ratio | goal | pass |', '|---|---|---|---|---|---|');
    for (const x of r.rows) {
      const baseline = x.baseline ? `${cell(x.baseline)}: ${num(x.baselineValue, x.unit)}` : '—';
      const pass = x.pass === null ? '—' : x.pass ? '✔ pass' : '✘ fail';
      out.push(`| ${cell(x.measure)} | ${num(x.ours, x.unit)} | ${baseline} | ${x.ratio === null ? '—' : `${fmt(x.ratio)}×`} | ${cell(x.goal) || '—'} | ${pass} |`);
    }
    if (r.notes.length) out.push('', ...r.notes.map((n) => `- ${cell(n)}`));
    out.push('');
  }
  const problems = outcomes.filter((o) => o.status !== 'ok');
  if (problems.length || input.unlisted?.length) {
    out.push('## Failed or skipped', '');
    for (const o of problems) if (o.status === 'failed' || o.status === 'skipped') out.push(`- **${o.bench}** ${o.status}: ${cell(o.reason)}`);
    for (const f of input.unlisted ?? []) out.push(`- **${f}** not run: bench/${f}.ts is not in bench/run-all.ts's list.`);
    out.push('');
  }
  return out.join('\n');
}
