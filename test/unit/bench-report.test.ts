// The benchmark result contract (bench/report.ts) and bench/results.md rendering — pure functions.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  goalText, meetsGoal, parseReportLine, renderResultsMarkdown, row, type BenchOutcome, type BenchReport, type MachineInfo,
} from '../../bench/report.js';
import { BENCHES, HELPERS, unlistedBenches } from '../../bench/run-all.js';

const machine: MachineInfo = {
  cpu: 'Test CPU @ 2.0GHz', cores: 2, memoryGiB: 7.75, os: 'Debian GNU/Linux 12 (bookworm)', node: 'v20.20.2',
  ffmpeg: 'ffmpeg version 5.1.9-0+deb12u1', date: '2026-11-27T17:00:00.000Z', commit: 'abc1234',
};

describe('rows and goals', () => {
  test('ratio is ours ÷ baseline; none without a baseline or with a zero baseline', () => {
    assert.equal(row({ measure: 'm', ours: 3, unit: 's', baseline: 'b', baselineValue: 2 }).ratio, 1.5);
    assert.equal(row({ measure: 'm', ours: 3, unit: 's' }).ratio, null);
    assert.equal(row({ measure: 'm', ours: 3, unit: 's', baseline: 'b', baselineValue: 0 }).ratio, null);
    assert.equal(row({ measure: 'm', ours: 3, unit: 's' }).baseline, '');
  });

  test('goal text and pass, inclusive and strict, on ratio and on ours', () => {
    assert.equal(goalText({ on: 'ratio', max: 1.2 }, 's'), 'ratio ≤ 1.2');
    assert.equal(goalText({ on: 'ours', max: 5, strict: true }, 'ms'), '< 5 ms');
    assert.equal(goalText({ on: 'ours', min: 0.9 }, ''), '≥ 0.9');
    assert.equal(goalText(undefined, 'ms'), '');
    assert.equal(meetsGoal({ on: 'ratio', max: 1.2 }, 99, 1.2), true);
    assert.equal(meetsGoal({ on: 'ratio', max: 1.2 }, 0, 1.21), false);
    assert.equal(meetsGoal({ on: 'ours', max: 5, strict: true }, 5, null), false);
    assert.equal(meetsGoal({ on: 'ours', max: 5, strict: true }, 4.99, null), true);
    assert.equal(meetsGoal({ on: 'ours', min: 0.9 }, 0.89, null), false);
    assert.equal(meetsGoal({ on: 'ratio', max: 1 }, 1, null), null, 'a ratio goal without a ratio cannot be judged');
    assert.equal(meetsGoal(undefined, 1, 1), null);
    const r = row({ measure: 'cpu', ours: 1.3, unit: 's', baseline: 'ffmpeg', baselineValue: 1, goal: { on: 'ratio', max: 1.2 } });
    assert.equal(r.pass, false);
    assert.equal(r.goal, 'ratio ≤ 1.2');
  });
});

describe('parseReportLine', () => {
  const good: BenchReport = { bench: 'x', title: 'T', rows: [row({ measure: 'm', ours: 1, unit: 'ms' })], notes: ['n'] };

  test('takes the last non-empty stdout line', () => {
    const r = parseReportLine(`human text\n{"not":"this"}\n${JSON.stringify(good)}\n\n`, 'x');
    assert.deepEqual(r, good);
  });

  test('explains what is wrong otherwise', () => {
    assert.match(parseReportLine('', 'x') as string, /no output/);
    assert.match(parseReportLine('just text', 'x') as string, /not JSON/);
    assert.match(parseReportLine('[1]', 'x') as string, /not a JSON object/);
    assert.match(parseReportLine(JSON.stringify({ ...good, bench: 'y' }), 'x') as string, /expected "x"/);
    assert.match(parseReportLine(JSON.stringify({ ...good, rows: [{ measure: 'm', ours: '1' }] }), 'x') as string, /rows\[0\]/);
    assert.match(parseReportLine(JSON.stringify({ ...good, rows: 'no' }), 'x') as string, /"rows"/);
    // notes are optional
    const { notes: _n, ...noNotes } = good;
    assert.deepEqual((parseReportLine(JSON.stringify(noNotes), 'x') as BenchReport).notes, []);
  });
});

describe('renderResultsMarkdown', () => {
  const outcomes: BenchOutcome[] = [
    {
      bench: 'recording', status: 'ok', seconds: 95.2,
      report: {
        bench: 'recording', title: 'Recording path | 60 s clip',
        rows: [
          row({ measure: 'replay CPU', ours: 1.886, unit: 's', baseline: 'bare ffmpeg decode', baselineValue: 1.491, goal: { on: 'ratio', max: 1.2 } }),
          row({ measure: 'RSS per camera', ours: 50.8, unit: 'MiB', baseline: 'bare pull', baselineValue: 51.9, goal: { on: 'ours', max: 80 } }),
          row({ measure: 'no goal', ours: 3, unit: 'µs' }),
        ],
        notes: ['raw: [1, 2]'],
      },
    },
    { bench: 'load', status: 'skipped', reason: 'bench/load.ts is not in this checkout yet.' },
    { bench: 'extension', status: 'failed', reason: 'timed out after 30 min', seconds: 1800 },
  ];
  const md = renderResultsMarkdown({ machine, outcomes, quick: false, unlisted: ['h9-experiment'] });
  const lines = md.split('\n');

  test('machine section names CPU, cores, OS, Node, ffmpeg, date and commit', () => {
    for (const s of ['| CPU | Test CPU @ 2.0GHz |', '| cores | 2 |', '| memory | 7.8 GiB |', '| Node.js | v20.20.2 |',
      '| ffmpeg | ffmpeg version 5.1.9-0+deb12u1 |', '| OS | Debian GNU/Linux 12 (bookworm) |']) {
      assert.ok(lines.includes(s), `missing line ${s}`);
    }
    assert.match(md, /on 2026-11-27T17:00:00\.000Z at commit abc1234/);
    assert.doesNotMatch(md, /Quick mode/);
  });

  test('a table per bench with ours, the same-run baseline, ratio, goal and pass', () => {
    assert.ok(lines.includes('| measure | ours | same-run baseline | ratio | goal | pass |'));
    assert.ok(lines.includes('| replay CPU | 1.89 s | bare ffmpeg decode: 1.49 s | 1.26× | ratio ≤ 1.2 | ✘ fail |'), md);
    assert.ok(lines.includes('| RSS per camera | 50.8 MiB | bare pull: 51.9 MiB | 0.979× | ≤ 80 MiB | ✔ pass |'), md);
    assert.ok(lines.includes('| no goal | 3.00 µs | — | — | — | — |'), md);
    assert.ok(lines.includes('Recording path \\| 60 s clip'), 'pipes in text are escaped');
    assert.ok(lines.includes('- raw: [1, 2]'));
  });

  test('summary counts goals met; failures and skips are listed with their reason, unlisted files too', () => {
    assert.ok(lines.includes('| [recording](#recording) | ok | 1 / 2 | 95 s |'), md);
    assert.ok(lines.includes('| load | skipped | — | — |'));
    assert.ok(lines.includes('| extension | failed | — | 1800 s |'));
    assert.ok(lines.includes('- **load** skipped: bench/load.ts is not in this checkout yet.'));
    assert.ok(lines.includes('- **extension** failed: timed out after 30 min'));
    assert.ok(lines.includes("- **h9-experiment** not run: bench/h9-experiment.ts is not in bench/run-all.ts's list."));
  });

  test('every table row has six cells', () => {
    for (const l of lines.filter((x) => x.startsWith('| ') && x.includes('×') )) {
      assert.equal(l.replace(/\\\|/g, '').split('|').length - 2, 6, l);
    }
  });

  test('quick mode is flagged as not representative', () => {
    assert.match(renderResultsMarkdown({ machine, outcomes: [], quick: true }), /Quick mode: shortened runs/);
  });
});

describe('run-all list', () => {
  test('files that are neither listed nor helpers are reported', () => {
    assert.deepEqual(unlistedBenches(['control-plane.ts', 'cpu.ts', 'new-thing.ts', 'x.mts', 'notes.md', 'types.d.ts']), ['new-thing']);
  });

  test('every bench file in bench/ is either in the list or a helper', () => {
    const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench');
    const files = readdirSync(dir);
    assert.deepEqual(unlistedBenches(files), [], 'add new benches to BENCHES in bench/run-all.ts (or to HELPERS)');
    for (const b of BENCHES) assert.ok(!HELPERS.has(b.name));
  });
});
