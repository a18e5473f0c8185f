import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findFfmpeg, resolveExecutable } from '../../src/util/executables.js';

const fakeFs = (present: string[]) => (p: string) => present.includes(p);

test('resolveExecutable: the env override wins over PATH', () => {
  assert.equal(resolveExecutable('ffmpeg', '/opt/ff/ffmpeg', '/usr/bin', fakeFs(['/opt/ff/ffmpeg', '/usr/bin/ffmpeg'])), '/opt/ff/ffmpeg');
});

test('resolveExecutable: a broken override is not silently replaced by PATH', () => {
  assert.equal(resolveExecutable('ffmpeg', '/opt/missing', '/usr/bin', fakeFs(['/usr/bin/ffmpeg'])), undefined);
});

test('resolveExecutable: first match in PATH order, empty entries skipped', () => {
  assert.equal(resolveExecutable('ffmpeg', undefined, '::/a:/b', fakeFs(['/b/ffmpeg', '/a/ffmpeg'])), '/a/ffmpeg');
  assert.equal(resolveExecutable('ffmpeg', '', '/a', fakeFs([])), undefined);
});

test('findFfmpeg: a missing binary names the install command', (t) => {
  const saved = { path: process.env.PATH, ff: process.env.FFMPEG_PATH };
  t.after(() => {
    process.env.PATH = saved.path;
    if (saved.ff === undefined) delete process.env.FFMPEG_PATH;
    else process.env.FFMPEG_PATH = saved.ff;
  });
  delete process.env.FFMPEG_PATH;
  process.env.PATH = '/nonexistent-dir';
  assert.throws(() => findFfmpeg(), /apt-get install ffmpeg/);
  process.env.FFMPEG_PATH = '/nonexistent-dir/ffmpeg';
  assert.throws(() => findFfmpeg(), /FFMPEG_PATH=\/nonexistent-dir\/ffmpeg.*apt-get install ffmpeg/);
});
