import { badRequest, conflict, LvaError, notFound, toLvaError, type ODataErrorBody } from './errors.js';
import type { ApiVersion, InstanceResource, InstanceState, ResolvedGraph, TopologyResource } from '../graph/model.js';
import {
  checkTopologyUpdate, isValidResourceName, redactInstance, redactTopology, resolveInstance, validateApiVersion,
  validateInstanceSet, validateTopologySet, type ValidationContext,
} from '../graph/validate.js';
import type { GraphStore, StoredInstance, StoredTopology } from '../graph/store.js';
import { InstanceLifecycle, type GraphRuntime } from '../runtime/instance.js';
import type { Log } from '../util/logger.js';

/**
 * The ten LVA direct methods (lva-spec §1.4) over an in-memory model backed by GraphStore. Every
 * transport (IoT Hub direct methods, the local HTTP API, the CLI) calls `invoke` with the payload
 * exactly as delivered and returns `{status, payload}` unchanged.
 *
 * Decisions where the spec is silent [I]:
 * - GraphInstanceSet naming an unknown topology → 400 InvalidResource / `TopologyNotFound`.
 * - Quotas (50 topologies, 1000 instances) → 409 Conflict / `QuotaExceeded`.
 * - Activate/Deactivate of an unknown instance → 404 NotFound.
 * - Instance Set outside Inactive: only `description` may change, else 409 OperationNotAllowedInState.
 * - Lists are ordered by name and paged so that one reply stays well below IoT Hub's 128 KB method
 *   payload limit; `@continuationToken` is opaque (base64url of the last name returned).
 */

export const METHOD_NAMES = [
  'GraphTopologySet', 'GraphTopologyGet', 'GraphTopologyList', 'GraphTopologyDelete',
  'GraphInstanceSet', 'GraphInstanceGet', 'GraphInstanceList', 'GraphInstanceActivate',
  'GraphInstanceDeactivate', 'GraphInstanceDelete',
] as const;
export type MethodName = (typeof METHOD_NAMES)[number];

export const MAX_TOPOLOGIES = 50;
export const MAX_INSTANCES = 1000;
/** Budget for one List page (IoT Hub caps a direct-method payload at 128 KB). */
const LIST_PAGE_BYTES = 96 * 1024;

export interface MethodResult {
  status: number;
  payload: unknown;
}

export interface ControlPlaneOptions {
  store: GraphStore;
  /** Builds the runtime of an instance being activated; throws LvaError for what cannot run here. */
  createRuntime: (graph: ResolvedGraph) => GraphRuntime | Promise<GraphRuntime>;
  validationContext: () => ValidationContext;
  log?: Log;
  now?: () => Date;
}

interface InstanceEntry {
  stored: StoredInstance;
  lifecycle: InstanceLifecycle;
}

export class ControlPlane {
  private readonly topologies = new Map<string, StoredTopology>();
  private readonly instances = new Map<string, InstanceEntry>();
  /** Serialises metadata mutations (Set/Delete), which are fast; Activate/Deactivate run outside it. */
  private mutex: Promise<unknown> = Promise.resolve();
  private readonly now: () => Date;
  private closed = false;

  constructor(private readonly opts: ControlPlaneOptions) {
    this.now = opts.now ?? (() => new Date());
  }

  /** Loads the store; returns the names of instances that were Active when the module stopped. */
  async load(): Promise<string[]> {
    const state = await this.opts.store.open();
    for (const t of state.topologies) this.topologies.set(t.resource.name, t);
    for (const i of state.instances) {
      i.resource.properties.state = 'Inactive';
      this.instances.set(i.resource.name, this.entryFor(i));
    }
    return state.instances.filter((i) => i.desiredActive).map((i) => i.resource.name);
  }

  /** Re-activates instances that were Active before a restart. Failures are logged, not thrown. */
  async restoreActive(names: string[]): Promise<void> {
    await Promise.all(
      names.map(async (name) => {
        const r = await this.invoke('GraphInstanceActivate', { '@apiVersion': '2.0', name });
        if (r.status >= 300) this.opts.log?.error({ instance: name, reply: r.payload }, 'could not re-activate instance after restart');
      }),
    );
  }

  counts(): { topologies: number; instances: number; active: number } {
    let active = 0;
    for (const e of this.instances.values()) if (e.lifecycle.state === 'Active') active++;
    return { topologies: this.topologies.size, instances: this.instances.size, active };
  }

  instanceStates(): Array<{ name: string; topologyName: string; state: InstanceState }> {
    return [...this.instances.values()].map((e) => ({
      name: e.stored.resource.name, topologyName: e.stored.resource.properties.topologyName, state: e.lifecycle.state,
    }));
  }

  async invoke(method: string, payload: unknown): Promise<MethodResult> {
    if (!(METHOD_NAMES as readonly string[]).includes(method)) {
      return { status: 501, payload: { error: { code: 'NotImplemented', message: `Method '${method}' is not implemented.` } } };
    }
    try {
      if (this.closed) throw new LvaError(503, 'ServerBusy', 'The module is shutting down.');
      const apiVersion = validateApiVersion(payload);
      const body = payload as Record<string, unknown>;
      switch (method as MethodName) {
        case 'GraphTopologySet': return await this.exclusive(() => this.topologySet(body, apiVersion));
        case 'GraphTopologyGet': return this.topologyGet(body);
        case 'GraphTopologyList': return this.list(body, [...this.topologies.values()], (t) => t.resource.name, (t) => redactTopology(t.resource));
        case 'GraphTopologyDelete': return await this.exclusive(() => this.topologyDelete(body));
        case 'GraphInstanceSet': return await this.exclusive(() => this.instanceSet(body, apiVersion));
        case 'GraphInstanceGet': return this.instanceGet(body);
        case 'GraphInstanceList': return this.list(body, [...this.instances.values()], (e) => e.stored.resource.name, (e) => this.instanceView(e));
        case 'GraphInstanceActivate': return await this.activate(body);
        case 'GraphInstanceDeactivate': return await this.deactivate(body);
        case 'GraphInstanceDelete': return await this.exclusive(() => this.instanceDelete(body));
      }
    } catch (err) {
      const e = toLvaError(err);
      if (!(err instanceof LvaError)) this.opts.log?.error({ err, method }, 'method failed unexpectedly');
      return { status: e.status, payload: e.toODataBody() satisfies ODataErrorBody };
    }
  }

  /** Deactivates every instance (graceful stop); refuses further methods meanwhile. */
  async shutdown(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.instances.values()].map(async (e) => {
      await e.lifecycle.settle();
      await e.lifecycle.deactivate().catch((err) => this.opts.log?.error({ err, instance: e.stored.resource.name }, 'deactivate at shutdown failed'));
    }));
  }

  // ---- topologies -------------------------------------------------------------------------------

  private async topologySet(body: Record<string, unknown>, apiVersion: ApiVersion): Promise<MethodResult> {
    const topology = validateTopologySet(body, this.opts.validationContext());
    const existing = this.topologies.get(topology.name);
    const now = this.now().toISOString();
    if (existing) {
      const users = this.instancesOf(topology.name);
      const busy = users.find((e) => e.lifecycle.state !== 'Inactive');
      if (busy) {
        throw conflict('OperationNotAllowedInState',
          `Graph topology '${topology.name}' is used by graph instance '${busy.stored.resource.name}' which is ${busy.lifecycle.state}; deactivate it before updating the topology.`);
      }
      checkTopologyUpdate(existing.resource, topology, users.map((e) => withState(e.stored.resource, e.lifecycle.state)));
      topology.systemData = { createdAt: existing.resource.systemData?.createdAt ?? now, lastModifiedAt: now };
    } else {
      if (this.topologies.size >= MAX_TOPOLOGIES) {
        throw conflict('QuotaExceeded', `At most ${MAX_TOPOLOGIES} graph topologies can be stored in one module.`);
      }
      topology.systemData = { createdAt: now, lastModifiedAt: now };
    }
    const stored: StoredTopology = { apiVersion, resource: topology };
    await this.opts.store.saveTopology(stored);
    this.topologies.set(topology.name, stored);
    return { status: existing ? 200 : 201, payload: redactTopology(topology) };
  }

  private topologyGet(body: Record<string, unknown>): MethodResult {
    const name = requireName(body);
    const t = this.topologies.get(name);
    if (!t) throw notFound(`Graph topology '${name}' was not found.`);
    return { status: 200, payload: redactTopology(t.resource) };
  }

  private async topologyDelete(body: Record<string, unknown>): Promise<MethodResult> {
    const name = requireName(body);
    if (!this.topologies.has(name)) return { status: 204, payload: null };
    const users = this.instancesOf(name);
    if (users.length > 0) {
      throw conflict('GraphTopologyInUse',
        `Graph topology '${name}' is referenced by ${users.length} graph instance(s) (${users.slice(0, 5).map((u) => u.stored.resource.name).join(', ')}); delete them first.`);
    }
    await this.opts.store.deleteTopology(name);
    this.topologies.delete(name);
    return { status: 200, payload: null };
  }

  // ---- instances --------------------------------------------------------------------------------

  private async instanceSet(body: Record<string, unknown>, apiVersion: ApiVersion): Promise<MethodResult> {
    const instance = validateInstanceSet(body);
    const topo = this.topologies.get(instance.properties.topologyName);
    if (!topo) {
      throw new LvaError(400, 'InvalidResource', `Graph topology '${instance.properties.topologyName}' was not found.`, [{
        code: 'TopologyNotFound', target: '$.Properties.TopologyName',
        message: `Graph topology '${instance.properties.topologyName}' was not found.`,
      }]);
    }
    const existing = this.instances.get(instance.name);
    const now = this.now().toISOString();
    if (existing && existing.lifecycle.state !== 'Inactive') {
      const cur = existing.stored.resource.properties;
      const same = cur.topologyName === instance.properties.topologyName &&
        JSON.stringify(sortParams(cur.parameters)) === JSON.stringify(sortParams(instance.properties.parameters));
      if (!same) {
        throw conflict('OperationNotAllowedInState',
          `Graph instance '${instance.name}' is ${existing.lifecycle.state}; only its description can change until it is Inactive.`);
      }
    } else {
      // The graph is re-validated with the parameter values on every Set (lva-spec §1.4).
      resolveInstance(topo.resource, instance, this.opts.validationContext(), topo.apiVersion);
    }
    if (!existing && this.instances.size >= MAX_INSTANCES) {
      throw conflict('QuotaExceeded', `At most ${MAX_INSTANCES} graph instances can be stored in one module.`);
    }
    instance.systemData = { createdAt: existing?.stored.resource.systemData?.createdAt ?? now, lastModifiedAt: now };
    // The state lives in the lifecycle; what is stored is always the resting state.
    instance.properties.state = 'Inactive';
    const stored: StoredInstance = { apiVersion, resource: instance, desiredActive: existing?.stored.desiredActive ?? false };
    await this.opts.store.saveInstance(stored);
    if (existing) existing.stored = stored;
    else this.instances.set(instance.name, this.entryFor(stored));
    return { status: existing ? 200 : 201, payload: this.instanceView(this.instances.get(instance.name)!) };
  }

  private instanceGet(body: Record<string, unknown>): MethodResult {
    const name = requireName(body);
    const e = this.instances.get(name);
    if (!e) throw notFound(`Graph instance '${name}' was not found.`);
    return { status: 200, payload: this.instanceView(e) };
  }

  private async instanceDelete(body: Record<string, unknown>): Promise<MethodResult> {
    const name = requireName(body);
    const e = this.instances.get(name);
    if (!e) return { status: 204, payload: null };
    if (e.lifecycle.state !== 'Inactive') {
      throw conflict('OperationNotAllowedInState', `Graph instance '${name}' is ${e.lifecycle.state}; deactivate it before deleting it.`);
    }
    await this.opts.store.deleteInstance(name);
    this.instances.delete(name);
    return { status: 200, payload: null };
  }

  private async activate(body: Record<string, unknown>): Promise<MethodResult> {
    const name = requireName(body);
    const e = this.instances.get(name);
    if (!e) throw notFound(`Graph instance '${name}' was not found.`);
    const wasActive = e.lifecycle.state === 'Active' || e.lifecycle.state === 'Activating';
    await e.lifecycle.activate(async () => {
      const topo = this.topologies.get(e.stored.resource.properties.topologyName);
      if (!topo) throw notFound(`Graph topology '${e.stored.resource.properties.topologyName}' was not found.`);
      const graph = resolveInstance(topo.resource, e.stored.resource, this.opts.validationContext(), topo.apiVersion);
      return this.opts.createRuntime(graph);
    });
    if (!wasActive && !e.stored.desiredActive) await this.persistDesired(e, true);
    return { status: 200, payload: null };
  }

  private async deactivate(body: Record<string, unknown>): Promise<MethodResult> {
    const name = requireName(body);
    const e = this.instances.get(name);
    if (!e) throw notFound(`Graph instance '${name}' was not found.`);
    await e.lifecycle.deactivate();
    if (e.stored.desiredActive && !this.closed) await this.persistDesired(e, false);
    return { status: 200, payload: null };
  }

  // ---- helpers ----------------------------------------------------------------------------------

  private async persistDesired(e: InstanceEntry, desiredActive: boolean): Promise<void> {
    e.stored = { ...e.stored, desiredActive };
    await this.opts.store.saveInstance(e.stored);
  }

  private entryFor(stored: StoredInstance): InstanceEntry {
    const entry: InstanceEntry = {
      stored,
      lifecycle: new InstanceLifecycle(stored.resource.name, (state) => {
        this.opts.log?.info({ instance: stored.resource.name, state }, 'graph instance state');
      }),
    };
    return entry;
  }

  private instanceView(e: InstanceEntry): InstanceResource {
    const topo = this.topologies.get(e.stored.resource.properties.topologyName);
    const view = redactInstance(e.stored.resource, topo?.resource);
    view.properties.state = e.lifecycle.state;
    return view;
  }

  private instancesOf(topologyName: string): InstanceEntry[] {
    return [...this.instances.values()].filter((e) => e.stored.resource.properties.topologyName === topologyName);
  }

  /** Sorted by name; views (deep copies without secrets) are built only for the page returned. */
  private list<T, V>(body: Record<string, unknown>, items: T[], nameOf: (t: T) => string, view: (t: T) => V): MethodResult {
    const query = findKey(body, '@query');
    if (query !== undefined) {
      if (typeof query !== 'string' || !/^\s*\$orderby\s*=\s*name(\s+asc)?\s*$/i.test(query)) {
        throw badRequest(`Unsupported @query '${String(query).slice(0, 100)}'; only '$orderby=name asc' is supported.`, 'InvalidQuery', '$.@query');
      }
    }
    const token = findKey(body, '@continuationToken');
    let after: string | undefined;
    if (token !== undefined && token !== null && token !== '') {
      if (typeof token !== 'string') throw badRequest('@continuationToken must be a string.', 'InvalidContinuationToken', '$.@continuationToken');
      try {
        const decoded = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
        if (typeof decoded?.after !== 'string') throw new Error();
        after = decoded.after;
      } catch {
        throw badRequest('@continuationToken is not valid.', 'InvalidContinuationToken', '$.@continuationToken');
      }
    }
    const sorted = items.map((item) => ({ item, name: nameOf(item) })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const value: V[] = [];
    let bytes = 0;
    let lastName: string | undefined;
    let next: string | undefined;
    for (const { item, name } of sorted) {
      if (after !== undefined && name <= after) continue;
      const v = view(item);
      const size = Buffer.byteLength(JSON.stringify(v));
      if (value.length > 0 && bytes + size > LIST_PAGE_BYTES) {
        next = Buffer.from(JSON.stringify({ after: lastName })).toString('base64url');
        break;
      }
      value.push(v);
      lastName = name;
      bytes += size;
    }
    const payload: Record<string, unknown> = { value };
    if (next) payload['@continuationToken'] = next;
    return { status: 200, payload };
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.mutex.then(fn, fn);
    this.mutex = run.catch(() => {});
    return run;
  }
}

function withState(r: InstanceResource, state: InstanceState): InstanceResource {
  return { ...r, properties: { ...r.properties, state } };
}

function findKey(body: Record<string, unknown>, key: string): unknown {
  const k = Object.keys(body).find((x) => x.toLowerCase() === key.toLowerCase());
  return k === undefined ? undefined : body[k];
}

function requireName(body: Record<string, unknown>): string {
  const name = findKey(body, 'name');
  if (typeof name !== 'string' || name.length === 0) {
    throw badRequest("The request must contain a 'name'.", 'PropertyValueMissing', '$.Name');
  }
  if (!isValidResourceName(name)) {
    throw badRequest(`Name '${String(name).slice(0, 64)}' is not valid: use 1–32 letters, digits or dashes, not starting or ending with a dash.`,
      'PropertyValueInvalidPattern', '$.Name');
  }
  return name;
}

function sortParams(p: Array<{ name: string; value?: string }>): Array<{ name: string; value?: string }> {
  return p.slice().sort((a, b) => a.name.localeCompare(b.name));
}
