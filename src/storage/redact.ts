/**
 * Keeps storage secrets out of logs, events and replies: SAS query strings, account keys and
 * connection-string credentials are masked in any free text (error messages quote URLs).
 */
const URL_QUERY = /(\bhttps?:\/\/[^\s?"'<>]+)\?[^\s"'<>]*/gi;
const KEYED = /\b(AccountKey|SharedAccessSignature|SharedAccessKey|client_secret|sig)=([^;&\s"'<>]*)/gi;

export function redactSecrets(text: string): string {
  return text.replace(URL_QUERY, '$1?***').replace(KEYED, '$1=***');
}

/** An error's message, safe to publish. */
export function safeMessage(err: unknown): string {
  const e = err as { message?: unknown; code?: unknown; statusCode?: unknown };
  const msg = typeof e?.message === 'string' && e.message.length > 0 ? e.message : String(err);
  const status = typeof e?.statusCode === 'number' ? ` (HTTP ${e.statusCode})` : '';
  const code = typeof e?.code === 'string' && !msg.includes(e.code) ? ` [${e.code}]` : '';
  // The first line is enough; service error bodies follow on later lines.
  return redactSecrets(`${msg.split('\n')[0]}${status}${code}`).slice(0, 500);
}
