import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { OutputQueue } from '../../src/hub/output-queue.js';
import { checkDesired, reportableSettings, reportedPatch } from '../../src/hub/twin-settings.js';

// Pure parts of the IoT Edge transport (no broker): the ordered bounded output queue and the twin
// settings helpers. (Kept next to the hub integration tests; they need no I/O.)

/** A link that can be cut and restored; sends fail while it is down. */
function fakeLink() {
  const delivered: string[] = [];
  let up = true;
  let waiters: Array<() => void> = [];
  return {
    delivered,
    set up(v: boolean) {
      up = v;
    },
    async send(item: string): Promise<void> {
      await new Promise((r) => setImmediate(r));
      if (!up) throw Object.assign(new Error('not connected'), { name: 'NotConnectedError' });
      if (item.startsWith('huge')) throw Object.assign(new Error('too large'), { name: 'MessageTooLargeError' });
      delivered.push(item);
      for (const w of waiters.splice(0)) w();
    },
    until(n: number): Promise<void> {
      return new Promise((resolve) => {
        const check = () => (delivered.length >= n ? resolve() : waiters.push(check));
        check();
      });
    },
  };
}

describe('OutputQueue', () => {
  test('keeps order across failed sends and retries the same item', async () => {
    const link = fakeLink();
    const q = new OutputQueue<string>({ limit: 100, send: (i) => link.send(i), isPermanent: () => false, retryDelayMs: () => 1 });
    link.up = false;
    for (let i = 0; i < 10; i++) q.push(`e${i}`);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(link.delivered.length, 0);
    link.up = true;
    await link.until(10);
    assert.deepEqual(link.delivered, Array.from({ length: 10 }, (_, i) => `e${i}`));
    assert.equal(await q.drain(1000), true);
  });

  test('drops the oldest waiting items beyond the bound and sends a notice at the gap', async () => {
    const link = fakeLink();
    const notices: Array<{ count: number; first: string; last: string }> = [];
    const q = new OutputQueue<string>({
      limit: 3, send: (i) => link.send(i), isPermanent: () => false, retryDelayMs: () => 1,
      onDropsEnded: (count, first, last) => {
        notices.push({ count, first, last });
        return `dropped:${count}`;
      },
    });
    link.up = false;
    for (let i = 0; i < 10; i++) q.push(`e${i}`);
    assert.equal(q.dropped, 6); // e0 in flight; e1..e6 dropped; e7..e9 wait
    link.up = true;
    await link.until(5);
    assert.deepEqual(link.delivered, ['e0', 'dropped:6', 'e7', 'e8', 'e9']);
    assert.deepEqual(notices, [{ count: 6, first: 'e1', last: 'e6' }]);
  });

  test('an item that can never be sent is dropped and reported, the rest continue', async () => {
    const link = fakeLink();
    const failed: string[] = [];
    const q = new OutputQueue<string>({
      limit: 10, send: (i) => link.send(i), isPermanent: (e) => (e as Error).name === 'MessageTooLargeError',
      onPermanentFailure: (i) => failed.push(i),
    });
    q.push('a');
    q.push('huge-1');
    q.push('b');
    await link.until(2);
    assert.deepEqual(link.delivered, ['a', 'b']);
    assert.deepEqual(failed, ['huge-1']);
    assert.equal(q.failed, 1);
  });
});

describe('twin settings helpers', () => {
  test('desired properties are matched case-insensitively, normalised and validated', () => {
    const ok = checkDesired({ LogLevel: 'verbose', AllowUnsecuredEndpoints: 'TRUE', $version: 4 });
    assert.equal(ok.ok, true);
    if (ok.ok) {
      assert.equal(ok.settings.logLevel, 'Verbose');
      assert.equal(ok.settings.$version, undefined);
    }
    const bad = checkDesired({ logLevel: 'Loud' });
    assert.equal(bad.ok, false);
    if (!bad.ok) assert.equal(bad.error.details[0]!.target, '$.LogLevel');
    assert.equal(checkDesired({ endpointAliases: 'rtsp://a' }).ok, false);
    const secret = checkDesired({ aadServicePrincipalSecret: { value: 'hunter2-secret' } });
    assert.equal(secret.ok, false);
    if (!secret.ok) assert.ok(!JSON.stringify(secret.error.toODataBody()).includes('hunter2'), 'a rejected secret is not echoed');
    assert.equal(checkDesired({ endpointAliases: { 'rtsp://a': { nested: true } } }).ok, false);
  });

  test('reported configuration carries no secrets and no arrays', () => {
    const r = reportableSettings({
      logLevel: 'Information', aadServicePrincipalSecret: 's', aadServicePrincipalPassword: 'p', aadServicePrincipalCertificate: 'c',
      someApiKey: 'k', endpointAliases: { 'rtsp://a.b/c': 'rtsp://x' }, unknownList: [1, 2],
    });
    assert.deepEqual(r, { logLevel: 'Information', endpointAliases: { alias1: { from: 'rtsp://a.b/c', to: 'rtsp://x' } } });
  });

  test('reported patches null removed keys, recursively', () => {
    assert.deepEqual(reportedPatch({ a: 1, b: { x: 1, y: 2 }, c: 3 }, { a: 1, b: { x: 2 }, d: 4 }), { c: null, b: { x: 2, y: null }, d: 4 });
    assert.deepEqual(reportedPatch({ a: 1 }, { a: 1 }), {});
  });
});
