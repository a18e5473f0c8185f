import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { DurationSyntaxError, formatDuration, parseDuration, tryParseDuration } from '../../src/graph/duration.js';
import {
  expandSystemVariables,
  formatSystemDateTime,
  formatSystemPreciseDateTime,
  hasUnresolvedTokens,
  parseParameterValue,
  scanTokens,
  substituteTokens,
} from '../../src/graph/params.js';

describe('ISO 8601 durations', () => {
  const valid: Array<[string, number]> = [
    ['PT0S', 0],
    ['PT1S', 1000],
    ['PT30S', 30_000],
    ['PT0.5S', 500],
    ['PT1M30S', 90_000],
    ['PT5M', 300_000],
    ['PT1H', 3_600_000],
    ['-PT5S', -5000],
    ['-PT0.25S', -250],
    ['P1D', 86_400_000],
    ['P1W', 604_800_000],
    ['P1DT1H', 90_000_000],
    ['PT1.5M', 90_000],
    ['PT0.001S', 1],
  ];
  for (const [text, ms] of valid) test(`${text} = ${ms} ms`, () => assert.equal(parseDuration(text), ms));

  test('-PT0S is zero, not negative zero', () => assert.ok(Object.is(parseDuration('-PT0S'), 0)));

  const malformed = ['', 'P', 'PT', '-P', 'P1DT', '5S', 'PT5', 'PTS', 'PT.5S', 'PT5.S', 'PT0,5S', 'pt5s', 'PT5S ', ' PT5S', 'P1Y', 'P2M', 'PT1.5M30S', 'PT5S5S', 'PT1S1M', '+PT5S', '--PT5S', 'PT-5S'];
  for (const text of malformed) {
    test(`rejects ${JSON.stringify(text)}`, () => {
      assert.throws(() => parseDuration(text), DurationSyntaxError);
      assert.equal(tryParseDuration(text), undefined);
    });
  }

  test('years and months are explained', () => assert.throws(() => parseDuration('P1Y'), /no fixed length/));

  test('formatDuration round-trips', () => {
    for (const ms of [0, 500, 1000, 90_000, 3_600_000, -5000, 3_723_500]) assert.equal(parseDuration(formatDuration(ms)), ms);
    assert.equal(formatDuration(90_000), 'PT1M30S');
    assert.equal(formatDuration(-5000), '-PT5S');
  });
});

describe('parameter tokens', () => {
  test('scanTokens finds whole-value and embedded tokens in order', () => {
    assert.deepEqual(scanTokens('${rtspUrl}'), ['rtspUrl']);
    assert.deepEqual(scanTokens('sampleFilesFromEVR-${fileSinkOutputName}-${System.DateTime}'), ['fileSinkOutputName', 'System.DateTime']);
    assert.deepEqual(scanTokens('no tokens $ {x} ${'), []);
    assert.deepEqual(scanTokens('${}'), ['']);
  });

  test('substitution is textual, single pass, and keeps unknown tokens', () => {
    const values: Record<string, string> = { a: 'A', b: '${a}' };
    const lookup = (n: string) => values[n];
    assert.equal(substituteTokens('x-${a}-${b}-${c}', lookup), 'x-A-${a}-${c}');
    assert.equal(substituteTokens('plain', lookup), 'plain');
  });

  test('hasUnresolvedTokens ignores the run-time date-time variables only', () => {
    assert.equal(hasUnresolvedTokens('clip-${System.DateTime}-${System.PreciseDateTime}'), false);
    assert.equal(hasUnresolvedTokens('clip-${System.GraphInstanceName}'), true);
    assert.equal(hasUnresolvedTokens('${x}'), true);
  });

  test('System date-time formats', () => {
    const d = new Date('2020-05-21T05:37:26.042Z');
    assert.equal(formatSystemDateTime(d), '20200521T053726Z');
    assert.equal(formatSystemPreciseDateTime(d), '20200521T053726.042Z');
  });

  test('expandSystemVariables expands all four System variables and nothing else', () => {
    const out = expandSystemVariables('${System.GraphTopologyName}/${System.GraphInstanceName}-${System.DateTime}-${System.PreciseDateTime}-${other}', {
      now: new Date('2021-01-02T03:04:05.006Z'),
      topologyName: 'Topo',
      instanceName: 'cam-1',
    });
    assert.equal(out, 'Topo/cam-1-20210102T030405Z-20210102T030405.006Z-${other}');
  });
});

describe('typed parameter values', () => {
  const cases: Array<[Parameters<typeof parseParameterValue>[0], string, string | null]> = [
    ['String', 'anything ${x}', 'anything ${x}'],
    ['SecretString', '', ''],
    ['Int', '42', '42'],
    ['Int', '-7', '-7'],
    ['Int', '+007', '7'],
    ['Int', '2147483647', '2147483647'],
    ['Int', '-2147483648', '-2147483648'],
    ['Int', '2147483648', null],
    ['Int', '1.5', null],
    ['Int', '1e3', null],
    ['Int', '', null],
    ['Int', 'ten', null],
    ['Double', '0.1', '0.1'],
    ['Double', '-1e3', '-1e3'],
    ['Double', '.5', '.5'],
    ['Double', '1e999', null],
    ['Double', 'NaN', null],
    ['Double', 'Infinity', null],
    ['Double', '0x10', null],
    ['Bool', 'true', 'true'],
    ['Bool', 'TRUE', 'true'],
    ['Bool', 'False', 'false'],
    ['Bool', 'yes', null],
    ['Bool', '1', null],
  ];
  for (const [type, value, expected] of cases) {
    test(`${type} ${JSON.stringify(value)} → ${expected === null ? 'rejected' : JSON.stringify(expected)}`, () => {
      const r = parseParameterValue(type, value);
      if (expected === null) assert.equal(r.ok, false);
      else assert.deepEqual(r, { ok: true, text: expected });
    });
  }
});
