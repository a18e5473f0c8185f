// Control-plane latency over the local HTTP API of a real `lva-edge run` process.
//
//   node --import tsx bench/control-plane.ts [--n 500] [--quick] [--json]
//
// Fills the module to its quotas (50 topologies, 1000 instances), then measures sequential requests on
// one keep-alive connection: GraphTopologySet (update of an existing topology: validation + atomic,
// fsynced write), GraphTopologyGet, GraphTopologyList, GraphInstanceGet, GraphInstanceList (first page),
// and, in the same run, `GET /healthz` as the baseline for what the HTTP round trip itself costs.
// Latency = request written → last byte of the reply read, on the client. Goal: median < 5 ms, p99 < 20 ms.
// --quick (smoke test): 100 instances, N=30. --json: the report's JSON as the last stdout line (bench/report.ts).
import http from 'node:http';
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { startDaemon, tempDir } from '../test/helpers/daemon.js';
import { readSample } from '../test/helpers/samples.js';
import { printReport, row, type BenchRow } from './report.js';

const { values } = parseArgs({ options: {
  n: { type: 'string' }, json: { type: 'boolean', default: false }, quick: { type: 'boolean', default: false },
} });
const N = Number(values.n ?? (values.quick ? 30 : 500));
const WARMUP = values.quick ? 5 : 50;
const TOPOLOGIES = 50;
const INSTANCES = values.quick ? 100 : 1000;

const dataDir = tempDir('lva-bench-cp-');
const daemon = await startDaemon({ dataDir });
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function request(method: 'GET' | 'POST', urlPath: string, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {};
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(body);
    }
    const req = http.request(`${daemon.url}${urlPath}`, { method, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function method(name: string, payload: unknown, expect: number[]): Promise<string> {
  const r = await request('POST', `/v1/methods/${name}`, JSON.stringify(payload));
  if (!expect.includes(r.status)) throw new Error(`${name}: HTTP ${r.status}: ${r.text.slice(0, 500)}`);
  return r.text;
}

const topologyName = (i: number) => `bench-t-${String(i).padStart(2, '0')}`;
const instanceName = (i: number) => `bench-i-${String(i).padStart(4, '0')}`;
const base = readSample('topologies/2.0/evr-motion-files.topology.json');
const topologyPayload = (i: number, description: string) => {
  const p = structuredClone(base);
  p.name = topologyName(i);
  p.properties.description = description;
  return p;
};

let exitCode = 0;
try {
  const fillStart = performance.now();
  for (let i = 0; i < TOPOLOGIES; i++) await method('GraphTopologySet', topologyPayload(i, 'initial'), [201]);
  for (let i = 0; i < INSTANCES; i++) {
    await method('GraphInstanceSet', {
      '@apiVersion': '2.0',
      name: instanceName(i),
      properties: { topologyName: topologyName(i % TOPOLOGIES), parameters: [{ name: 'rtspUrl', value: `rtsp://cam-${i}.example/stream` }] },
    }, [201]);
  }
  const fillMs = performance.now() - fillStart;

  type Case = { label: string; run: (i: number) => Promise<unknown> };
  let listPageSize = 0;
  const cases: Case[] = [
    { label: 'GET /healthz (baseline)', run: () => request('GET', '/healthz') },
    { label: 'GraphTopologySet (update)', run: (i) => method('GraphTopologySet', topologyPayload(i % TOPOLOGIES, `update-${i}`), [200]) },
    { label: 'GraphTopologyGet', run: (i) => method('GraphTopologyGet', { '@apiVersion': '2.0', name: topologyName(i % TOPOLOGIES) }, [200]) },
    { label: 'GraphTopologyList', run: () => method('GraphTopologyList', { '@apiVersion': '2.0' }, [200]) },
    { label: 'GraphInstanceGet', run: (i) => method('GraphInstanceGet', { '@apiVersion': '2.0', name: instanceName((i * 7) % INSTANCES) }, [200]) },
    { label: 'GraphInstanceList (first page)', run: () => method('GraphInstanceList', { '@apiVersion': '2.0' }, [200]) },
    // The baseline once more at the end: shows whether the machine's speed drifted during the run.
    { label: 'GET /healthz (baseline, again)', run: () => request('GET', '/healthz') },
  ];
  listPageSize = JSON.parse(await method('GraphInstanceList', { '@apiVersion': '2.0' }, [200])).payload.value.length;

  const results: Array<{ label: string; median: number; p99: number; max: number; mean: number }> = [];
  for (const c of cases) for (let i = 0; i < WARMUP; i++) await c.run(i);
  for (const c of cases) {
    const samples: number[] = [];
    for (let i = 0; i < N; i++) {
      const t0 = performance.now();
      await c.run(i);
      samples.push(performance.now() - t0);
    }
    samples.sort((a, b) => a - b);
    const q = (p: number) => samples[Math.min(samples.length - 1, Math.ceil(p * samples.length) - 1)]!;
    results.push({ label: c.label, median: q(0.5), p99: q(0.99), max: samples[samples.length - 1]!, mean: samples.reduce((a, b) => a + b, 0) / samples.length });
  }

  const baseline = results[0]!;
  const rows: BenchRow[] = [];
  for (const r of results.slice(1, -1)) {
    rows.push(row({ measure: `${r.label} median`, ours: r.median, unit: 'ms', baseline: 'GET /healthz median', baselineValue: baseline.median, goal: { on: 'ours', max: 5, strict: true } }));
    rows.push(row({ measure: `${r.label} p99`, ours: r.p99, unit: 'ms', baseline: 'GET /healthz p99', baselineValue: baseline.p99, goal: { on: 'ours', max: 20, strict: true } }));
  }
  const again = results[results.length - 1]!;
  printReport({
    bench: 'control-plane',
    title: `Control plane over HTTP (real daemon process): ${TOPOLOGIES} topologies and ${INSTANCES} instances stored; N=${N} sequential keep-alive requests per method`,
    rows,
    notes: [
      `Fill took ${(fillMs / 1000).toFixed(1)} s; GraphInstanceList first page holds ${listPageSize} of ${INSTANCES} instances.`,
      `Baseline drift: /healthz median ${baseline.median.toFixed(2)} ms at the start, ${again.median.toFixed(2)} ms at the end.`,
    ],
  }, values.json);
} catch (err) {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n${daemon.stderr()}\n`);
  exitCode = 1;
} finally {
  agent.destroy();
  const code = await daemon.stop();
  if (code !== 0) {
    process.stderr.write(`daemon exited with ${code}\n${daemon.stderr()}\n`);
    exitCode = 1;
  }
  rmSync(dataDir, { recursive: true, force: true });
}
process.exitCode = exitCode;
