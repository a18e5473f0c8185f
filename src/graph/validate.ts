/**
 * Validation of GraphTopologySet / GraphInstanceSet payloads and resolution of an instance into the
 * typed graph the runtime runs (lva-spec §1.1–§1.4, §2, §6.1).
 *
 * Pipeline for a topology: @apiVersion → normalise (graph/normalize.ts, API 1.0 schema = superset)
 * → API 2.0 payloads must not use 1.0-only features → ajv against the payload's version schema →
 * parameter declarations → graph shape → `${…}` references → node values that hold no tokens.
 * An instance is checked for shape only at Set; `resolveInstance` binds parameters, substitutes,
 * normalises again (enum values that came from parameters), validates with the token-free schema
 * and builds the typed node configs.
 *
 * Decisions (where LVA is silent or we chose; see lva-spec [I] items):
 * - Errors: 400 InvalidResource for anything wrong in a body. Detail codes: PropertyNotAllowed,
 *   PropertyRequired, PropertyDuplicate, PropertyValueInvalid, PropertyValueInvalidPattern (shape;
 *   target = the property, e.g. `$.Properties.Sources[0].Endpoint.Url`); GraphValidationError (wiring;
 *   target = the node); ModuleValidationError, RtspEndpointUrlInvalidScheme (node values; target = the
 *   node, as in LVA's example); ParameterNotDeclared, ParameterValueMissing, ParameterValueInvalid,
 *   ParameterDeclarationDuplicate (parameters). Non-object payload → 400 BadRequest/InvalidRequestPayload.
 *   Missing or unsupported @apiVersion → 400 InvalidVersion/ApiVersionNotSupported.
 * - API versions: a 1.0 payload may use everything 2.0 has plus FrameRateFilter, ImageFormatEncoded
 *   and `filePathPattern`; a 2.0 payload using one of those → ModuleValidationError. The canonical
 *   resource keeps the 1.0 form; `topologyApiVersion()` tells a stored resource's version back.
 * - Materialised defaults (they appear in the echo): absent arrays `[]`, every input's
 *   `outputSelectors: []`, RTSP `transport: Tcp`, signal gate PT1S/PT0S/PT30S/PT30S, asset sink
 *   `segmentLength: PT30S`. Not materialised (typed config only, LVA never echoed them): motion
 *   sensitivity Medium, outputMotionRegion true, eventAggregationWindow PT1S; image scale mode Pad;
 *   image format Jpeg; skipSamplesWithoutAnnotation false.
 * - 1.0 file sink `filePathPattern` → baseDirectoryPath = its directory, fileNamePattern = its base name
 *   without `.mp4`, maximumSizeMiB 10240 unless given. A 1.0 asset sink without
 *   localMediaCacheMaximumSizeMiB gets 2048. A trailing `.mp4` in fileNamePattern is dropped.
 * - `null` property values count as absent. `systemData`, `state` and `@apiVersion` are accepted in
 *   bodies and not kept. A credential's password/headerValue may be absent (an echo had it removed).
 * - At least one source and one sink. Node names: 1..64 characters without '/' or tokens.
 *   IoT Hub message sources may only feed signal gates (they carry events, not media).
 *   Unused parameter declarations are allowed (samples have them). "Patterns must contain a system
 *   variable" is not enforced (an official sample uses `${assetName}` alone).
 * - Endpoints: RTSP rtsp:// or rtsps:// (TLS endpoint: rtsps://), HTTP http(s):// (TLS: https://),
 *   gRPC / Cognitive Services tcp://host:port; unsecured endpoints need allowUnsecuredEndpoints.
 *   gRPC and Cognitive Services extensions validate here; the runtime decides what it can run.
 * - Signal gate: ranges of §6.1.7, min ≤ max, a positive offset must be < minimumActivationTime.
 *   Asset sink segmentLength: ≥ 30 s and a multiple of 30 s.
 * - Instance parameters: a parameter without `value` is "not supplied" (default applies). Int = 32-bit,
 *   Double finite, Bool true/false any case; the substituted text is the checked, canonical value.
 * - Topology update with referencing instances (all Inactive): every instance must still bind —
 *   no value for a removed parameter, every parameter without default supplied, values parse with
 *   the new types — else 409 Conflict/GraphTopologyInUse. Any non-Inactive referencing instance →
 *   409 Conflict/OperationNotAllowedInState.
 * - Redaction: credentials' password/headerValue (the `x-secret` properties of the schema) and the
 *   defaults of SecretString parameter declarations; instance values of SecretString parameters.
 *   Without the topology an instance's parameter types are unknown and its values are kept.
 */

import { badRequest, conflict, graphValidationError, invalidResource, LvaError, moduleValidationError } from '../api/errors.js';
import {
  NodeTypes,
  SUPPORTED_API_VERSIONS,
  type ApiVersion,
  type InstanceResource,
  type NodeSpec,
  type ParameterDeclaration,
  type ResolvedGraph,
  type TopologyProperties,
  type TopologyResource,
} from './model.js';
import { buildNodeConfigs, ExtensionTypes, listNodes, redactUserinfo, type NodeEntry } from './node-config.js';
import { formatTarget, isPlainObject, quote, type PathSegment } from './normalize.js';
import { isSystemVariable, parseParameterValue, scanTokens, substituteTokens, SystemVariables } from './params.js';
import { assertMatchesSchema, normalizer, SchemaIds, secretPropertyNames } from './schemas.js';

export interface ValidationContext {
  allowUnsecuredEndpoints: boolean;
}

// ------------------------------------------------------------------------------------------------
// @apiVersion
// ------------------------------------------------------------------------------------------------

function findKey(obj: Record<string, unknown>, name: string): string | undefined {
  const lower = name.toLowerCase();
  return Object.keys(obj).find((k) => k.toLowerCase() === lower);
}

function invalidVersion(message: string): LvaError {
  return new LvaError(400, 'InvalidVersion', message, [{ code: 'ApiVersionNotSupported', message, target: '$.@apiVersion' }]);
}

/** The payload's `@apiVersion` (key matched case-insensitively); every direct method calls this first. */
export function validateApiVersion(payload: unknown): ApiVersion {
  if (!isPlainObject(payload)) {
    throw badRequest('The request payload must be a JSON object.', 'InvalidRequestPayload', '$');
  }
  const key = findKey(payload, '@apiVersion');
  const version = key === undefined ? undefined : payload[key];
  const supported = SUPPORTED_API_VERSIONS.join(', ');
  if (version === undefined || version === null) {
    throw invalidVersion(`The request has no '@apiVersion'; supported versions: ${supported}.`);
  }
  if (typeof version !== 'string' || !(SUPPORTED_API_VERSIONS as readonly string[]).includes(version)) {
    throw invalidVersion(`API version ${quote(version)} is not supported; supported versions: ${supported}.`);
  }
  return version as ApiVersion;
}

// ------------------------------------------------------------------------------------------------
// Resource names
// ------------------------------------------------------------------------------------------------

const RESOURCE_NAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?$/;

/** lva-spec §1.1 name rule; for name-only requests (Get/Delete/Activate…). */
export function isValidResourceName(name: unknown): name is string {
  return typeof name === 'string' && RESOURCE_NAME.test(name);
}

// ------------------------------------------------------------------------------------------------
// API 1.0-only features
// ------------------------------------------------------------------------------------------------

/** Where a topology uses something API 2.0 removed (lva-spec §2.6); empty for a 2.0-clean topology. */
export function findApiV1Features(properties: unknown): Array<{ target: string; message: string }> {
  const found: Array<{ target: string; message: string }> = [];
  if (!isPlainObject(properties)) return found;
  const list = (key: string) => (Array.isArray(properties[key]) ? (properties[key] as unknown[]) : []);
  list('processors').forEach((p, i) => {
    if (!isPlainObject(p)) return;
    const target = `$.Properties.Processors[${i}]`;
    if (p['@type'] === NodeTypes.FrameRateFilter) {
      found.push({ target, message: `${NodeTypes.FrameRateFilter} exists only in API 1.0; in 2.0 use the extension's samplingOptions.maximumSamplesPerSecond.` });
    }
    const format = isPlainObject(p.image) ? p.image.format : undefined;
    if (isPlainObject(format) && format['@type'] === '#Microsoft.Media.MediaGraphImageFormatEncoded') {
      found.push({ target, message: '#Microsoft.Media.MediaGraphImageFormatEncoded exists only in API 1.0; in 2.0 use ImageFormatJpeg, ImageFormatBmp, ImageFormatPng or ImageFormatRaw.' });
    }
  });
  list('sinks').forEach((s, i) => {
    if (isPlainObject(s) && s['@type'] === NodeTypes.FileSink && s.filePathPattern !== undefined) {
      found.push({ target: `$.Properties.Sinks[${i}]`, message: "The file sink's filePathPattern exists only in API 1.0; in 2.0 use baseDirectoryPath, fileNamePattern and maximumSizeMiB." });
    }
  });
  return found;
}

/** The API version a canonical topology needs: '1.0' when it uses a 1.0-only feature, else '2.0'. */
export function topologyApiVersion(t: TopologyResource): ApiVersion {
  return findApiV1Features(t.properties).length > 0 ? '1.0' : '2.0';
}

function rejectV1Features(properties: unknown): void {
  const first = findApiV1Features(properties)[0];
  if (first) throw moduleValidationError(first.message, first.target);
}

// ------------------------------------------------------------------------------------------------
// Topology
// ------------------------------------------------------------------------------------------------

/** Validates a GraphTopologySet payload; returns the canonical resource (no systemData) and its API version. */
export function parseTopologySet(payload: unknown, ctx: ValidationContext): { topology: TopologyResource; apiVersion: ApiVersion } {
  const apiVersion = validateApiVersion(payload);
  const normalized = normalizer.normalize(payload, SchemaIds.topology['1.0']) as Record<string, unknown>;
  if (apiVersion === '2.0') rejectV1Features(normalized.properties);
  assertMatchesSchema(normalized, SchemaIds.topology[apiVersion]);

  const topology: TopologyResource = {
    name: normalized.name as string,
    properties: normalized.properties as TopologyProperties,
  };
  checkParameterDeclarations(topology.properties.parameters);
  validateGraph(topology.properties);
  checkParameterReferences(topology.properties);
  buildNodeConfigs(topology.properties, { allowUnsecuredEndpoints: ctx.allowUnsecuredEndpoints, mode: 'topology', apiVersion });
  return { topology, apiVersion };
}

export function validateTopologySet(payload: unknown, ctx: ValidationContext): TopologyResource {
  return parseTopologySet(payload, ctx).topology;
}

function checkParameterDeclarations(decls: ParameterDeclaration[]): void {
  const seen = new Set<string>();
  decls.forEach((d, i) => {
    const target = `$.Properties.Parameters[${i}]`;
    if (seen.has(d.name)) {
      const message = `Parameter '${d.name}' is declared more than once.`;
      throw invalidResource(message, [{ code: 'ParameterDeclarationDuplicate', message, target }]);
    }
    seen.add(d.name);
    if (d.default !== undefined) {
      const parsed = parseParameterValue(d.type, d.default);
      if (!parsed.ok) {
        const message = `The default of parameter '${d.name}' is not a valid ${d.type}: ${parsed.reason}.`;
        throw invalidResource(message, [{ code: 'ParameterValueInvalid', message, target }]);
      }
    }
  });
}

/** Every `${x}` in a node value must be a declared parameter or a System variable. */
function checkParameterReferences(props: TopologyProperties): void {
  const declared = new Set(props.parameters.map((p) => p.name));
  const visit = (value: unknown, path: PathSegment[]): void => {
    if (typeof value === 'string') {
      for (const name of scanTokens(value)) {
        if (declared.has(name) || isSystemVariable(name)) continue;
        const target = formatTarget(path);
        const message = name.startsWith('System.')
          ? `Unknown system variable '\${${name}}' in ${target}; known: ${Object.values(SystemVariables).join(', ')}.`
          : `Parameter '\${${name.length > 64 ? `${name.slice(0, 64)}…` : name}}' used in ${target} is not declared in the topology's parameters.`;
        throw invalidResource(message, [{ code: 'ParameterNotDeclared', message, target }]);
      }
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => visit(v, [...path, i]));
    } else if (isPlainObject(value)) {
      for (const [k, v] of Object.entries(value)) visit(v, [...path, k]);
    }
  };
  visit(props.sources, ['properties', 'sources']);
  visit(props.processors, ['properties', 'processors']);
  visit(props.sinks, ['properties', 'sinks']);
}

// ------------------------------------------------------------------------------------------------
// Graph shape (lva-spec §2.5)
// ------------------------------------------------------------------------------------------------

const T = NodeTypes;
const TRIGGER_TYPES: ReadonlySet<string> = new Set([T.MotionDetection, T.IoTHubMessageSource, ...ExtensionTypes]);

function validateGraph(props: TopologyProperties): void {
  const entries = listNodes(props);
  const fail = (message: string, e: NodeEntry): never => {
    throw graphValidationError(`Node '${e.node.name}' (${e.target}): ${message}`, e.target);
  };
  if (props.sources.length === 0) throw graphValidationError('A topology needs at least one source.', '$.Properties.Sources');
  if (props.sinks.length === 0) throw graphValidationError('A topology needs at least one sink.', '$.Properties.Sinks');

  const byName = new Map<string, NodeEntry>();
  for (const e of entries) {
    if (byName.has(e.node.name)) fail(`the name '${e.node.name}' is already used by ${byName.get(e.node.name)!.target}; node names must be unique.`, e);
    byName.set(e.node.name, e);
  }

  for (const e of entries) {
    const inputs = e.node.inputs ?? [];
    if (e.role === 'source') {
      if (inputs.length > 0) fail('sources cannot have inputs.', e);
      continue;
    }
    if (inputs.length === 0) fail(`${e.role === 'sink' ? 'sinks' : 'processors'} need at least one input.`, e);
    const seen = new Set<string>();
    for (const input of inputs) {
      if (!byName.has(input.nodeName)) fail(`input '${input.nodeName}' does not name a node of this topology.`, e);
      if (input.nodeName === e.node.name) fail('a node cannot be its own input.', e);
      if (byName.get(input.nodeName)!.role === 'sink') fail(`input '${input.nodeName}' is a sink; sinks have no outputs.`, e);
      if (seen.has(input.nodeName)) fail(`input '${input.nodeName}' is listed more than once.`, e);
      seen.add(input.nodeName);
    }
  }

  checkAcyclic(entries, byName, fail);
  checkConnected(entries, fail);

  const rtspSources = entries.filter((e) => e.node['@type'] === T.RtspSource);
  if (rtspSources.length > 1) fail('a topology can have at most one RTSP source.', rtspSources[1]!);
  for (const sinkType of [T.FileSink, T.AssetSink]) {
    const sinks = entries.filter((e) => e.node['@type'] === sinkType);
    if (sinks.length > 1) fail(`a topology can have at most one ${sinkType}.`, sinks[1]!);
  }

  const typeOf = (name: string) => byName.get(name)!.node['@type'];
  for (const e of entries) {
    const inputTypes = (e.node.inputs ?? []).map((i) => typeOf(i.nodeName));
    const type = e.node['@type'];
    if (type === T.IoTHubMessageSink && inputTypes.includes(T.IoTHubMessageSource)) {
      fail('an IoT Hub message sink cannot be directly downstream of an IoT Hub message source.', e);
    }
    if (type !== T.SignalGate && inputTypes.includes(T.IoTHubMessageSource)) {
      fail('an IoT Hub message source can only feed signal gates (as a trigger).', e);
    }
    switch (type) {
      case T.MotionDetection:
        if (inputTypes.some((t) => t !== T.RtspSource)) fail('a motion detector must be immediately downstream of the RTSP source.', e);
        break;
      case T.FrameRateFilter:
        if (inputTypes.some((t) => t !== T.RtspSource && t !== T.MotionDetection)) {
          fail('a frame rate filter must be immediately downstream of the RTSP source or a motion detector.', e);
        }
        break;
      case T.SignalGate: {
        const media = inputTypes.filter((t) => t === T.RtspSource).length;
        if (media !== 1) fail('a signal gate needs exactly one media input directly from the RTSP source.', e);
        const triggers = inputTypes.filter((t) => t !== T.RtspSource);
        if (triggers.length === 0) fail('a signal gate needs at least one trigger input (motion detector, extension or IoT Hub message source).', e);
        if (triggers.some((t) => !TRIGGER_TYPES.has(t))) {
          fail('signal gate triggers must come from a motion detector, an extension or an IoT Hub message source.', e);
        }
        break;
      }
      case T.AssetSink:
        if (inputTypes.some((t) => t !== T.RtspSource && t !== T.SignalGate)) {
          fail('an asset sink must be immediately downstream of the RTSP source or a signal gate.', e);
        }
        break;
      case T.FileSink:
        if (inputTypes.some((t) => t !== T.SignalGate)) fail('a file sink must be immediately downstream of a signal gate.', e);
        break;
      default:
        break;
    }
  }
}

type Fail = (message: string, e: NodeEntry) => never;

function checkAcyclic(entries: NodeEntry[], byName: Map<string, NodeEntry>, fail: Fail): void {
  // Iterative DFS over "input" edges; grey = on the current path.
  const colour = new Map<string, 'grey' | 'black'>();
  for (const start of entries) {
    if (colour.has(start.node.name)) continue;
    const stack: Array<{ name: string; next: number }> = [{ name: start.node.name, next: 0 }];
    colour.set(start.node.name, 'grey');
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const inputs = byName.get(top.name)!.node.inputs ?? [];
      if (top.next >= inputs.length) {
        colour.set(top.name, 'black');
        stack.pop();
        continue;
      }
      const dep = inputs[top.next++]!.nodeName;
      const c = colour.get(dep);
      if (c === 'grey') fail(`the graph has a cycle through '${dep}'; topologies must be acyclic.`, byName.get(top.name)!);
      if (c === undefined) {
        colour.set(dep, 'grey');
        stack.push({ name: dep, next: 0 });
      }
    }
  }
}

function checkConnected(entries: NodeEntry[], fail: Fail): void {
  const neighbours = new Map<string, string[]>(entries.map((e) => [e.node.name, []]));
  for (const e of entries) {
    for (const i of e.node.inputs ?? []) {
      neighbours.get(e.node.name)!.push(i.nodeName);
      neighbours.get(i.nodeName)!.push(e.node.name);
    }
  }
  const reached = new Set<string>([entries[0]!.node.name]);
  const queue = [entries[0]!.node.name];
  while (queue.length > 0) {
    for (const n of neighbours.get(queue.pop()!)!) {
      if (!reached.has(n)) {
        reached.add(n);
        queue.push(n);
      }
    }
  }
  const outside = entries.find((e) => !reached.has(e.node.name));
  if (outside) fail(`the node is not connected to '${entries[0]!.node.name}'; a topology must form one connected graph.`, outside);
}

// ------------------------------------------------------------------------------------------------
// Instance
// ------------------------------------------------------------------------------------------------

/** Validates a GraphInstanceSet payload's shape and names; the result is Inactive, without systemData. */
export function validateInstanceSet(payload: unknown): InstanceResource {
  validateApiVersion(payload);
  const normalized = normalizer.normalize(payload, SchemaIds.instance) as Record<string, unknown>;
  assertMatchesSchema(normalized, SchemaIds.instance);
  const props = normalized.properties as Record<string, unknown>;
  const parameters = props.parameters as InstanceResource['properties']['parameters'];
  const seen = new Set<string>();
  parameters.forEach((p, i) => {
    if (seen.has(p.name)) {
      const message = `Parameter '${p.name}' is given more than once.`;
      throw invalidResource(message, [{ code: 'ParameterValueDuplicate', message, target: `$.Properties.Parameters[${i}]` }]);
    }
    seen.add(p.name);
  });
  return {
    name: normalized.name as string,
    properties: {
      ...(typeof props.description === 'string' ? { description: props.description } : {}),
      topologyName: props.topologyName as string,
      parameters,
      state: 'Inactive',
    },
  };
}

/**
 * Binds an instance's values to a topology's declarations: only declared names, every parameter
 * without default supplied, values parse with their types. Returns name → text to substitute.
 */
export function bindParameters(topology: TopologyResource, instance: InstanceResource): Map<string, string> {
  const decls = new Map(topology.properties.parameters.map((d) => [d.name, d]));
  const values = new Map<string, string>();
  instance.properties.parameters.forEach((p, i) => {
    const target = `$.Properties.Parameters[${i}]`;
    const decl = decls.get(p.name);
    if (!decl) {
      const message = `Parameter '${p.name}' is not declared by graph topology '${topology.name}'.`;
      throw invalidResource(message, [{ code: 'ParameterNotDeclared', message, target }]);
    }
    if (p.value === undefined) return;
    const parsed = parseParameterValue(decl.type, p.value);
    if (!parsed.ok) {
      const message = `Parameter '${p.name}' must be a valid ${decl.type}: ${parsed.reason}.`;
      throw invalidResource(message, [{ code: 'ParameterValueInvalid', message, target }]);
    }
    values.set(p.name, parsed.text);
  });
  for (const decl of topology.properties.parameters) {
    if (values.has(decl.name)) continue;
    if (decl.default === undefined) {
      const message = `Parameter '${decl.name}' of graph topology '${topology.name}' has no default and needs a value.`;
      throw invalidResource(message, [{ code: 'ParameterValueMissing', message, target: '$.Properties.Parameters' }]);
    }
    // Defaults were type-checked when the topology was set; canonicalise them the same way.
    const parsed = parseParameterValue(decl.type, decl.default);
    values.set(decl.name, parsed.ok ? parsed.text : decl.default);
  }
  return values;
}

function substituteDeep(value: unknown, lookup: (name: string) => string | undefined): unknown {
  if (typeof value === 'string') return substituteTokens(value, lookup);
  if (Array.isArray(value)) return value.map((v) => substituteDeep(v, lookup));
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = substituteDeep(v, lookup);
    return out;
  }
  return value;
}

/**
 * Resolves an instance against its topology: parameters bound and substituted (plus
 * `${System.GraphTopologyName}` / `${System.GraphInstanceName}`), every value checked, typed configs built.
 * `apiVersion` is the version the topology was set with (default: what its content needs).
 */
export function resolveInstance(topology: TopologyResource, instance: InstanceResource, ctx: ValidationContext, apiVersion?: ApiVersion): ResolvedGraph {
  const version = apiVersion ?? topologyApiVersion(topology);
  if (instance.properties.topologyName !== topology.name) {
    const message = `Graph instance '${instance.name}' references topology '${instance.properties.topologyName}', not '${topology.name}'.`;
    throw invalidResource(message, [{ code: 'ModuleValidationError', message, target: '$.Properties.TopologyName' }]);
  }
  if (version === '2.0') rejectV1Features(topology.properties);
  const values = bindParameters(topology, instance);
  const systemNames = (name: string): string | undefined => {
    if (name === SystemVariables.GraphTopologyName) return topology.name;
    if (name === SystemVariables.GraphInstanceName) return instance.name;
    return undefined;
  };
  // Parameter values are not re-scanned for parameters, but the two name variables are expanded in
  // them too, so a value such as `cam-${System.GraphInstanceName}` works as it reads.
  const lookup = (name: string): string | undefined => {
    const value = values.get(name);
    return value === undefined ? systemNames(name) : substituteTokens(value, systemNames);
  };
  const substituted = {
    name: topology.name,
    properties: {
      ...topology.properties,
      sources: substituteDeep(topology.properties.sources, lookup),
      processors: substituteDeep(topology.properties.processors, lookup),
      sinks: substituteDeep(topology.properties.sinks, lookup),
    },
  };
  const normalized = normalizer.normalize(substituted, SchemaIds.topology['1.0']) as { properties: TopologyProperties };
  assertMatchesSchema(normalized, SchemaIds.topology[version], { resolved: true });
  const nodes = buildNodeConfigs(normalized.properties, { allowUnsecuredEndpoints: ctx.allowUnsecuredEndpoints, mode: 'resolved', apiVersion: version });
  return { topologyName: topology.name, instanceName: instance.name, apiVersion: version, nodes };
}

// ------------------------------------------------------------------------------------------------
// Topology update (lva-spec §1.4)
// ------------------------------------------------------------------------------------------------

/** Throws 409 when `newT` would break an instance of `oldT` (see the decisions above). */
export function checkTopologyUpdate(oldT: TopologyResource, newT: TopologyResource, instances: InstanceResource[]): void {
  const users = instances.filter((i) => i.properties.topologyName === oldT.name);
  const busy = users.find((i) => i.properties.state !== 'Inactive');
  if (busy) {
    throw conflict('OperationNotAllowedInState', `Graph topology '${oldT.name}' cannot be updated while graph instance '${busy.name}' is ${busy.properties.state}.`);
  }
  const oldNames = new Set(oldT.properties.parameters.map((p) => p.name));
  for (const instance of users) {
    try {
      bindParameters(newT, instance);
    } catch (err) {
      if (!(err instanceof LvaError)) throw err;
      const added = newT.properties.parameters.find((p) => !oldNames.has(p.name) && p.default === undefined);
      const reason = added
        ? `new parameter '${added.name}' has no default`
        : err.message.replace(/\.$/, '');
      throw conflict('GraphTopologyInUse', `Graph topology '${oldT.name}' cannot be updated: graph instance '${instance.name}' would no longer be valid (${reason}).`);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Redaction (lva-spec §1.3)
// ------------------------------------------------------------------------------------------------

const SECRET_PROPERTIES = secretPropertyNames(SchemaIds.topology['2.0']);

function withoutSecrets(value: unknown): unknown {
  // A password can also hide in a URL's userinfo (rtsp://user:pass@camera): masked in every string.
  if (typeof value === 'string') return redactUserinfo(value);
  if (Array.isArray(value)) return value.map(withoutSecrets);
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (!SECRET_PROPERTIES.has(k)) out[k] = withoutSecrets(v);
  return out;
}

/** A deep copy without credential secrets and without the defaults of SecretString parameters. */
export function redactTopology(t: TopologyResource): TopologyResource {
  const copy = structuredClone(t);
  copy.properties.parameters = copy.properties.parameters.map((p) => {
    if (p.type !== 'SecretString' || p.default === undefined) return typeof p.default === 'string' ? { ...p, default: redactUserinfo(p.default) } : p;
    const { default: _secret, ...rest } = p;
    return rest;
  });
  copy.properties.sources = withoutSecrets(copy.properties.sources) as NodeSpec[];
  copy.properties.processors = withoutSecrets(copy.properties.processors) as NodeSpec[];
  copy.properties.sinks = withoutSecrets(copy.properties.sinks) as NodeSpec[];
  return copy;
}

/** A deep copy without the values of the topology's SecretString parameters. */
export function redactInstance(i: InstanceResource, t?: TopologyResource): InstanceResource {
  const copy = structuredClone(i);
  const secret = new Set((t?.properties.parameters ?? []).filter((p) => p.type === 'SecretString').map((p) => p.name));
  copy.properties.parameters = copy.properties.parameters.map((p) => (secret.has(p.name)
    ? { name: p.name }
    : typeof p.value === 'string' ? { ...p, value: redactUserinfo(p.value) } : p));
  return copy;
}
