import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import type { Inference } from '../nodes/node.js';

/**
 * What an HTTP extension's reply means (lva-spec §5.1), decided from status, headers and body only,
 * so every malformed reply is classified here without a network (and fuzzed in tests):
 *
 * - 200 + JSON matching the inference schema (schemas/inference.json) → inferences;
 * - 204, or 200 with an empty body → nothing found, no event;
 * - 503 → back off for Retry-After (seconds or HTTP date) or a default;
 * - 200 with a non-JSON content type → one opaque `other` inference {contentType, contentBytes} (as
 *   LVA forwards it), plus a diagnostics notice, because the extension broke the contract;
 * - bad JSON, a wrong shape, an oversized body, 401/403/other statuses → a diagnostics event, nothing
 *   forwarded (a gate must never trigger on garbage).
 */

export type DiagnosticName = 'ProtocolError' | 'AuthenticationError' | 'AuthorizationError' | 'NetworkError';

export interface ReplyProblem {
  name: DiagnosticName;
  errorCode: string;
  message: string;
  /** For ProtocolError: which protocol broke (default: the extension's own, http or grpc). */
  protocol?: 'http' | 'tls' | 'grpc';
}

export type ExtensionOutcome =
  | { kind: 'inferences'; inferences: Inference[]; problem?: ReplyProblem }
  | { kind: 'nothing' }
  | { kind: 'busy'; retryAfterMs: number }
  | { kind: 'failed'; problem: ReplyProblem };

export const DEFAULT_RETRY_AFTER_MS = 2_000;
export const MAX_RETRY_AFTER_MS = 60_000;
/** Replies larger than this are refused (an inference list is a few KiB; 1 MiB is generous). */
export const MAX_REPLY_BYTES = 1024 * 1024;

let validator: ValidateFunction | undefined;
function validate(body: unknown): boolean {
  if (!validator) {
    const schema = JSON.parse(readFileSync(new URL('../../schemas/inference.json', import.meta.url), 'utf8')) as object;
    validator = new Ajv({ allErrors: false, strict: false }).compile(schema);
  }
  return validator(body);
}

function schemaErrorText(): string {
  const e = validator?.errors?.[0];
  return e ? `${e.instancePath || '(body)'} ${e.message ?? 'is invalid'}` : 'does not match the inference schema';
}

/** Retry-After: delta-seconds or an HTTP date (RFC 9110 §10.2.3); clamped to [0, 60 s]. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number {
  if (value === undefined || value.trim() === '') return DEFAULT_RETRY_AFTER_MS;
  const v = value.trim();
  let ms: number;
  if (/^\d+$/.test(v)) ms = Number(v) * 1000;
  else {
    const at = Date.parse(v);
    if (!Number.isFinite(at)) return DEFAULT_RETRY_AFTER_MS;
    ms = at - nowMs;
  }
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms));
}

export interface RawReply {
  status: number;
  /** Lower-case header names. */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: Buffer;
  /** The body exceeded MAX_REPLY_BYTES and was cut. */
  tooLarge?: boolean;
}

const header = (h: RawReply['headers'], name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

export function interpretReply(reply: RawReply, nowMs = Date.now()): ExtensionOutcome {
  const { status } = reply;
  if (status === 503) return { kind: 'busy', retryAfterMs: parseRetryAfter(header(reply.headers, 'retry-after'), nowMs) };
  if (status === 401) return failed('AuthenticationError', '401', 'the extension refused the credentials (401)');
  if (status === 403) return failed('AuthorizationError', '403', 'the extension refused access (403)');
  if (status === 204) return { kind: 'nothing' };
  if (status !== 200) return failed('ProtocolError', String(status), `the extension answered HTTP ${status}`);
  if (reply.tooLarge) return failed('ProtocolError', 'ResponseTooLarge', `the reply exceeds ${MAX_REPLY_BYTES} bytes`);
  if (reply.body.length === 0) return { kind: 'nothing' };
  const contentType = (header(reply.headers, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  const json = contentType === 'application/json' || contentType.endsWith('+json');
  if (!json) {
    return {
      kind: 'inferences',
      inferences: [{ type: 'other', other: { contentType: contentType || 'application/octet-stream', contentBytes: reply.body.toString('base64') } }],
      problem: { name: 'ProtocolError', errorCode: 'UnexpectedContentType', message: `the reply's content type is ${JSON.stringify(contentType)}, not application/json; forwarded as an opaque 'other' inference` },
    };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(reply.body.toString('utf8'));
  } catch (err) {
    return failed('ProtocolError', 'InvalidJson', `the reply is not valid JSON: ${(err as Error).message.slice(0, 120)}`);
  }
  // An empty list is how many extensions say "nothing found" (the schema wants ≥ 1 item).
  if (isEmptyInferenceList(parsed)) return { kind: 'nothing' };
  if (!validate(parsed)) return failed('ProtocolError', 'InvalidInferenceSchema', `the reply does not match the inference schema: ${schemaErrorText().slice(0, 200)}`);
  return { kind: 'inferences', inferences: (parsed as { inferences: Inference[] }).inferences };
}

function isEmptyInferenceList(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const inf = (v as { inferences?: unknown }).inferences;
  return Array.isArray(inf) && inf.length === 0;
}

function failed(name: DiagnosticName, errorCode: string, message: string): ExtensionOutcome {
  return { kind: 'failed', problem: { name, errorCode, message } };
}
