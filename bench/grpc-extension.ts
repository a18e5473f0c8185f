// gRPC extension transport: sequential round trips per second of one 416x416 bgr24 picture (what the
// grpcExtensionOpenVINO sample sends), Embedded and SharedMemory, against the HTTP extension client
// POSTing the same picture in the same run. Both servers only acknowledge (no analysis), in this
// process, so the figures are protocol + copy costs, not inference.
//
//   node --import tsx bench/grpc-extension.ts [--quick] [--json]
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { GrpcExtensionClient } from '../src/extension/grpc/client.js';
import { HttpExtensionClient } from '../src/extension/client.js';
import { extensionService, type PbMediaStreamMessage } from '../src/extension/grpc/proto.js';
import type { EncodedImage } from '../src/media/sample.js';
import { commonFlags, printReport, row, type BenchRow } from './report.js';
import { median } from './cpu.js';

const { json, quick } = commonFlags();
const SAMPLES = quick ? 30 : 600;
const ROUNDS = quick ? 1 : 3;
const W = 416, H = 416;
const picture: EncodedImage = {
  width: W, height: H, contentType: 'image/x-raw', pixelFormat: 'bgr24', stride: W * 3,
  content: { l: 0, t: 0, w: 1, h: 1 }, data: Buffer.alloc(W * H * 3, 7),
};

async function ackServer(): Promise<{ url: string; close(): void }> {
  const server = new grpc.Server();
  server.addService(extensionService(), {
    ProcessMediaStream: (call: grpc.ServerDuplexStream<PbMediaStreamMessage, PbMediaStreamMessage>) => {
      let seq = 1;
      call.on('data', (m: PbMediaStreamMessage) => {
        if (m.media_stream_descriptor) call.write({ sequence_number: seq++, media_stream_descriptor: { extension_identifier: 'bench' } });
        else call.write({ sequence_number: seq++, ack_sequence_number: m.sequence_number, media_sample: { timestamp: m.media_sample?.timestamp ?? 0 } });
      });
      call.on('end', () => call.end());
      call.on('error', () => {});
    },
  });
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  return { url: `tcp://127.0.0.1:${port}`, close: () => server.forceShutdown() };
}

async function httpServer(): Promise<{ url: string; close(): void }> {
  const s = http.createServer((req, res) => {
    req.on('data', () => {});
    req.on('end', () => res.writeHead(204).end());
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/score`, close: () => { s.close(); s.closeAllConnections(); } };
}

async function perSecond(send: (i: number) => Promise<{ kind: string }>): Promise<number> {
  for (let i = 0; i < 5; i++) await send(i); // warm-up: session, JIT
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < SAMPLES; i++) {
    const o = await send(i);
    if (o.kind !== 'nothing') throw new Error(`unexpected outcome ${JSON.stringify(o)}`);
  }
  return SAMPLES / (Number(process.hrtime.bigint() - t0) / 1e9);
}

const g = await ackServer();
const h = await httpServer();
const results: Record<'http' | 'embedded' | 'shm', number[]> = { http: [], embedded: [], shm: [] };
try {
  for (let r = 0; r < ROUNDS; r++) {
    const hc = new HttpExtensionClient({ endpoint: { url: h.url } });
    results.http.push(await perSecond(() => hc.post(picture)));
    hc.close();
    const ec = new GrpcExtensionClient({ endpoint: { url: g.url }, graphInstanceName: 'bench', graphNodeName: 'embedded' });
    results.embedded.push(await perSecond((i) => ec.process(picture, i * 3600, undefined)));
    ec.close();
    const sc = new GrpcExtensionClient({ endpoint: { url: g.url }, graphInstanceName: 'bench', graphNodeName: 'shm', sharedMemoryBytes: 5 * 1024 * 1024 });
    results.shm.push(await perSecond((i) => sc.process(picture, i * 3600, undefined)));
    sc.close();
  }
} finally {
  g.close();
  h.close();
}
const httpRate = median(results.http);
const rows: BenchRow[] = [
  // Embedded: both protocols copy the picture onto a loopback socket once — parity within 10 %.
  row({ measure: 'gRPC Embedded round trips per second (416x416 bgr24, 519 KB)', ours: median(results.embedded), unit: 'samples/s', baseline: 'HTTP extension client, same picture', baselineValue: httpRate, goal: { on: 'ratio', min: 0.9 } }),
  // SharedMemory: one file write instead of a socket transfer — at least twice as fast.
  row({ measure: 'gRPC SharedMemory round trips per second (416x416 bgr24, 519 KB)', ours: median(results.shm), unit: 'samples/s', baseline: 'HTTP extension client, same picture', baselineValue: httpRate, goal: { on: 'ratio', min: 2 } }),
];
printReport({
  bench: 'grpc-extension',
  title: 'gRPC extension transport vs the HTTP extension: sequential round trips of one raw picture',
  rows,
  notes: [
    `${SAMPLES} sequential samples per round, median of ${ROUNDS} round(s); servers only acknowledge, in the same process (loopback).`,
    'LVA runs one sample in flight per node; these rates bound what a node can send to a fast extension.',
  ],
}, json);
