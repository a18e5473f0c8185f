// logLevel / logCategories (lva-spec §3): the pure rules (level mapping, categories, effective level)
// and LogControl on real pino loggers writing to an in-memory stream, including live re-configuration
// of loggers created before the change and the daemon's twin path.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import {
  LogControl, categoryOf, createLogger, effectiveLevel, parseLogCategories, pinoLevel, LOG_CATEGORIES,
} from '../../src/util/logger.js';
import { Daemon } from '../../src/daemon.js';

function memoryLog(level: Parameters<typeof createLogger>[1] = 'info') {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { log: createLogger(sink, level), lines };
}

/** pino writes synchronously to a plain Writable, but let the stream flush anyway. */
const flush = () => new Promise((r) => setImmediate(r));

describe('pure rules', () => {
  test('LVA logLevel values map to pino levels; unknown and absent mean Information', () => {
    assert.equal(pinoLevel('Verbose'), 'debug');
    assert.equal(pinoLevel('Information'), 'info');
    assert.equal(pinoLevel('Info'), 'info');
    assert.equal(pinoLevel('warning'), 'warn');
    assert.equal(pinoLevel('ERROR'), 'error');
    assert.equal(pinoLevel('None'), 'silent');
    assert.equal(pinoLevel('Loud'), 'info');
    assert.equal(pinoLevel(undefined), 'info');
  });

  test('logCategories: comma list, case-insensitive, spaces trimmed, unknown names ignored, default Application,Events', () => {
    assert.deepEqual([...parseLogCategories('Application, mediapipeline')], ['Application', 'MediaPipeline']);
    assert.deepEqual([...parseLogCategories(['Events', 'Bogus'])], ['Events']);
    assert.deepEqual([...parseLogCategories('')], []);
    assert.deepEqual([...parseLogCategories(undefined)], ['Application', 'Events']);
  });

  test('category of a logger from its bindings', () => {
    assert.equal(categoryOf({}), 'Application');
    assert.equal(categoryOf({ module: 'lva-edge' }), 'Application');
    assert.equal(categoryOf({ instance: 'cam1' }), 'MediaPipeline');
    assert.equal(categoryOf({ instance: 'cam1', node: 'rtspSource' }), 'MediaPipeline');
    assert.equal(categoryOf({ category: 'events' }), 'Events');
    assert.equal(categoryOf({ category: 'Application', instance: 'cam1' }), 'Application', 'an explicit category wins');
    assert.equal(categoryOf({ category: 'Nope' }), 'Application');
  });

  test('effective level: every (level, category, enabled set) combination', () => {
    const levels = ['debug', 'info', 'warn', 'error', 'silent'] as const;
    const subsets = [[], ['Application'], ['Events'], ['MediaPipeline'], ['Application', 'Events'], [...LOG_CATEGORIES]];
    for (const level of levels) {
      for (const subset of subsets) {
        const enabled = new Set(subset as typeof LOG_CATEGORIES[number][]);
        for (const c of LOG_CATEGORIES) {
          const expected = level === 'silent' ? 'silent' : enabled.has(c) ? level : 'error';
          assert.equal(effectiveLevel(level, c, enabled), expected, `${level} ${c} in [${subset}]`);
        }
      }
    }
  });
});

describe('LogControl on real pino loggers', () => {
  test('a category not listed logs errors only; listed ones log at logLevel', async () => {
    const { log, lines } = memoryLog();
    const control = new LogControl(log, { logLevel: 'Information', logCategories: 'Application' });
    const media = log.child({ instance: 'cam1' }).child({ node: 'rtspSource' });
    const events = control.logger('Events');
    log.info('app info');
    media.info('media info');
    media.warn('media warn');
    media.error('media error');
    events.info('event info');
    await flush();
    assert.deepEqual(lines.map((l) => l.msg), ['app info', 'media error']);
    assert.equal(lines[1]!.node, 'rtspSource');
  });

  test('a twin change re-levels loggers that already exist (live), including grandchildren', async () => {
    const { log, lines } = memoryLog();
    const control = new LogControl(log, { logLevel: 'Information', logCategories: 'Application,Events' });
    const runner = log.child({ instance: 'cam1' });
    const node = runner.child({ node: 'fileSink' });
    node.info('before');
    control.apply({ logLevel: 'Verbose', logCategories: 'MediaPipeline' });
    node.debug('debug after');
    runner.info('runner after');
    log.info('app after (Application now off)');
    log.error('app error (always)');
    const late = runner.child({ node: 'signalGate' });
    late.debug('created after the change');
    await flush();
    assert.deepEqual(lines.map((l) => l.msg), ['debug after', 'runner after', 'app error (always)', 'created after the change']);
    assert.deepEqual(control.state, { level: 'debug', categories: ['MediaPipeline'] });
  });

  test('None silences everything, errors included', async () => {
    const { log, lines } = memoryLog();
    const control = new LogControl(log, { logLevel: 'None' });
    log.error('x');
    log.child({ node: 'n' }).error('y');
    control.logger('Events').error('z');
    await flush();
    assert.equal(lines.length, 0);
  });

  test('a pinned level (LVA_LOG_LEVEL, silent test logger) wins over logLevel; categories still apply', async () => {
    const { log, lines } = memoryLog();
    const control = new LogControl(log, { logLevel: 'Verbose', logCategories: 'Application' }, 'warn');
    log.info('no');
    log.warn('app warn');
    control.apply({ logLevel: 'Verbose', logCategories: 'Application' });
    log.child({ node: 'n' }).warn('media warn (category off)');
    log.child({ node: 'n' }).error('media error');
    await flush();
    assert.deepEqual(lines.map((l) => l.msg), ['app warn', 'media error']);
  });

  test('secrets stay redacted in category loggers', async () => {
    const { log, lines } = memoryLog();
    const control = new LogControl(log, { logCategories: 'Application,Events,MediaPipeline' });
    log.child({ node: 'rtspSource' }).info({ password: 'hunter2' }, 'connecting');
    control.logger('Events').info({ credentials: { password: 'hunter2' } }, 'event');
    await flush();
    assert.ok(!JSON.stringify(lines).includes('hunter2'));
    assert.equal(lines.length, 2);
  });
});

describe('the daemon applies logLevel / logCategories from its settings and on update', () => {
  test('config at start, then a live update; Events category logs published events', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lva-logcat-'));
    const { log, lines } = memoryLog('info');
    const daemon = new Daemon({ settings: { applicationDataDirectory: dir, logLevel: 'Warning', logCategories: 'Application' }, http: null, log });
    try {
      assert.deepEqual(daemon.logControl.state, { level: 'warn', categories: ['Application'] });
      daemon.bus.publish({ eventClass: 'Operational', name: 'Probe', subject: '/graphInstances/x', body: {} });
      daemon.updateSettings({ applicationDataDirectory: dir, logLevel: 'Information', logCategories: 'Events' });
      assert.equal(daemon.log.level, 'error', 'Application switched off: errors only');
      daemon.bus.publish({ eventClass: 'Operational', name: 'Probe2', subject: '/graphInstances/x', body: { secretish: 'not logged' } });
      await flush();
      assert.deepEqual(lines.map((l) => l.eventType), ['Microsoft.Media.Graph.Operational.Probe2']);
      assert.equal(lines[0]!.category, 'Events');
      assert.ok(!JSON.stringify(lines).includes('not logged'), 'event bodies are not logged');
      daemon.applyLogSettings({ logLevel: 'Verbose', logCategories: 'Application,Events,MediaPipeline' });
      assert.equal(daemon.log.level, 'debug');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
