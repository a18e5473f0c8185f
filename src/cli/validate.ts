import { readFile } from 'node:fs/promises';
import { LvaError } from '../api/errors.js';
import { resolveSettings } from '../config/settings.js';
import { resolveInstance, validateApiVersion, validateInstanceSet, validateTopologySet } from '../graph/validate.js';

export type ValidateResult =
  | { kind: 'valid'; topologyName: string; instanceName?: string }
  | { kind: 'invalid'; error: LvaError }
  | { kind: 'unreadable'; message: string };

/**
 * `lva-edge validate`: exactly what GraphTopologySet (and GraphInstanceSet against it) would answer,
 * without a running module.
 */
export async function validateFiles(topologyFile: string, instanceFile: string | undefined, settings: Record<string, unknown>): Promise<ValidateResult> {
  let topoPayload: unknown;
  let instPayload: unknown;
  try {
    topoPayload = parseJson(await readFile(topologyFile, 'utf8'), topologyFile);
    if (instanceFile) instPayload = parseJson(await readFile(instanceFile, 'utf8'), instanceFile);
  } catch (err) {
    return { kind: 'unreadable', message: (err as Error).message };
  }
  const ctx = { allowUnsecuredEndpoints: resolveSettings(settings).allowUnsecuredEndpoints };
  try {
    const apiVersion = validateApiVersion(topoPayload);
    const topology = validateTopologySet(topoPayload, ctx);
    if (instPayload === undefined) return { kind: 'valid', topologyName: topology.name };
    validateApiVersion(instPayload);
    const instance = validateInstanceSet(instPayload);
    if (instance.properties.topologyName !== topology.name) {
      throw new LvaError(400, 'InvalidResource', `Graph topology '${instance.properties.topologyName}' was not found.`, [{
        code: 'TopologyNotFound', target: '$.Properties.TopologyName',
        message: `The instance names topology '${instance.properties.topologyName}' but the topology file defines '${topology.name}'.`,
      }]);
    }
    resolveInstance(topology, instance, ctx, apiVersion);
    return { kind: 'valid', topologyName: topology.name, instanceName: instance.name };
  } catch (err) {
    if (err instanceof LvaError) return { kind: 'invalid', error: err };
    throw err;
  }
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message})`);
  }
}
