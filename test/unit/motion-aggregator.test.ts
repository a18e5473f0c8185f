import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { MotionEventAggregator } from '../../src/media/motion-aggregator.js';

const T = 1_000_000; // media clock origin
const ms = (v: number) => T + v * 90;
const A = { l: 0.1, t: 0.2, w: 0.1, h: 0.1 };
const B = { l: 0.15, t: 0.25, w: 0.1, h: 0.1 }; // overlaps A
const C = { l: 0.7, t: 0.7, w: 0.05, h: 0.05 }; // apart

describe('MotionEventAggregator', () => {
  test('window 0: one event per motion frame, none for quiet frames', () => {
    const agg = new MotionEventAggregator({ windowMs: 0, outputMotionRegion: true });
    assert.deepEqual(agg.add(ms(0), []), []);
    assert.deepEqual(agg.add(ms(100), [A, C]), [
      { timestamp90k: ms(100), inferences: [{ type: 'motion', motion: { box: A } }, { type: 'motion', motion: { box: C } }] },
    ]);
    assert.deepEqual(agg.add(ms(200), [B]), [{ timestamp90k: ms(200), inferences: [{ type: 'motion', motion: { box: B } }] }]);
    assert.deepEqual(agg.flush(), []);
  });

  test('window 1 s: merged event stamped with the first motion frame, emitted at start + 1 s', () => {
    const agg = new MotionEventAggregator({ windowMs: 1000, outputMotionRegion: true });
    assert.deepEqual(agg.add(ms(0), []), []);
    assert.deepEqual(agg.add(ms(100), [A]), []);
    assert.deepEqual(agg.add(ms(500), [B, C]), []);
    assert.deepEqual(agg.add(ms(900), []), []);
    assert.deepEqual(agg.add(ms(1099), [A]), [], 'still inside [100, 1100)');
    const out = agg.add(ms(1100), []);
    assert.equal(out.length, 1);
    assert.equal(out[0].timestamp90k, ms(100));
    // A and B overlap → their union; C stays separate; largest first.
    assert.deepEqual(out[0].inferences, [
      { type: 'motion', motion: { box: { l: 0.1, t: 0.2, w: 0.15, h: 0.15 } } },
      { type: 'motion', motion: { box: C } },
    ]);
    assert.deepEqual(agg.flush(), [], 'window already closed');
  });

  test('window 1 s: the frame that closes a window can open the next one', () => {
    const agg = new MotionEventAggregator({ windowMs: 1000, outputMotionRegion: true });
    agg.add(ms(0), [A]);
    const closed = agg.add(ms(1000), [C]);
    assert.deepEqual(closed.map((e) => e.timestamp90k), [ms(0)]);
    assert.deepEqual(closed[0].inferences, [{ type: 'motion', motion: { box: A } }]);
    const rest = agg.flush();
    assert.deepEqual(rest, [{ timestamp90k: ms(1000), inferences: [{ type: 'motion', motion: { box: C } }] }]);
  });

  test('flush emits an open window; time going backwards closes it', () => {
    const agg = new MotionEventAggregator({ windowMs: 1000, outputMotionRegion: true });
    agg.add(ms(0), [A]);
    assert.deepEqual(agg.add(ms(-5000), []).map((e) => e.timestamp90k), [ms(0)]);
    agg.add(ms(10), [C]);
    assert.deepEqual(agg.flush().map((e) => e.timestamp90k), [ms(10)]);
    assert.deepEqual(agg.flush(), []);
  });

  test('outputMotionRegion false: exactly one inference without a box', () => {
    for (const windowMs of [0, 1000]) {
      const agg = new MotionEventAggregator({ windowMs, outputMotionRegion: false });
      const out = [...agg.add(ms(0), [A, C]), ...agg.add(ms(40), [B]), ...agg.add(ms(2000), []), ...agg.flush()];
      const expected = windowMs === 0 ? [ms(0), ms(40)] : [ms(0)];
      assert.deepEqual(out.map((e) => e.timestamp90k), expected, `window ${windowMs}`);
      for (const e of out) assert.deepEqual(e.inferences, [{ type: 'motion', motion: {} }]);
    }
  });

  test('boxes are rounded to 6 decimals and clamped to the frame', () => {
    const agg = new MotionEventAggregator({ windowMs: 0, outputMotionRegion: true });
    const [e] = agg.add(ms(0), [{ l: 0.123456789, t: -0.2, w: 0.9999999, h: 1.7 }]);
    const box = e.inferences[0].motion.box!;
    assert.deepEqual(box, { l: 0.123457, t: 0, w: 0.876543, h: 1 });
    assert.ok(box.l + box.w <= 1);
  });

  test('rejects a negative window', () => {
    assert.throws(() => new MotionEventAggregator({ windowMs: -1, outputMotionRegion: true }), RangeError);
  });
});
