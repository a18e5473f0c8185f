import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where ../shared/lva-samples lives: next to the repository (CI lays shared/ beside the clone). */
export function samplesDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [
    process.env.LVA_SAMPLES_DIR,
    path.resolve(here, '../../../shared/lva-samples'),
    '/work/shared/lva-samples',
  ].filter(Boolean) as string[];
  for (const c of candidates) {
    try {
      readdirSync(c);
      return c;
    } catch {
      /* try next */
    }
  }
  throw new Error(`lva-samples not found (tried ${candidates.join(', ')}); set LVA_SAMPLES_DIR`);
}

export interface SampleFile {
  /** e.g. `topologies/2.0/evr-motion-files.topology.json` */
  rel: string;
  json: any;
}

export function readSample(rel: string): any {
  return JSON.parse(readFileSync(path.join(samplesDir(), rel), 'utf8').replace(/^\uFEFF/, ''));
}

/** Every topology payload: topologies/{2.0,1.0,legacy-unversioned} and ref-apps/*.topology.json. */
export function allTopologyFiles(): SampleFile[] {
  const root = samplesDir();
  const out: SampleFile[] = [];
  for (const dir of ['topologies/2.0', 'topologies/1.0', 'topologies/legacy-unversioned', 'ref-apps']) {
    for (const f of readdirSync(path.join(root, dir)).sort()) {
      if (!f.endsWith('.topology.json')) continue;
      const rel = `${dir}/${f}`;
      out.push({ rel, json: readSample(rel) });
    }
  }
  return out;
}

/** GraphInstanceSet payloads from operations/*.json (with @apiVersion added, as the sample apps do) and ref-apps. */
export function allInstancePayloads(): SampleFile[] {
  const out: SampleFile[] = [];
  for (const f of ['operations/operations.json', 'operations/operations-apiVersion-1.0.json']) {
    const ops = readSample(f);
    ops.operations.forEach((op: any, i: number) => {
      if (op.opName === 'GraphInstanceSet') out.push({ rel: `${f}#${i}`, json: { '@apiVersion': ops.apiVersion, ...op.opParams } });
    });
  }
  for (const f of ['ref-apps/iotc-gateway-motion.instance.json', 'ref-apps/iotc-gateway-object.instance.json']) {
    out.push({ rel: f, json: readSample(f) });
  }
  return out;
}
