import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { startGrpcInferenceServer } from '../../src/tools/grpc-inference-server.js';
import { extensionService, type PbMediaStreamMessage } from '../../src/extension/grpc/proto.js';
import { driveGrpcExtension, redSquareBmp } from '../helpers/grpc-extension-node.js';
import { freePort } from '../helpers/ports.js';
import { makeTestPki } from '../helpers/extension-servers.js';

// The gRPC extension node against servers that are down, lie, hang or hang up — real grpc-js
// servers on loopback, the real node and client. Whatever happens: diagnostics, no crash, and the
// shared memory file is gone once the node is destroyed.

const shmFiles = () => readdirSync('/dev/shm').filter((f) => f.startsWith('lva-edge-inst-grpcExt'));
after(() => {
  assert.deepEqual(shmFiles(), [], 'no shared memory file left');
});

const events = (d: ReturnType<typeof driveGrpcExtension>) => d.emitted.filter((i) => i.kind === 'event');
const diagCodes = (d: ReturnType<typeof driveGrpcExtension>) => d.published.map((p) => `${p.name}/${p.body.errorCode}`);
const TICK = 90_000;

/** A server for the same service whose handler the test writes, optionally with a lying serializer. */
async function startCustomServer(
  handler: (call: grpc.ServerDuplexStream<PbMediaStreamMessage, PbMediaStreamMessage>) => void,
  garbageReplies = false,
): Promise<{ url: string; close(): void }> {
  const server = new grpc.Server();
  const base = extensionService();
  const def = garbageReplies
    ? { ProcessMediaStream: { ...base.ProcessMediaStream!, responseSerialize: () => Buffer.from([0x32, 0x10]) } }
    : base;
  server.addService(def as grpc.ServiceDefinition, { ProcessMediaStream: handler });
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  return { url: `tcp://127.0.0.1:${port}`, close: () => server.forceShutdown() };
}

/** Answers the descriptor, then every sample with `answer`. */
const descriptorThen = (answer: (m: PbMediaStreamMessage, call: grpc.ServerDuplexStream<PbMediaStreamMessage, PbMediaStreamMessage>) => void) =>
  (call: grpc.ServerDuplexStream<PbMediaStreamMessage, PbMediaStreamMessage>) => {
    call.on('data', (m: PbMediaStreamMessage) => {
      if (m.media_stream_descriptor) call.write({ sequence_number: 1, media_stream_descriptor: { extension_identifier: 'test' } });
      else answer(m, call);
    });
    call.on('error', () => {});
  };

describe('gRPC extension failures', () => {
  test('server down at start: NetworkError ConnectionRefused; recovers with back-off once it comes up', async () => {
    const port = await freePort();
    const d = driveGrpcExtension({ url: `tcp://127.0.0.1:${port}` });
    await d.frame(0);
    assert.deepEqual(diagCodes(d), ['NetworkError/ConnectionRefused']);
    assert.equal(events(d).length, 0);
    const srv = await startGrpcInferenceServer({ port });
    try {
      let pts = TICK;
      const deadline = Date.now() + 20_000;
      while (events(d).length === 0 && Date.now() < deadline) {
        await d.frame(pts);
        pts += TICK / 10;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(events(d).length > 0, 'inferences flow once the server is up');
      const inf = (events(d).at(-1) as any).event.inferences[0];
      assert.equal(inf.entity.tag.value, 'red');
      assert.ok(d.node.client.stats.sessions >= 2, 'a new session after the failed one');
      // Frames sent while backing off are reported once per 10 s of media, not per frame.
      assert.equal(diagCodes(d).filter((c) => c.startsWith('NetworkError')).length, 1);
    } finally {
      d.node.destroy();
      await srv.close();
    }
  });

  test('garbage replies: ProtocolError InvalidMessage, the node keeps going', async () => {
    const srv = await startCustomServer(descriptorThen((m, call) => call.write({ sequence_number: 2, ack_sequence_number: m.sequence_number })), true);
    const d = driveGrpcExtension({ url: srv.url });
    try {
      await d.frame(0);
      await d.frame(TICK);
      assert.equal(events(d).length, 0);
      assert.ok(diagCodes(d).includes('ProtocolError/InvalidMessage'), diagCodes(d).join());
      assert.equal(d.published.find((p) => p.body.errorCode === 'InvalidMessage')!.body.protocol, 'grpc');
    } finally {
      d.node.destroy();
      srv.close();
    }
  });

  test('the server ends the stream: ProtocolError StreamEnded; a later sample opens a new session', async () => {
    let sessions = 0;
    const srv = await startCustomServer((call) => {
      sessions++;
      call.on('data', () => call.end());
      call.on('error', () => {});
    });
    const d = driveGrpcExtension({ url: srv.url });
    try {
      await d.frame(0);
      assert.deepEqual(diagCodes(d), ['ProtocolError/StreamEnded']);
      await new Promise((r) => setTimeout(r, 700));
      await d.frame(11 * TICK);
      assert.equal(sessions, 2);
      assert.equal(events(d).length, 0);
    } finally {
      d.node.destroy();
      srv.close();
    }
  });

  test('inferences without a value and acks for unknown samples: reported/ignored, good ones still published', async () => {
    const srv = await startCustomServer(descriptorThen((m, call) => {
      call.write({ sequence_number: 9, ack_sequence_number: 999, media_sample: { inferences: [{ type: 'ENTITY', entity: { tag: { value: 'ghost' }, box: {} } }] } });
      call.write({ sequence_number: 10, ack_sequence_number: m.sequence_number, media_sample: { inferences: [{ type: 'ENTITY' }, { type: 'AUTO', event: { name: 'hello', properties: { a: 'b' } } }] } });
    }));
    const d = driveGrpcExtension({ url: srv.url });
    try {
      await d.frame(0);
      const ev = events(d);
      assert.equal(ev.length, 1);
      assert.deepEqual((ev[0] as any).event.inferences, [{ type: 'event', event: { name: 'hello', properties: { a: 'b' } } }]);
      assert.deepEqual(diagCodes(d), ['ProtocolError/InvalidInference']);
      assert.equal(d.node.client.stats.unexpectedAcks, 1);
    } finally {
      d.node.destroy();
      srv.close();
    }
  });

  test('wrong credentials: AuthenticationError; the password never appears in what is published', async () => {
    const srv = await startGrpcInferenceServer({ auth: { username: 'u', password: 'right-pass' } });
    const d = driveGrpcExtension({ url: srv.url, endpoint: { url: srv.url, credentials: { kind: 'usernamePassword', username: 'u', password: 's3cret-wrong' } } });
    try {
      await d.frame(0);
      assert.deepEqual(diagCodes(d), ['AuthenticationError/Unauthenticated']);
      assert.ok(!JSON.stringify(d.published).includes('s3cret-wrong'));
    } finally {
      d.node.destroy();
      await srv.close();
    }
  });

  test('shared memory: a 0600 file in /dev/shm while the session lives; a server that never acknowledges → Timeout, then SharedMemoryFull; removed on destroy', async () => {
    process.env.LVA_GRPC_EXTENSION_TIMEOUT_MS = '300';
    const srv = await startCustomServer(descriptorThen(() => { /* never answers samples */ }));
    const d = driveGrpcExtension({ url: srv.url, dataTransfer: { mode: 'SharedMemory', sharedMemorySizeMiB: 1 } });
    try {
      const big = redSquareBmp(300, 300); // 270 KiB: three fit in 1 MiB
      for (let i = 0; i < 4; i++) await d.frame(i * 11 * TICK, big);
      const file = d.node.client.sharedMemoryPath!;
      assert.ok(file.startsWith('/dev/shm/lva-edge-inst-grpcExt'));
      const st = statSync(file);
      assert.equal(st.mode & 0o777, 0o600);
      assert.equal(st.size, 1024 * 1024);
      assert.deepEqual(diagCodes(d), ['NetworkError/Timeout', 'NetworkError/Timeout', 'NetworkError/Timeout', 'ProtocolError/SharedMemoryFull']);
      assert.equal(d.node.client.stats.shmFull, 1);
    } finally {
      delete process.env.LVA_GRPC_EXTENSION_TIMEOUT_MS;
      d.node.destroy();
      srv.close();
    }
    assert.deepEqual(shmFiles(), []);
  });

  test('RESOURCE_EXHAUSTED = busy: sampling backs off 2 s of media time, then a new session', async () => {
    let sessions = 0;
    const srv = await startCustomServer((call) => {
      sessions++;
      const n = sessions;
      call.on('data', (m: PbMediaStreamMessage) => {
        if (m.media_stream_descriptor) call.write({ sequence_number: 1, media_stream_descriptor: { extension_identifier: 'test' } });
        else if (n === 1) call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: 'queue full' });
        else call.write({ sequence_number: 2, ack_sequence_number: m.sequence_number });
      });
      call.on('error', () => {});
    });
    const d = driveGrpcExtension({ url: srv.url });
    try {
      await d.frame(0);
      assert.equal(d.node.stats.busy503, 1);
      assert.deepEqual(diagCodes(d), ['ProtocolError/ResourceExhausted']);
      await d.frame(TICK);
      assert.equal(d.node.stats.skippedBackoff, 1, 'inside the 2 s back-off');
      await new Promise((r) => setTimeout(r, 700));
      await d.frame(3 * TICK);
      assert.equal(d.node.stats.empty, 1, 'answered on a new session');
      assert.equal(sessions, 2);
    } finally {
      d.node.destroy();
      srv.close();
    }
  });

  test('TLS: trustedCertificates verify the server; a different CA is a ProtocolError with protocol tls', async () => {
    const pki = makeTestPki();
    const srv = await startGrpcInferenceServer({ tls: { cert: pki.serverCert, key: pki.serverKey } });
    const url = `tcp://localhost:${srv.port}`;
    const good = driveGrpcExtension({ url, endpoint: { url, tls: { trustedCertificates: [pki.caCert], ignoreHostname: false, ignoreSignature: false } } });
    const bad = driveGrpcExtension({ url, endpoint: { url, tls: { trustedCertificates: [pki.otherCaCert], ignoreHostname: false, ignoreSignature: false } } });
    try {
      await good.frame(0);
      assert.equal(events(good).length, 1, good.published.map((p) => JSON.stringify(p.body)).join());
      await bad.frame(0);
      assert.equal(events(bad).length, 0);
      assert.equal(bad.published.length, 1);
      assert.equal(bad.published[0]!.name, 'ProtocolError');
      assert.equal(bad.published[0]!.body.protocol, 'tls', JSON.stringify(bad.published[0]!.body));
    } finally {
      good.node.destroy();
      bad.node.destroy();
      await srv.close();
    }
  });

  test('live: frames arriving while a sample is in flight are dropped (droppedBusy), never queued', async () => {
    const srv = await startCustomServer(descriptorThen((m, call) => setTimeout(() => call.write({ sequence_number: 2, ack_sequence_number: m.sequence_number }), 200)));
    const d = driveGrpcExtension({ url: srv.url }, { replay: false });
    try {
      for (let i = 0; i < 5; i++) assert.equal(d.frame(i * 3600), undefined, 'live never blocks the link');
      assert.equal(d.node.stats.requests, 1);
      assert.equal(d.node.stats.droppedBusy, 4);
      await d.node.handle(0, { kind: 'eos' });
      assert.equal(d.node.stats.empty, 1);
    } finally {
      d.node.destroy();
      srv.close();
    }
  });
});
