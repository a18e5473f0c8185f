import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { prng } from '../helpers/prng.js';
import { startLoopbackServer } from '../helpers/extension-servers.js';
import { driveExtension } from '../helpers/extension-node.js';

// 1,000 malformed extension replies (seeded): bad JSON, wrong shapes, huge bodies, wrong content
// types, wrong statuses — through a real loopback server, the real client, the schema validation and
// the real extension node. Nothing may throw, nothing malformed may reach the graph as an inference
// event, and every kind of bad reply produces its diagnostics event.

const TOTAL = 1000;
const rnd = prng(0x1ec7);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
const valid = { inferences: [{ type: 'entity', entity: { tag: { value: 'truck', confidence: 0.9 }, box: { l: 0.1, t: 0.2, w: 0.3, h: 0.4 } } }] };

function randomJson(depth = 0): unknown {
  const r = rnd();
  if (depth > 3 || r < 0.3) return pick([null, true, 0, -1, 1.5, 'x', '', 1e308]);
  if (r < 0.6) return Array.from({ length: Math.floor(rnd() * 4) }, () => randomJson(depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = 0; i < Math.floor(rnd() * 4); i++) o[pick(['inferences', 'type', 'entity', 'box', 'tag', 'l', 'value', 'zz'])] = randomJson(depth + 1);
  return o;
}

/** Wrong shapes: start from a valid reply and break one thing. */
function wrongShape(): unknown {
  const v = structuredClone(valid) as any;
  const inf = v.inferences[0];
  switch (Math.floor(rnd() * 9)) {
    case 0: inf.type = pick(['car', '', 42, null]); break;
    case 1: delete inf.entity; break;
    case 2: inf.entity.box.l = pick([-0.1, 1.5, '0.2', null]); break;
    case 3: inf.entity.tag.confidence = pick([2, -1, 'high']); break;
    case 4: inf.entity.extra = 1; break;
    case 5: v.inferences = pick([{}, 'x', null, 7]); break;
    case 6: inf.motion = { box: inf.entity.box }; break;
    case 7: delete inf.entity.tag; break;
    default: { const j = randomJson(); return j !== null && typeof j === 'object' && !Array.isArray(j) && 'inferences' in j ? { inferences: [1] } : j; }
  }
  return v;
}

type Kind = 'InvalidJson' | 'InvalidInferenceSchema' | 'ResponseTooLarge' | 'UnexpectedContentType' | 'HttpStatus';

function badReply(): { kind: Kind; send: (res: ServerResponse) => void } {
  const r = rnd();
  if (r < 0.3) {
    const text = JSON.stringify(valid);
    const body = pick([
      () => text.slice(0, Math.floor(rnd() * (text.length - 1))),
      () => Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 200) }, () => Math.floor(rnd() * 256))).toString('latin1') + '{',
      () => "{'inferences': []}",
      () => text + '}',
      () => 'NaN',
    ])();
    return { kind: 'InvalidJson', send: (res) => res.writeHead(200, { 'content-type': 'application/json' }).end(body) };
  }
  if (r < 0.6) {
    const body = JSON.stringify(wrongShape());
    return { kind: 'InvalidInferenceSchema', send: (res) => res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(body) };
  }
  if (r < 0.63) {
    return {
      kind: 'ResponseTooLarge',
      send: (res) => {
        res.on('error', () => {});
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"inferences":[');
        res.end(Buffer.alloc(1024 * 1024 + 10, 0x20));
      },
    };
  }
  if (r < 0.85) {
    const type = pick(['text/html', 'application/xml', 'text/plain', 'application/octet-stream', 'image/jpeg']);
    const body = pick(['<html>oops</html>', JSON.stringify(valid), 'x'.repeat(Math.floor(rnd() * 100) + 1)]);
    return { kind: 'UnexpectedContentType', send: (res) => res.writeHead(200, { 'content-type': type }).end(body) };
  }
  const status = pick([400, 404, 418, 500, 502]);
  return { kind: 'HttpStatus', send: (res) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(valid)) };
}

after(() => {});

test(`${TOTAL} malformed replies: no crash, no bad inference event, a diagnostics event for every kind`, async () => {
  const plan = Array.from({ length: TOTAL }, () => badReply());
  const s = await startLoopbackServer((_req, _body, res, n) => plan[n]!.send(res));
  const ext = driveExtension({ url: s.url });
  // Frames 11 s of media time apart, so the 10 s per-kind repeat limit lets every reply report.
  for (let i = 0; i < TOTAL; i++) await ext.frame(i * 11 * 90_000);
  await ext.node.stop();
  ext.node.destroy();
  await s.close();

  assert.equal(s.requests.length, TOTAL);
  const counts = new Map<Kind, number>();
  for (const p of plan) counts.set(p.kind, (counts.get(p.kind) ?? 0) + 1);
  const codes = new Map<string, number>();
  for (const p of ext.published) codes.set(String(p.body.errorCode), (codes.get(String(p.body.errorCode)) ?? 0) + 1);
  for (const kind of ['InvalidJson', 'InvalidInferenceSchema', 'ResponseTooLarge', 'UnexpectedContentType'] as const) {
    assert.ok((counts.get(kind) ?? 0) > 0, `plan has ${kind}`);
    assert.equal(codes.get(kind), counts.get(kind), `one ${kind} diagnostics event per reply`);
  }
  const statusEvents = [...codes].filter(([c]) => /^\d{3}$/.test(c)).reduce((n, [, v]) => n + v, 0);
  assert.equal(statusEvents, counts.get('HttpStatus'));
  assert.ok(ext.published.every((p) => p.eventClass === 'Diagnostics' && p.name === 'ProtocolError'));
  // Only the non-JSON replies are forwarded (as opaque 'other' inferences, lva-spec §5.1).
  const events = ext.emitted.filter((i) => i.kind === 'event');
  assert.equal(events.length, counts.get('UnexpectedContentType'));
  for (const e of events) {
    assert.ok(e.kind === 'event');
    assert.deepEqual(e.event.inferences!.map((x) => x.type), ['other']);
  }
  assert.equal(ext.node.stats.errors, TOTAL - counts.get('UnexpectedContentType')!);
  // The watermark moved past every frame: nothing stays held behind a bad reply.
  const wms = ext.emitted.filter((i) => i.kind === 'watermark');
  assert.equal(wms.at(-1)?.kind === 'watermark' && wms.at(-1)!.pts90k, (TOTAL - 1) * 11 * 90_000);
});
