/**
 * `${name}` parameter tokens (lva-spec §2.2): scanning, typed value parsing and textual substitution.
 * Substitution is a single pass over the original text, so a substituted value is never re-scanned
 * for parameters (validate.ts only expands the two name variables inside values). `${System.GraphTopologyName}` and
 * `${System.GraphInstanceName}` are replaced when an instance is resolved; the two date-time
 * variables stay in the text and are expanded per clip at run time by `expandSystemVariables`.
 */

import type { ParameterType } from './model.js';

export const SystemVariables = {
  DateTime: 'System.DateTime',
  PreciseDateTime: 'System.PreciseDateTime',
  GraphTopologyName: 'System.GraphTopologyName',
  GraphInstanceName: 'System.GraphInstanceName',
} as const;
export type SystemVariable = (typeof SystemVariables)[keyof typeof SystemVariables];

const SYSTEM_VARIABLE_NAMES: ReadonlySet<string> = new Set(Object.values(SystemVariables));

/** Matches one `${…}` token; group 1 is the name between the braces (may be empty or malformed). */
const TOKEN = /\$\{([^}]*)\}/g;

export function isSystemVariable(name: string): name is SystemVariable {
  return SYSTEM_VARIABLE_NAMES.has(name);
}

/** Every token name referenced in `text`, in order of appearance (duplicates kept). */
export function scanTokens(text: string): string[] {
  const names: string[] = [];
  for (const m of text.matchAll(TOKEN)) names.push(m[1]!);
  return names;
}

export function hasTokens(text: string): boolean {
  return text.includes('${') && scanTokens(text).length > 0;
}

/** True when the text contains a token other than the run-time date-time variables. */
export function hasUnresolvedTokens(text: string): boolean {
  return scanTokens(text).some((n) => n !== SystemVariables.DateTime && n !== SystemVariables.PreciseDateTime);
}

/**
 * Replaces every token whose name `lookup` knows; unknown tokens are left as written.
 * `lookup` must return undefined for names it does not resolve.
 */
export function substituteTokens(text: string, lookup: (name: string) => string | undefined): string {
  if (!text.includes('${')) return text;
  return text.replace(TOKEN, (whole, name: string) => lookup(name) ?? whole);
}

export interface SystemVariableValues {
  now: Date;
  topologyName: string;
  instanceName: string;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** `yyyyMMddTHHmmssZ` in UTC, e.g. `20200521T053726Z`. */
export function formatSystemDateTime(d: Date): string {
  return `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}T${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
}

/** `yyyyMMddTHHmmss.fffZ` in UTC, e.g. `20200521T053726.042Z`. */
export function formatSystemPreciseDateTime(d: Date): string {
  return `${formatSystemDateTime(d).slice(0, -1)}.${pad(d.getUTCMilliseconds(), 3)}Z`;
}

/** Expands all four `${System.*}` variables; any other token is left as written. */
export function expandSystemVariables(pattern: string, values: SystemVariableValues): string {
  return substituteTokens(pattern, (name) => {
    switch (name) {
      case SystemVariables.DateTime:
        return formatSystemDateTime(values.now);
      case SystemVariables.PreciseDateTime:
        return formatSystemPreciseDateTime(values.now);
      case SystemVariables.GraphTopologyName:
        return values.topologyName;
      case SystemVariables.GraphInstanceName:
        return values.instanceName;
      default:
        return undefined;
    }
  });
}

// ------------------------------------------------------------------------------------------------
// Typed parameter values
// ------------------------------------------------------------------------------------------------

export type ParsedParameterValue =
  | { ok: true; text: string }
  | { ok: false; reason: string };

const INT = /^[+-]?\d+$/;
const DOUBLE = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/**
 * Checks a parameter value against its declared type and returns the text to substitute:
 * Int is a 32-bit signed integer (rewritten without sign noise or leading zeros), Double a finite
 * 64-bit number (kept as written), Bool `true`/`false` in any case (rewritten lower case),
 * String/SecretString anything.
 */
export function parseParameterValue(type: ParameterType, value: string): ParsedParameterValue {
  switch (type) {
    case 'String':
    case 'SecretString':
      return { ok: true, text: value };
    case 'Int': {
      const t = value.trim();
      if (!INT.test(t)) return { ok: false, reason: `'${preview(value)}' is not an integer` };
      const n = Number(t);
      if (n < -2147483648 || n > 2147483647) return { ok: false, reason: `${preview(value)} is outside the 32-bit integer range` };
      return { ok: true, text: String(n) };
    }
    case 'Double': {
      const t = value.trim();
      if (!DOUBLE.test(t) || !Number.isFinite(Number(t))) return { ok: false, reason: `'${preview(value)}' is not a finite number` };
      return { ok: true, text: t };
    }
    case 'Bool': {
      const t = value.trim().toLowerCase();
      if (t !== 'true' && t !== 'false') return { ok: false, reason: `'${preview(value)}' is not true or false` };
      return { ok: true, text: t };
    }
    default:
      return { ok: false, reason: `unknown parameter type '${String(type)}'` };
  }
}

function preview(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
