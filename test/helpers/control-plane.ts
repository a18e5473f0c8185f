import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ControlPlane } from '../../src/api/methods.js';
import { GraphStore } from '../../src/graph/store.js';
import type { ResolvedGraph } from '../../src/graph/model.js';
import type { GraphRuntime } from '../../src/runtime/instance.js';

export interface TestPlane {
  plane: ControlPlane;
  dir: string;
  started: ResolvedGraph[];
  call(method: string, payload?: Record<string, unknown>): Promise<{ status: number; payload: any }>;
  reopen(): Promise<{ plane: ControlPlane; restored: string[] }>;
  cleanup(): void;
}

/**
 * A ControlPlane over a real store in a temp dir. `createRuntime` defaults to an instant runtime that
 * records what was started (the state machine and the methods are what is under test here; the real
 * GraphRunner is exercised by the e2e tests).
 */
export function makePlane(createRuntime?: (g: ResolvedGraph) => GraphRuntime | Promise<GraphRuntime>, ctx = { allowUnsecuredEndpoints: true }): TestPlane {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lva-cp-'));
  const started: ResolvedGraph[] = [];
  const factory = createRuntime ?? ((g: ResolvedGraph) => ({ start: async () => { started.push(g); }, stop: async () => {} }));
  const build = () => new ControlPlane({ store: new GraphStore(dir), createRuntime: factory, validationContext: () => ctx });
  const t: TestPlane = {
    plane: build(),
    dir,
    started,
    async call(method, payload = {}) {
      const body = '@apiVersion' in payload ? payload : { '@apiVersion': '2.0', ...payload };
      return (await t.plane.invoke(method, body)) as { status: number; payload: any };
    },
    async reopen() {
      t.plane = build();
      const restored = await t.plane.load();
      return { plane: t.plane, restored };
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return t;
}
