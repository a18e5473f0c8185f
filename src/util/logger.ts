import { pino, type Logger, type LevelWithSilent } from 'pino';

/**
 * One pino root logger; child loggers per instance/node (`{instance, node}`). Secrets never reach a
 * log line: known secret-bearing keys are censored by pino's redaction, and free text passes through
 * `redactText`, which masks URL credentials (rtsp://user:pass@host → rtsp://user:***@host).
 *
 * LVA's `logLevel` and `logCategories` twin properties are applied by a `LogControl` (below).
 */

const SECRET_KEYS = ['password', 'headerValue', 'aadServicePrincipalSecret', 'aadServicePrincipalPassword',
  'aadServicePrincipalCertificate', 'connectionString', 'token', 'authorization', 'sharedAccessKey'];

const redactPaths = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/[^\s/@:]*:)[^\s@/]*@/gi;
const KEYED_SECRET = /\b(AccountKey|SharedAccessKey|SharedAccessSignature|sig|client_secret|password|pwd)=([^;&\s"']+)/gi;

/** Masks secrets in free text: URL passwords (rtsp://user:pass@host) and key=value credentials (AccountKey=…). */
export function redactText(text: string): string {
  return text.replace(URL_USERINFO, '$1***@').replace(KEYED_SECRET, '$1=***');
}

function redactStrings(v: unknown, depth: number): unknown {
  if (typeof v === 'string') return redactText(v);
  if (depth <= 0 || v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Error) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = redactStrings(x, depth - 1);
  return out;
}

/** Shared by every logger: free-text messages, string fields (two levels deep) and errors are masked. */
const redactionOptions = {
  redact: { paths: redactPaths, censor: '***' },
  hooks: {
    logMethod(this: Logger, args: unknown[], method: (...a: unknown[]) => void) {
      method.apply(this, args.map((a) => (typeof a === 'string' ? redactText(a) : a)));
    },
  },
  serializers: {
    err: (e: Error) => {
      const s = pino.stdSerializers.err(e);
      if (typeof s.message === 'string') s.message = redactText(s.message);
      if (typeof s.stack === 'string') s.stack = redactText(s.stack);
      return s;
    },
  },
  formatters: {
    level: (label: string) => ({ level: label }),
    log: (obj: Record<string, unknown>) => redactStrings(obj, 2) as Record<string, unknown>,
  },
};

export type Log = Logger;

let root: Logger | undefined;

export function rootLogger(): Logger {
  if (!root) {
    root = pino({
      level: process.env.LVA_LOG_LEVEL ?? (process.env.NODE_TEST_CONTEXT ? 'silent' : 'info'),
      ...redactionOptions,
      base: { module: 'lva-edge' },
    });
  }
  return root;
}

/**
 * The level the process environment imposes on the root logger, if any: `LVA_LOG_LEVEL` is an
 * operator's override and wins over the twin's `logLevel`; under `node --test` the root logger is silent.
 */
export function pinnedRootLevel(): LevelWithSilent | undefined {
  const env = process.env.LVA_LOG_LEVEL;
  if (env) return env as LevelWithSilent;
  return process.env.NODE_TEST_CONTEXT ? 'silent' : undefined;
}

export function createLogger(destination?: NodeJS.WritableStream, level: LevelWithSilent = 'info'): Logger {
  return pino(
    {
      level,
      ...redactionOptions,
      base: { module: 'lva-edge' },
    },
    destination as never,
  );
}

/** LVA's logLevel twin values → pino levels (`Info` appears in LVA's samples; unknown → Information). */
export function pinoLevel(lvaLevel: string | undefined): LevelWithSilent {
  switch ((lvaLevel ?? '').toLowerCase()) {
    case 'verbose':
      return 'debug';
    case 'warning':
      return 'warn';
    case 'error':
      return 'error';
    case 'none':
      return 'silent';
    default:
      return 'info';
  }
}

// ---- logCategories ------------------------------------------------------------------------------

/** LVA's log categories (lva-spec §3 `logCategories`). */
export const LOG_CATEGORIES = ['Application', 'Events', 'MediaPipeline'] as const;
export type LogCategory = (typeof LOG_CATEGORIES)[number];

export const DEFAULT_LOG_CATEGORIES: readonly LogCategory[] = ['Application', 'Events'];

/**
 * Which category a logger belongs to, from its bindings: an explicit `category` binding wins; a logger
 * bound to a graph instance or node (the graph runner, nodes, their ffmpeg children) is the media
 * pipeline; everything else (control plane, store, HTTP API, IoT Edge adapter) is the application.
 */
export function categoryOf(bindings: Record<string, unknown>): LogCategory {
  const c = bindings.category;
  if (typeof c === 'string') {
    const known = LOG_CATEGORIES.find((k) => k.toLowerCase() === c.toLowerCase());
    if (known) return known;
  }
  if ('instance' in bindings || 'node' in bindings) return 'MediaPipeline';
  return 'Application';
}

/** Parses a `logCategories` value (comma-separated string or list); unknown names are ignored. */
export function parseLogCategories(v: string | readonly string[] | undefined): Set<LogCategory> {
  const names = v === undefined ? [...DEFAULT_LOG_CATEGORIES] : typeof v === 'string' ? v.split(',') : [...v];
  const out = new Set<LogCategory>();
  for (const n of names) {
    const known = LOG_CATEGORIES.find((k) => k.toLowerCase() === n.trim().toLowerCase());
    if (known) out.add(known);
  }
  return out;
}

export interface LogSettings {
  /** LVA value: Verbose, Information (or Info), Warning, Error, None. */
  logLevel?: string;
  /** LVA value: comma-separated subset of Application, Events, MediaPipeline. */
  logCategories?: string | readonly string[];
}

const SEVERITY: Record<LevelWithSilent, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

/**
 * The effective pino level of one category. A category not listed is silenced down to errors: a
 * failure must never disappear because its category was switched off (LVA documents the categories as
 * a way to cut noise, not to hide faults). `None` silences everything.
 */
export function effectiveLevel(level: LevelWithSilent, category: LogCategory, enabled: ReadonlySet<LogCategory>): LevelWithSilent {
  if (level === 'silent') return 'silent';
  if (enabled.has(category)) return level;
  return SEVERITY[level] > SEVERITY.error ? level : 'error';
}

/**
 * Applies logLevel/logCategories to a root logger and every logger derived from it, live. Every child
 * created after attach() (graph runners, nodes, ffmpeg supervisors) is registered through pino's
 * `onChild` hook with the category its bindings give it, so a twin patch re-levels them all; nothing is
 * checked per log call (pino's own level test stays the only cost on the hot path). Registration holds
 * weak references: loggers of stopped graphs are collected as usual.
 */
export class LogControl {
  private readonly children: Array<{ ref: WeakRef<Logger>; category: LogCategory }> = [];
  private liveAfterPrune = 0;
  private level: LevelWithSilent;
  private enabled: Set<LogCategory>;

  /**
   * @param pinnedLevel a level imposed from outside (LVA_LOG_LEVEL, a silent test logger): the twin's
   *   logLevel is then ignored; categories still apply.
   */
  constructor(readonly root: Logger, settings: LogSettings = {}, private readonly pinnedLevel?: LevelWithSilent) {
    this.level = pinnedLevel ?? pinoLevel(settings.logLevel);
    this.enabled = parseLogCategories(settings.logCategories);
    root.onChild = (child: Logger) => this.register(child);
    this.applyAll();
  }

  /** A logger for one category (e.g. `Events` for the event log). */
  logger(category: LogCategory): Logger {
    return this.root.child({ category });
  }

  apply(settings: LogSettings): void {
    this.level = this.pinnedLevel ?? pinoLevel(settings.logLevel);
    this.enabled = parseLogCategories(settings.logCategories);
    this.applyAll();
  }

  /** Current configuration, for tests and diagnostics. */
  get state(): { level: LevelWithSilent; categories: LogCategory[] } {
    return { level: this.level, categories: LOG_CATEGORIES.filter((c) => this.enabled.has(c)) };
  }

  levelOf(category: LogCategory): LevelWithSilent {
    return effectiveLevel(this.level, category, this.enabled);
  }

  private register(child: Logger): void {
    const category = categoryOf(child.bindings());
    child.level = this.levelOf(category);
    this.children.push({ ref: new WeakRef(child), category });
    if (this.children.length > 64 && this.children.length > 2 * this.liveAfterPrune) this.prune();
  }

  private prune(): void {
    let w = 0;
    for (const c of this.children) if (c.ref.deref()) this.children[w++] = c;
    this.children.length = w;
    this.liveAfterPrune = w;
  }

  private applyAll(): void {
    // Root-level loggers and children created before attach() inherit the root's level.
    this.root.level = this.levelOf('Application');
    this.prune();
    for (const c of this.children) {
      const l = c.ref.deref();
      if (l) l.level = this.levelOf(c.category);
    }
  }
}
