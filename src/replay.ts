import { parseArgs } from 'node:util';
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { LvaError } from './api/errors.js';
import { resolveSettings } from './config/settings.js';
import { NodeTypes, type InstanceResource } from './graph/model.js';
import { resolveInstance, validateApiVersion, validateInstanceSet, validateTopologySet } from './graph/validate.js';
import { EventBus, type EventLine } from './runtime/events.js';
import { InputRouter } from './runtime/inputs.js';
import { GraphRunner } from './runtime/graph-runtime.js';
import { nodeRegistry } from './nodes/registry.js';
import './nodes/all.js';
import { createLogger } from './util/logger.js';
import { Daemon } from './daemon.js';
import { killAllFfmpegProcessesSync } from './media/ffmpeg-process.js';

/**
 * `lva-edge replay` (interfaces.md): one graph over a video file. Media time drives every rule and
 * media time 0 is `--start-time`, so the same input gives the same clips and events.
 */

export interface ReplayOptions {
  topology: unknown;
  instance?: unknown;
  params?: Record<string, string>;
  settings?: Record<string, unknown>;
  input: string;
  output: string;
  eventsFile?: string;
  realtime?: boolean;
  startTime?: string;
  /**
   * Hub messages to feed IoT Hub message sources, each delivered when media time reaches its
   * `eventTime` (so a replay can test hub-triggered recording deterministically).
   */
  messages?: ReplayMessage[];
  /** Receives each event line as it is written. */
  onEvent?: (e: EventLine) => void;
}

export interface ReplayMessage {
  inputName: string;
  /** ISO 8601; becomes the `eventTime` application property. */
  eventTime: string;
  body?: unknown;
  applicationProperties?: Record<string, string>;
}

export interface ReplayResult {
  ok: boolean;
  clips: string[];
  events: number;
  eventsFile: string;
  errors: string[];
}

export const REPLAY_URL_PLACEHOLDER = 'rtsp://replay.invalid/input';

export async function replay(opts: ReplayOptions): Promise<ReplayResult> {
  const settings = resolveSettings(opts.settings ?? {}, { dataDir: path.join(opts.output, '.state') });
  const ctx = { allowUnsecuredEndpoints: settings.allowUnsecuredEndpoints };
  const apiVersion = validateApiVersion(opts.topology);
  const topology = validateTopologySet(opts.topology, ctx);
  let instance: InstanceResource;
  if (opts.instance !== undefined) {
    validateApiVersion(opts.instance);
    instance = validateInstanceSet(opts.instance);
  } else {
    instance = validateInstanceSet({ '@apiVersion': '2.0', name: 'replay', properties: { topologyName: topology.name, parameters: [] } });
  }
  const params = new Map(instance.properties.parameters.map((p) => [p.name, p.value]));
  for (const [k, v] of Object.entries(opts.params ?? {})) params.set(k, v);
  // The RTSP URL is replaced by --input, so a URL parameter nobody supplied gets a placeholder.
  for (const src of topology.properties.sources) {
    if (src['@type'] !== NodeTypes.RtspSource) continue;
    const url = JSON.stringify((src as Record<string, unknown>).endpoint ?? '');
    for (const m of url.matchAll(/\$\{([^}]+)\}/g)) {
      const name = m[1]!;
      const decl = topology.properties.parameters.find((p) => p.name === name);
      if (decl && decl.default === undefined && !params.has(name) && /url/i.test(url)) params.set(name, REPLAY_URL_PLACEHOLDER);
    }
  }
  instance.properties.parameters = [...params].map(([name, value]) => ({ name, value }));
  const graph = resolveInstance(topology, instance, ctx, apiVersion);
  if (!graph.nodes.some((n) => n.config.type === NodeTypes.RtspSource)) {
    throw new LvaError(400, 'InvalidResource', 'Replay needs a topology with an RTSP source (its input is replaced by --input).');
  }
  await fs.access(opts.input).catch(() => {
    throw new Error(`cannot read input ${opts.input}`);
  });
  await fs.mkdir(opts.output, { recursive: true });
  const eventsFile = opts.eventsFile ?? path.join(opts.output, 'events.jsonl');
  await fs.mkdir(path.dirname(eventsFile), { recursive: true });
  const out = createWriteStream(eventsFile, { flags: 'w' });
  const startTimeMs = opts.startTime ? Date.parse(opts.startTime) : Date.parse('2020-01-01T00:00:00Z');
  if (!Number.isFinite(startTimeMs)) throw new Error(`--start-time is not an ISO 8601 time: ${opts.startTime}`);

  let runner: GraphRunner | undefined;
  // Events not tied to a media sample still get deterministic times: the newest media time seen.
  const bus = new EventBus(
    () => ({
      topic: settings.azureMediaServicesArmId ?? '/lva-edge/replay',
      diagnosticsEventsOutputName: settings.diagnosticsEventsOutputName,
      operationalEventsOutputName: settings.operationalEventsOutputName,
    }),
    () => (runner ? runner.clock.toDate(runner.mediaNow90k) : new Date(startTimeMs)),
  );
  const clips: string[] = [];
  const errors: string[] = [];
  let count = 0;
  bus.subscribe((e) => {
    count++;
    out.write(`${JSON.stringify(e)}\n`);
    const type = e.applicationProperties.eventType;
    if (type.endsWith('.RecordingAvailable') && typeof e.body.outputLocation === 'string') clips.push(e.body.outputLocation);
    // A transient upload failure that later recovered is not an error of the run; anything that lost
    // or could not finish media is.
    const storageFailure = type.endsWith('.StorageError') && e.body.code !== 'UploadFailed';
    if (type.endsWith('.RuntimeError') || storageFailure || /MediaFormatError$/.test(type) && e.body.code === 'InputUnreadable') {
      errors.push(`${type}: ${String(e.body.message ?? e.body.code ?? '')}`);
    }
    opts.onEvent?.(e);
  });
  const log = createLogger(process.stderr, (process.env.LVA_LOG_LEVEL as never) ?? 'warn');
  const inputs = new InputRouter();
  const due = (opts.messages ?? [])
    .map((m) => ({ m, at: Date.parse(m.eventTime) }))
    .filter((x) => {
      if (!Number.isFinite(x.at)) throw new Error(`replay message for '${x.m.inputName}': eventTime is not ISO 8601`);
      return true;
    })
    .sort((a, b) => a.at - b.at);
  runner = new GraphRunner(graph, {
    bus, inputs, settings: () => settings, log, registry: nodeRegistry(),
    onMediaTime: (pts90k) => {
      const nowMs = startTimeMs + pts90k / 90;
      while (due.length > 0 && due[0]!.at <= nowMs) {
        const { m, at } = due.shift()!;
        inputs.deliver({
          inputName: m.inputName, body: m.body ?? {},
          applicationProperties: { ...(m.applicationProperties ?? {}), eventTime: new Date(at).toISOString() },
          receivedAt: new Date(at),
        });
      }
    },
    replay: { input: path.resolve(opts.input), realtime: opts.realtime ?? false, outputRoot: path.resolve(opts.output), startTimeMs },
  });
  await runner.start();
  await runner.done;
  await runner.stop();
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return { ok: errors.length === 0, clips, events: count, eventsFile, errors };
}

export async function replayCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      topology: { type: 'string' },
      instance: { type: 'string' },
      param: { type: 'string', multiple: true },
      config: { type: 'string' },
      input: { type: 'string' },
      output: { type: 'string' },
      events: { type: 'string' },
      realtime: { type: 'boolean' },
      'start-time': { type: 'string' },
      messages: { type: 'string' },
    },
  });
  if (!values.topology || !values.input || !values.output) {
    process.stderr.write('lva-edge replay: --topology, --input and --output are required\n');
    return 2;
  }
  const readJson = async (f: string) => JSON.parse((await fs.readFile(f, 'utf8')).replace(/^\uFEFF/, ''));
  const params: Record<string, string> = {};
  for (const p of values.param ?? []) {
    const i = p.indexOf('=');
    if (i <= 0) {
      process.stderr.write(`lva-edge replay: --param expects NAME=VALUE, got '${p}'\n`);
      return 2;
    }
    params[p.slice(0, i)] = p.slice(i + 1);
  }
  // Ctrl-C: the ffmpeg child lives in its own process group, so take it down before exiting.
  process.once('SIGINT', () => {
    killAllFfmpegProcessesSync();
    process.exit(130);
  });
  try {
    const r = await replay({
      topology: await readJson(values.topology),
      instance: values.instance ? await readJson(values.instance) : undefined,
      params,
      settings: values.config ? await Daemon.loadConfigFile(values.config) : undefined,
      input: values.input,
      output: values.output,
      eventsFile: values.events,
      realtime: values.realtime,
      startTime: values['start-time'],
      messages: values.messages ? (await fs.readFile(values.messages, 'utf8')).split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)) : undefined,
    });
    process.stdout.write(`${JSON.stringify({ ok: r.ok, clips: r.clips, events: r.events, eventsFile: r.eventsFile, errors: r.errors })}\n`);
    return r.ok ? 0 : 1;
  } catch (err) {
    if (err instanceof LvaError) {
      process.stdout.write(`${JSON.stringify(err.toODataBody())}\n`);
      return 1;
    }
    process.stderr.write(`lva-edge replay: ${(err as Error).message}\n`);
    return 1;
  }
}
