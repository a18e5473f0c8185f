/**
 * Loads the JSON schemas in /schemas and compiles them with ajv. Two compilations of the topology
 * schemas exist: the lenient one accepts `${param}` tokens wherever a value may be parameterised
 * (topology time), the resolved one replaces the `paramRef` definition with a schema that never
 * matches, so the same enums/patterns are enforced on the substituted values (instance time).
 * Ajv errors are turned into LvaErrors with PascalCase targets here, in one place.
 */

import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { invalidResource, type LvaError } from '../api/errors.js';
import type { ApiVersion } from './model.js';
import { formatTarget, isPlainObject, Normalizer, pointerToPath, quote, SchemaSet, type JsonSchema, type PathSegment } from './normalize.js';

export const SchemaIds = {
  topology: { '1.0': 'topology-1.0.json', '2.0': 'topology-2.0.json' } as Record<ApiVersion, string>,
  instance: 'instance.json',
  twin: 'twin.json',
  inference: 'inference.json',
} as const;

function load(file: string): JsonSchema {
  // Resolves to <package>/schemas both from src/graph (tsx) and from dist/graph (build, rootDir src).
  return JSON.parse(readFileSync(new URL(`../../schemas/${file}`, import.meta.url), 'utf8')) as JsonSchema;
}

const raw = ['topology-2.0.json', 'topology-1.0.json', 'instance.json', 'twin.json', 'inference.json'].map(load);

/** The schemas as written; drives normalisation (keys, enums, defaults). */
export const schemaSet = new SchemaSet(raw);
export const normalizer = new Normalizer(schemaSet);

function withoutParamRefs(s: JsonSchema): JsonSchema {
  if (s.$id !== 'topology-2.0.json') return s;
  const copy = structuredClone(s) as { definitions: Record<string, unknown> };
  copy.definitions.paramRef = { not: {} };
  return copy as unknown as JsonSchema;
}

function makeAjv(schemas: JsonSchema[]): Ajv {
  const ajv = new Ajv({
    allErrors: false,
    discriminator: true,
    verbose: true,
    strictTypes: false,
    strictTuples: false,
    // The schemas are also the normaliser's input; `default` is applied there, not by ajv.
    useDefaults: false,
  });
  ajv.addKeyword({ keyword: 'x-secret', schemaType: 'boolean' });
  for (const s of schemas) ajv.addSchema(s as object);
  return ajv;
}

const lenientAjv = makeAjv(raw);
const resolvedAjv = makeAjv(raw.map(withoutParamRefs));

const compiled = new Map<string, ValidateFunction>();
function validator(id: string, resolved: boolean): ValidateFunction {
  const key = `${resolved ? 'resolved' : 'lenient'}:${id}`;
  let fn = compiled.get(key);
  if (!fn) {
    fn = (resolved ? resolvedAjv : lenientAjv).getSchema(id);
    if (!fn) throw new Error(`schema '${id}' is not registered`);
    compiled.set(key, fn);
  }
  return fn;
}

/**
 * Validates canonical JSON against a schema; throws 400 InvalidResource naming the first problem.
 * `resolved` selects the compilation that no longer accepts `${param}` tokens.
 */
export function assertMatchesSchema(value: unknown, id: string, options: { resolved?: boolean; basePath?: readonly PathSegment[] } = {}): void {
  const fn = validator(id, options.resolved ?? false);
  if (fn(value)) return;
  throw ajvErrorToLva(fn.errors ?? [], value, options.basePath ?? []);
}

/** The names of the properties marked `"x-secret": true` anywhere in a schema file. */
export function secretPropertyNames(id: string): Set<string> {
  const names = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (!isPlainObject(node)) return;
    if (isPlainObject(node.properties)) {
      for (const [name, p] of Object.entries(node.properties)) if (isPlainObject(p) && p['x-secret'] === true) names.add(name);
    }
    Object.values(node).forEach(visit);
  };
  visit(schemaSet.get(id));
  return names;
}

function valueAt(root: unknown, path: readonly PathSegment[]): unknown {
  let cur = root;
  for (const seg of path) cur = (cur as Record<string | number, unknown> | undefined)?.[seg];
  return cur;
}

function describeExpected(err: ErrorObject, anyOf: ErrorObject | undefined): string {
  const title = anyOf && isPlainObject(anyOf.parentSchema) ? anyOf.parentSchema.title : undefined;
  const ps = isPlainObject(err.parentSchema) ? err.parentSchema : {};
  const own = typeof ps.title === 'string' ? `${ps.title}${typeof ps.description === 'string' ? ` (${ps.description})` : ''}` : undefined;
  switch (err.keyword) {
    case 'enum':
      return `one of ${(err.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
    case 'const':
      return `${quote((err.params as { allowedValue: unknown }).allowedValue)}`;
    case 'type':
      return `a value of type ${(err.params as { type: string }).type}`;
    case 'pattern':
      return own ?? (typeof title === 'string' ? `a valid ${title}` : `text matching ${(err.params as { pattern: string }).pattern}`);
    case 'minLength':
      return 'a non-empty string';
    default:
      return typeof title === 'string' ? `a valid ${title}` : (err.message ?? 'a valid value');
  }
}

function ajvErrorToLva(errors: ErrorObject[], root: unknown, basePath: readonly PathSegment[]): LvaError {
  const first = errors[0];
  if (!first) return invalidResource('The resource is not valid.', [{ code: 'PropertyValueInvalid', message: 'The resource is not valid.' }]);
  const path = [...basePath, ...pointerToPath(first.instancePath)];
  if (first.keyword === 'required') {
    const missing = (first.params as { missingProperty: string }).missingProperty;
    const target = formatTarget([...path, missing]);
    const message = `Missing required property ${target}.`;
    return invalidResource(message, [{ code: 'PropertyRequired', message, target }]);
  }
  if (first.keyword === 'additionalProperties') {
    const extra = (first.params as { additionalProperty: string }).additionalProperty;
    const target = formatTarget([...path, extra]);
    const message = `Unknown property ${target}.`;
    return invalidResource(message, [{ code: 'PropertyNotAllowed', message, target }]);
  }
  const target = formatTarget(path);
  const anyOf = errors.find((e) => e.keyword === 'anyOf' && e.instancePath === first.instancePath);
  const value = valueAt(root, pointerToPath(first.instancePath));
  const message = `Invalid value ${quote(value)} for ${target}: expected ${describeExpected(first, anyOf)}.`;
  const code = first.keyword === 'pattern' ? 'PropertyValueInvalidPattern' : 'PropertyValueInvalid';
  return invalidResource(message, [{ code, message, target }]);
}
