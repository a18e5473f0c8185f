import { pino, type Logger, type LevelWithSilent } from 'pino';

/**
 * One pino root logger; child loggers per instance/node (`{instance, node}`). Secrets never reach a
 * log line: known secret-bearing keys are censored by pino's redaction, and free text passes through
 * `redactText`, which masks URL credentials (rtsp://user:pass@host → rtsp://user:***@host).
 */

const SECRET_KEYS = ['password', 'headerValue', 'aadServicePrincipalSecret', 'aadServicePrincipalPassword',
  'aadServicePrincipalCertificate', 'connectionString', 'token', 'authorization', 'sharedAccessKey'];

const redactPaths = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

export type Log = Logger;

let root: Logger | undefined;

export function rootLogger(): Logger {
  if (!root) {
    root = pino({
      level: process.env.LVA_LOG_LEVEL ?? (process.env.NODE_TEST_CONTEXT ? 'silent' : 'info'),
      redact: { paths: redactPaths, censor: '***' },
      base: { module: 'lva-edge' },
      formatters: { level: (label) => ({ level: label }) },
    });
  }
  return root;
}

export function createLogger(destination?: NodeJS.WritableStream, level: LevelWithSilent = 'info'): Logger {
  return pino(
    {
      level,
      redact: { paths: redactPaths, censor: '***' },
      base: { module: 'lva-edge' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination as never,
  );
}

/** LVA's logLevel twin values → pino levels. */
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
