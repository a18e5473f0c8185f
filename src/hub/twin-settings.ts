import { LvaError, toLvaError } from '../api/errors.js';
import { canonicalizeSettings, SECRET_SETTING_KEYS } from '../config/settings.js';
import { assertMatchesSchema, normalizer, SchemaIds, secretPropertyNames } from '../graph/schemas.js';

/**
 * Module twin desired properties → validated settings (lva-spec §3), and the secret-free view of them
 * that goes to reported properties. Keys are matched case-insensitively (settings.ts), then the twin
 * schema normalises enums/defaults and validates; a document that fails is rejected as a whole.
 */

export type DesiredCheck =
  | { ok: true; settings: Record<string, unknown> }
  | { ok: false; error: LvaError };

export function checkDesired(desired: Record<string, unknown>): DesiredCheck {
  try {
    const canonical = canonicalizeSettings(withoutNulls(desired));
    const normalized = normalizer.normalize(canonical, SchemaIds.twin) as Record<string, unknown>;
    assertMatchesSchema(normalized, SchemaIds.twin);
    return { ok: true, settings: normalized };
  } catch (err) {
    return { ok: false, error: withoutSecretValues(toLvaError(err)) };
  }
}

/** Schema errors quote the offending value; when the property is a secret, say which one but not what. */
function withoutSecretValues(err: LvaError): LvaError {
  const target = (err.details[0]?.target ?? '').toLowerCase();
  const secret = [...SECRETS].find((k) => target.endsWith(`.${k.toLowerCase()}`));
  if (!secret) return err;
  const message = `Invalid value for ${err.details[0]!.target}: expected a string.`;
  return new LvaError(err.status, err.code, message, err.details.map((d) => ({ ...d, message })));
}

const SECRETS = new Set([...SECRET_SETTING_KEYS, ...secretPropertyNames(SchemaIds.twin)]);
const SECRET_LIKE = /secret|password|certificate|key|token|connectionstring/i;

/**
 * Effective configuration for reported properties, shaped for IoT Hub's twin rules (property names
 * without '.', '$' or spaces; no arrays): secrets removed (also unknown keys that look like secrets),
 * endpointAliases as `{alias1: {from, to}, …}` since its keys are URLs, unknown nested values skipped.
 */
export function reportableSettings(settings: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(settings)) {
    if (SECRETS.has(k) || SECRET_LIKE.test(k) || k.startsWith('$') || /[.\s]/.test(k)) continue;
    if (k === 'endpointAliases' && isObject(v)) {
      out[k] = Object.fromEntries(Object.entries(v).map(([from, to], i) => [`alias${i + 1}`, { from, to }]));
      continue;
    }
    if (v !== null && typeof v === 'object') continue; // unknown nested objects/arrays: not ours to echo
    out[k] = v;
  }
  return out;
}

/** The twin's desired `$version`, when present. */
export function desiredVersion(desired: Record<string, unknown>): number | undefined {
  const v = desired.$version;
  return typeof v === 'number' ? v : undefined;
}

/**
 * A reported-properties patch turning `prev` into `next`: changed keys with their new value, removed
 * keys as null (twin patch semantics), recursively for nested objects. Empty object = nothing to send.
 */
export function reportedPatch(prev: Record<string, unknown>, next: Record<string, unknown>): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const k of Object.keys(prev)) if (!(k in next)) patch[k] = null;
  for (const [k, v] of Object.entries(next)) {
    const p = prev[k];
    if (isObject(v) && isObject(p)) {
      const sub = reportedPatch(p, v);
      if (Object.keys(sub).length > 0) patch[k] = sub;
    } else if (JSON.stringify(p) !== JSON.stringify(v)) {
      patch[k] = v;
    }
  }
  return patch;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A desired document from the SDK never holds nulls (they delete keys), but a config file might. */
function withoutNulls(doc: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(doc).filter(([, v]) => v !== null));
}

/** An LVA error as a flat twin value (no arrays): top-level code/message plus the first detail. */
export function describeError(err: LvaError): { code: string; message: string; detailCode?: string; target?: string } {
  const body = err.toODataBody().error;
  const d = body.details?.[0];
  return { code: body.code, message: body.message, ...(d ? { detailCode: d.code, ...(d.target ? { target: d.target } : {}) } : {}) };
}
