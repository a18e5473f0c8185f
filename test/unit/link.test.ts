import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Link } from '../../src/runtime/link.js';
import type { Item, ItemKind } from '../../src/nodes/node.js';
import type { TrackInfo } from '../../src/media/sample.js';

const video: TrackInfo = { id: 1, kind: 'video', codec: 'h264', codecString: 'avc1.64001f', timescale: 90000, sampleEntry: Buffer.alloc(0) };
const audio: TrackInfo = { id: 2, kind: 'audio', codec: 'aac', codecString: 'mp4a.40.2', timescale: 48000, sampleEntry: Buffer.alloc(0) };
const sample = (track: TrackInfo, pts: number): Item => ({ kind: 'sample', sample: { track, dts: pts, pts, duration: 1, keyframe: true, pts90k: pts, data: Buffer.alloc(1) } });
const frame = (pts: number): Item => ({ kind: 'frame', frame: { pts90k: pts, width: 1, height: 1, format: 'gray', data: new Uint8Array(1) } });
const all = new Set<ItemKind>(['init', 'sample', 'frame', 'event', 'activation', 'watermark', 'eos']);

function collect(opts: { selectors?: any[]; accepts?: Set<ItemKind>; policy?: 'lossless' | 'drop-oldest'; limit?: number; slow?: () => Promise<void> }) {
  const got: Array<{ item: Item; lost: boolean }> = [];
  const drops: Array<{ n: number; reason: string }> = [];
  const link = new Link('a', 'b', 0, opts.selectors ?? [], opts.accepts ?? all, opts.policy ?? 'lossless',
    async (_p, item, lost) => { if (opts.slow) await opts.slow(); got.push({ item, lost }); },
    (_l, n, reason) => drops.push({ n, reason }), opts.limit);
  return { link, got, drops };
}

describe('Link', () => {
  test('delivers in order', async () => {
    const { link, got } = collect({});
    for (let i = 0; i < 100; i++) link.push(sample(video, i));
    await link.idle();
    assert.deepEqual(got.map((g) => (g.item as any).sample.pts), [...Array(100).keys()]);
  });

  test('output selectors: is video drops audio and narrows init; isNot application keeps both', async () => {
    const v = collect({ selectors: [{ property: 'mediaType', operator: 'is', value: 'video' }] });
    v.link.push({ kind: 'init', tracks: [video, audio] });
    v.link.push(sample(video, 1));
    v.link.push(sample(audio, 2));
    v.link.push({ kind: 'eos' });
    await v.link.idle();
    assert.deepEqual(v.got.map((g) => g.item.kind), ['init', 'sample', 'eos']);
    assert.deepEqual((v.got[0]!.item as any).tracks.map((t: TrackInfo) => t.kind), ['video']);
    const av = collect({ selectors: [{ property: 'mediaType', operator: 'isNot', value: 'application' }] });
    av.link.push(sample(video, 1));
    av.link.push(sample(audio, 2));
    await av.link.idle();
    assert.equal(av.got.length, 2);
  });

  test('caps: items the consumer does not accept are filtered, but eos always passes', async () => {
    const { link, got } = collect({ accepts: new Set<ItemKind>(['event']) });
    link.push(sample(video, 1));
    link.push(frame(1));
    link.push({ kind: 'eos' });
    await link.idle();
    assert.deepEqual(got.map((g) => g.item.kind), ['eos']);
  });

  test('drop-oldest: a slow analysis consumer loses the oldest frames, counted, never events or eos', async () => {
    let release!: () => void;
    let wait = new Promise<void>((r) => (release = r));
    const { link, got, drops } = collect({ policy: 'drop-oldest', limit: 3, slow: () => wait });
    for (let i = 0; i < 10; i++) link.push(frame(i));
    link.push({ kind: 'eos' });
    release();
    wait = Promise.resolve();
    await link.idle();
    const frames = got.filter((g) => g.item.kind === 'frame').map((g) => (g.item as any).frame.pts90k);
    assert.equal(got.at(-1)!.item.kind, 'eos');
    assert.ok(frames.length < 10);
    assert.equal(frames.length + link.stats.dropped, 10);
    assert.equal(drops.reduce((a, d) => a + d.n, 0), link.stats.dropped);
    assert.deepEqual(frames, [...frames].sort((a, b) => a - b), 'order kept');
    assert.equal(frames.at(-1), 9, 'the newest frame survives');
  });

  test('lossless overflow: backlog discarded whole, reported, state items kept, next sample flagged', async () => {
    let release!: () => void;
    const wait = new Promise<void>((r) => (release = r));
    const { link, got, drops } = collect({ limit: 5, slow: () => wait });
    link.push(sample(video, 0)); // in flight
    link.push({ kind: 'activation', phase: 'start', id: 1, requestedStart90k: 0, firstEvent90k: 0 });
    for (let i = 1; i <= 10; i++) link.push(sample(video, i));
    release();
    await link.idle();
    assert.ok(drops.length >= 1);
    assert.ok(drops.every((d) => d.reason === 'overflow'));
    assert.equal(link.stats.overflows, drops.length);
    assert.ok(got.some((g) => g.item.kind === 'activation'), 'activation boundary kept');
    const firstAfter = got.find((g) => g.lost);
    assert.ok(firstAfter, 'the consumer is told data was lost');
  });
});
