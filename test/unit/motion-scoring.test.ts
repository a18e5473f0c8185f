// The motion accuracy bench's judge (bench/motion-accuracy.ts `score`): onset, gaps, recall,
// precision and false events of report times against ground-truth intervals, tolerance ±0.5 s.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { score } from '../../bench/motion-accuracy.js';

const every = (from: number, to: number, step: number) => {
  const out: number[] = [];
  for (let t = from; t <= to + 1e-9; t += step) out.push(Math.round(t * 1000) / 1000);
  return out;
};
const close = (a: number | null | undefined, b: number) => assert.ok(a !== null && a !== undefined && Math.abs(a - b) < 1e-6, `${a} ≠ ${b}`);

describe('motion accuracy scoring', () => {
  test('a perfect detector: onset 0, no gap beyond the report spacing, recall and precision 1, no false event', () => {
    const m = score(every(3, 10, 0.1), [[3, 10]], 13);
    close(m.onsets[0], 0);
    assert.ok(m.maxGaps[0]! <= 0.1 + 1e-9);
    close(m.recall, 1);
    close(m.precision, 1);
    assert.equal(m.falseEvents, 0);
    assert.equal(m.falseEventsPerHour, 0);
  });

  test('late onset and a gap in the middle are measured', () => {
    const reports = [...every(3.8, 5, 0.1), ...every(7.5, 10, 0.1)];
    const m = score(reports, [[3, 10]], 13);
    close(m.onsets[0], 0.8);
    close(m.maxGaps[0], 2.5);
    // Instants 3.0–3.2 and 5.6–7.0 have no report within 0.5 s.
    assert.ok(m.recall! > 0.7 && m.recall! < 0.8, `recall ${m.recall}`);
    close(m.precision, 1);
  });

  test('a report up to 0.5 s before the start counts (onset 0); one more than 0.5 s before does not', () => {
    close(score([2.6, 3.1], [[3, 10]], 13).onsets[0], 0);
    const early = score([2.4], [[3, 10]], 13);
    assert.equal(early.onsets[0], null, 'a report 0.6 s early found the interval');
    assert.equal(early.falseEvents, 1);
  });

  test('the gap to the end of the interval counts: reports that stop early leave a gap', () => {
    const m = score(every(3, 6, 0.1), [[3, 10]], 13);
    close(m.maxGaps[0], 4);
  });

  test('a missed interval: onset and gap null, recall 0', () => {
    const m = score([], [[3, 10]], 13);
    assert.deepEqual(m.onsets, [null]);
    assert.deepEqual(m.maxGaps, [null]);
    close(m.recall, 0);
    assert.equal(m.precision, null);
  });

  test('reports after the object stopped: a tail joined to the interval lowers precision but is no false event', () => {
    const m = score([...every(3, 10, 0.1), ...every(10.1, 12, 0.1)], [[3, 10]], 13);
    assert.equal(m.falseEvents, 0);
    assert.ok(m.precision! < 0.85 && m.precision! > 0.7, `precision ${m.precision}`);
  });

  test('false events: runs of reports split by gaps over 2 s, per hour of clip', () => {
    const m = score([1, 1.5, 2.0, 5, 5.2, 9.5], [], 20);
    assert.equal(m.falseEvents, 3);
    close(m.falseEventsPerHour, 3 * 180);
    close(m.precision, 0);
    assert.equal(m.recall, null);
  });

  test('report order does not matter', () => {
    const r = [...every(3.2, 9.9, 0.3), 0.5, 14];
    assert.deepEqual(score([...r].reverse(), [[3, 10]], 20), score(r, [[3, 10]], 20));
  });
});
