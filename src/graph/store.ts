import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ApiVersion, InstanceResource, TopologyResource } from './model.js';
import { removeStrayTempFiles, writeFileAtomic } from '../util/atomic-file.js';
import type { Log } from '../util/logger.js';

/**
 * Durable state under `applicationDataDirectory` (lva-spec §1.5 "Persistence"): one JSON file per
 * topology and per instance, written atomically with mode 0600 (they hold unredacted secrets).
 * A method reply is only sent after its file is durable, so an acknowledged Set survives SIGKILL.
 */

export interface StoredTopology {
  apiVersion: ApiVersion;
  resource: TopologyResource;
}

export interface StoredInstance {
  apiVersion: ApiVersion;
  resource: InstanceResource;
  /** True while the user wants the instance Active; restored on start (lva-spec §1.5 [I]). */
  desiredActive: boolean;
}

export interface LoadedState {
  topologies: StoredTopology[];
  instances: StoredInstance[];
  /** Files that could not be parsed; renamed to `*.corrupt` and reported, never silently dropped. */
  corrupt: string[];
}

export class GraphStore {
  readonly root: string;
  private readonly topologyDir: string;
  private readonly instanceDir: string;

  constructor(applicationDataDirectory: string, private readonly log?: Log) {
    this.root = path.join(applicationDataDirectory, 'lva-edge');
    this.topologyDir = path.join(this.root, 'topologies');
    this.instanceDir = path.join(this.root, 'instances');
  }

  async open(): Promise<LoadedState> {
    for (const d of [this.root, this.topologyDir, this.instanceDir]) {
      await fs.mkdir(d, { recursive: true, mode: 0o700 });
      await fs.chmod(d, 0o700);
    }
    await removeStrayTempFiles(this.topologyDir);
    await removeStrayTempFiles(this.instanceDir);
    const corrupt: string[] = [];
    const topologies = await this.readAll<StoredTopology>(this.topologyDir, corrupt, (v) =>
      isObject(v) && isObject(v.resource) && typeof v.resource.name === 'string');
    const instances = await this.readAll<StoredInstance>(this.instanceDir, corrupt, (v) =>
      isObject(v) && isObject(v.resource) && typeof v.resource.name === 'string');
    return { topologies, instances, corrupt };
  }

  saveTopology(t: StoredTopology): Promise<void> {
    return writeFileAtomic(this.fileFor(this.topologyDir, t.resource.name), JSON.stringify(t));
  }

  saveInstance(i: StoredInstance): Promise<void> {
    return writeFileAtomic(this.fileFor(this.instanceDir, i.resource.name), JSON.stringify(i));
  }

  async deleteTopology(name: string): Promise<void> {
    await fs.rm(this.fileFor(this.topologyDir, name), { force: true });
  }

  async deleteInstance(name: string): Promise<void> {
    await fs.rm(this.fileFor(this.instanceDir, name), { force: true });
  }

  private fileFor(dir: string, name: string): string {
    // Names are validated ([A-Za-z0-9-], ≤ 32 chars) before they get here; encode anyway so that no
    // name can ever address a path outside the store.
    return path.join(dir, `${encodeURIComponent(name)}.json`);
  }

  private async readAll<T>(dir: string, corrupt: string[], ok: (v: any) => boolean): Promise<T[]> {
    const out: T[] = [];
    for (const e of (await fs.readdir(dir)).sort()) {
      if (!e.endsWith('.json')) continue;
      const file = path.join(dir, e);
      try {
        const v = JSON.parse(await fs.readFile(file, 'utf8'));
        if (!ok(v)) throw new Error('unexpected content');
        out.push(v as T);
      } catch (err) {
        corrupt.push(file);
        this.log?.error({ file, err: (err as Error).message }, 'store file unreadable; moved aside');
        await fs.rename(file, `${file}.corrupt`).catch(() => {});
      }
    }
    return out;
  }
}

function isObject(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
