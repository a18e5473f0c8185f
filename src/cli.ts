import { parseArgs } from 'node:util';
import { readFile } from 'node:fs/promises';
import { Daemon } from './daemon.js';
import { LvaError } from './api/errors.js';
import { validateFiles } from './cli/validate.js';
import { rootLogger } from './util/logger.js';

/**
 * `lva-edge` command line (interfaces.md): run, validate, replay, invoke.
 */

const USAGE = `Usage:
  lva-edge run [--config FILE] [--http HOST:PORT|off] [--data-dir DIR] [--connection-string CS]
  lva-edge validate TOPOLOGY.json [--instance INSTANCE.json] [--config FILE]
  lva-edge replay --topology T.json [--instance I.json] [--param NAME=VALUE ...] [--config FILE]
                  --input VIDEO --output DIR [--events FILE] [--realtime] [--start-time ISO8601]
  lva-edge invoke METHOD [PAYLOAD.json | -] [--url http://127.0.0.1:7070]
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'run':
      return run(rest);
    case 'validate':
      return validate(rest);
    case 'invoke':
      return invoke(rest);
    case 'replay': {
      const { replayCommand } = await import('./replay.js');
      return replayCommand(rest);
    }
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(cmd ? `unknown command '${cmd}'\n${USAGE}` : USAGE);
      return 2;
  }
}

export function parseHostPort(v: string): { host: string; port: number } | null {
  if (v === 'off') return null;
  const m = /^(.*):(\d+)$/.exec(v);
  if (!m) throw new Error(`--http expects HOST:PORT or off, got '${v}'`);
  const host = m[1]!.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
  return { host, port: Number(m[2]) };
}

async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      http: { type: 'string' },
      'data-dir': { type: 'string' },
      'connection-string': { type: 'string' },
    },
    strict: true,
  });
  const { findFfmpeg } = await import('./util/executables.js');
  try {
    findFfmpeg();
  } catch (err) {
    process.stderr.write(`lva-edge: ${(err as Error).message}\n`);
    return 1;
  }
  const fileSettings = values.config ? await Daemon.loadConfigFile(values.config) : {};
  const log = rootLogger();
  let stopRequested: ((sig: string) => void) | undefined;
  const stopSignal = new Promise<string>((resolve) => {
    stopRequested = resolve;
  });
  process.once('SIGTERM', () => stopRequested!('SIGTERM'));
  process.once('SIGINT', () => stopRequested!('SIGINT'));

  // IoT Edge transport: IOTEDGE_* environment or a module connection string. The twin is read before the
  // daemon is built (applicationDataDirectory only applies at start); its values win over --config.
  const { hubCredentialsFrom } = await import('./hub/hub-connection.js');
  const credentials = hubCredentialsFrom({ connectionString: values['connection-string'], env: process.env });
  let hub: import('./hub/hub-module.js').HubModule | undefined;
  let settings = fileSettings;
  if (credentials) {
    const { HubModule } = await import('./hub/hub-module.js');
    const buffer = Number(process.env.LVA_HUB_EVENT_BUFFER);
    hub = new HubModule({ credentials, log, baseSettings: fileSettings, ...(buffer > 0 ? { outputBufferEvents: buffer } : {}) });
    // edgeHub may not be up yet: connect() retries until it is, or until we are told to stop.
    let connecting = true;
    let stoppedEarly = false;
    void stopSignal.then(() => {
      if (!connecting) return;
      stoppedEarly = true;
      return hub!.stop();
    });
    settings = await hub.connect();
    connecting = false;
    if (stoppedEarly) return 0;
  }
  const daemon = new Daemon({
    settings,
    http: parseHostPort(values.http ?? process.env.LVA_HTTP ?? '127.0.0.1:7070'),
    metricsHttp: process.env.LVA_METRICS ? parseHostPort(process.env.LVA_METRICS) : null,
    token: process.env.LVA_API_TOKEN || undefined,
    dataDir: values['data-dir'],
  });
  if (hub) await hub.start(daemon);
  else await daemon.start();
  process.stdout.write(`${JSON.stringify({ ready: true, http: daemon.httpAddress ?? null, iotEdge: hub !== undefined })}\n`);
  const sig = await stopSignal;
  log.info({ signal: sig }, 'stopping: deactivating instances');
  try {
    await daemon.stop();
  } catch (err) {
    log.error({ err }, 'stop failed');
  }
  // After the daemon: the events of the deactivation (RecordingStopped…) still go out.
  await hub?.stop();
  return 0;
}

async function validate(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: { instance: { type: 'string' }, config: { type: 'string' } },
  });
  if (positionals.length !== 1) {
    process.stderr.write(USAGE);
    return 2;
  }
  let settings: Record<string, unknown> = {};
  try {
    if (values.config) settings = await Daemon.loadConfigFile(values.config);
  } catch (err) {
    process.stderr.write(`lva-edge validate: ${(err as Error).message}\n`);
    return 2;
  }
  const r = await validateFiles(positionals[0]!, values.instance, settings);
  if (r.kind === 'unreadable') {
    process.stderr.write(`lva-edge validate: ${r.message}\n`);
    return 2;
  }
  if (r.kind === 'invalid') {
    process.stdout.write(`${JSON.stringify(r.error.toODataBody())}\n`);
    return 1;
  }
  process.stdout.write(`${JSON.stringify({ valid: true, topology: r.topologyName, ...(r.instanceName ? { instance: r.instanceName } : {}) })}\n`);
  return 0;
}

async function invoke(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: { url: { type: 'string' } },
  });
  const [method, source] = positionals;
  if (!method) {
    process.stderr.write(USAGE);
    return 2;
  }
  let text = '{"@apiVersion":"2.0"}';
  if (source === '-') text = await readStdin();
  else if (source) text = await readFile(source, 'utf8');
  const base = (values.url ?? process.env.LVA_URL ?? 'http://127.0.0.1:7070').replace(/\/$/, '');
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (process.env.LVA_API_TOKEN) headers.authorization = `Bearer ${process.env.LVA_API_TOKEN}`;
  let res: Response;
  try {
    res = await fetch(`${base}/v1/methods/${encodeURIComponent(method)}`, { method: 'POST', headers, body: text });
  } catch (err) {
    process.stderr.write(`lva-edge invoke: cannot reach ${base}: ${(err as Error).message}\n`);
    return 1;
  }
  const reply = await res.text();
  let out: unknown;
  try {
    out = JSON.parse(reply);
  } catch {
    out = { status: res.status, payload: reply };
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  return res.status >= 200 && res.status < 300 ? 0 : 1;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`lva-edge: ${err instanceof LvaError ? JSON.stringify(err.toODataBody()) : (err as Error).message}\n`);
    process.exitCode = 1;
  },
);
