import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Daemon } from '../../src/daemon.js';
import type { EventLine } from '../../src/runtime/events.js';
import { createLogger } from '../../src/util/logger.js';

/** An in-process daemon (no HTTP) with an event recorder, for recording tests against live cameras. */
export interface RecordingHarness {
  daemon: Daemon;
  dir: string;
  events: EventLine[];
  call(method: string, payload: Record<string, unknown>): Promise<{ status: number; payload: any }>;
  waitFor(pred: (e: EventLine) => boolean, timeoutMs: number, what: string): Promise<EventLine>;
  ofType(suffix: string): EventLine[];
  close(): Promise<void>;
}

export async function startRecordingHarness(settings: Record<string, unknown> = {}): Promise<RecordingHarness> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lva-rec-'));
  const daemon = new Daemon({
    settings: { applicationDataDirectory: path.join(dir, 'state'), outputRootDirectory: path.join(dir, 'media'), ...settings },
    http: null,
    log: createLogger(process.stderr, (process.env.LVA_TEST_LOG as never) ?? 'silent'),
  });
  const events: EventLine[] = [];
  const waiters = new Set<() => void>();
  daemon.bus.subscribe((e) => {
    events.push(e);
    for (const w of [...waiters]) w();
  });
  await daemon.start();
  const h: RecordingHarness = {
    daemon,
    dir,
    events,
    async call(method, payload) {
      return (await daemon.control.invoke(method, { '@apiVersion': '2.0', ...payload })) as { status: number; payload: any };
    },
    waitFor(pred, timeoutMs, what) {
      const found = events.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; events: ${events.map((e) => e.applicationProperties.eventType.split('.').pop()).join(', ')}`));
        }, timeoutMs);
        const check = () => {
          const e = events.find(pred);
          if (e) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve(e);
          }
        };
        waiters.add(check);
      });
    },
    ofType(suffix) {
      return events.filter((e) => e.applicationProperties.eventType.endsWith(`.${suffix}`));
    },
    async close() {
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}

export const isType = (suffix: string) => (e: EventLine) => e.applicationProperties.eventType.endsWith(`.${suffix}`);
