/**
 * Lenient wire JSON → canonical JSON, driven by the JSON schemas in /schemas so that property lists,
 * enum spellings and defaults live in one place (lva-spec §1.1 "JSON leniency"):
 *  - property names are matched case-insensitively and rewritten to the schema's spelling
 *    (`LocalMediaCacheMaximumSizeMiB` → `localMediaCacheMaximumSizeMiB`);
 *  - string enum values are matched case-insensitively (`medium` → `Medium`, `tcp` → `Tcp`);
 *  - a JSON number or boolean where the schema only accepts strings becomes its string form
 *    (`"maximumFps": 10` → `"10"`), as the swagger types most scalars as strings;
 *  - `@type` discriminated unions (`oneOf` whose branches each fix `@type` with `const`) pick
 *    the branch by `@type`, itself matched case-insensitively;
 *  - a property whose value is `null` counts as absent (serialisers that write nulls are common);
 *  - absent properties with a schema `default` get a copy of it;
 *  - a property the schema does not know is rejected when the object has
 *    `additionalProperties: false`, naming its path (`$.Properties.Sources[0].Foo`).
 * Everything else (types, patterns, required properties) is left for ajv to report on the result.
 * The normaliser walks the schema, not the value, so its depth is bounded by the schema's depth,
 * and it only ever creates own properties (a `__proto__` key never touches a prototype).
 */

import { invalidResource } from '../api/errors.js';

export type JsonSchema = { readonly [keyword: string]: unknown };

/** A set of schemas addressed by `$id`, with `$ref` resolution (`#/definitions/x`, `other.json#/…`). */
export class SchemaSet {
  private readonly byId = new Map<string, JsonSchema>();

  constructor(schemas: readonly JsonSchema[]) {
    for (const s of schemas) {
      const id = s.$id;
      if (typeof id !== 'string') throw new Error('every schema in a SchemaSet needs an $id');
      this.byId.set(id, s);
    }
  }

  get(id: string): JsonSchema {
    const s = this.byId.get(id);
    if (!s) throw new Error(`unknown schema '${id}'`);
    return s;
  }

  ids(): string[] {
    return [...this.byId.keys()];
  }

  private readonly resolved = new Map<string, SchemaAt>();

  /** Resolves a `$ref` found in the schema with id `baseId`. */
  resolve(ref: string, baseId: string): SchemaAt {
    const key = `${baseId} ${ref}`;
    let hit = this.resolved.get(key);
    if (!hit) {
      hit = this.resolveUncached(ref, baseId);
      this.resolved.set(key, hit);
    }
    return hit;
  }

  private resolveUncached(ref: string, baseId: string): SchemaAt {
    const hash = ref.indexOf('#');
    const file = hash < 0 ? ref : ref.slice(0, hash);
    const pointer = hash < 0 ? '' : ref.slice(hash + 1);
    const id = file === '' ? baseId : file;
    let node: unknown = this.get(id);
    for (const raw of pointer.split('/').slice(1)) {
      const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
      node = (node as Record<string, unknown> | undefined)?.[key];
    }
    if (!isPlainObject(node)) throw new Error(`unresolvable $ref '${ref}' in '${baseId}'`);
    return { schema: node, baseId: id };
  }
}

export interface SchemaAt {
  schema: JsonSchema;
  baseId: string;
}

/** A path into the request, kept as segments and printed with PascalCase names: `$.Properties.Sources[0]`. */
export type PathSegment = string | number;

export function formatTarget(path: readonly PathSegment[]): string {
  let out = '$';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += `.${seg.charAt(0).toUpperCase()}${seg.slice(1)}`;
  }
  return out;
}

/** Converts an ajv `instancePath` (JSON pointer) into our target notation. */
export function pointerToPath(pointer: string): PathSegment[] {
  if (pointer === '') return [];
  return pointer
    .split('/')
    .slice(1)
    .map((raw) => raw.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((seg) => (/^(0|[1-9]\d*)$/.test(seg) ? Number(seg) : seg));
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Assigns an own, enumerable property even for keys such as `__proto__`. */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  // Plain assignment is only unsafe for the one key with a setter on Object.prototype.
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

/** Shortens user-supplied text quoted in error messages. */
export function quote(v: unknown): string {
  let s: string;
  try {
    s = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  } catch {
    s = Object.prototype.toString.call(v);
  }
  return `'${s.length > 60 ? `${s.slice(0, 60)}…` : s}'`;
}

interface ScalarInfo {
  acceptsString: boolean;
  acceptsNumber: boolean;
  acceptsBoolean: boolean;
  /** lower-case spelling → canonical spelling */
  enumByLower: Map<string, string>;
}

export class Normalizer {
  private readonly scalarCache = new WeakMap<JsonSchema, ScalarInfo>();
  private readonly keyCache = new WeakMap<JsonSchema, Map<string, string>>();
  private readonly branchCache = new WeakMap<JsonSchema, Map<string, SchemaAt> | null>();

  constructor(readonly schemas: SchemaSet) {}

  /** Normalises `value` against the schema with id `rootId`; `basePath` prefixes error targets. */
  normalize(value: unknown, rootId: string, basePath: readonly PathSegment[] = []): unknown {
    return this.walk(value, { schema: this.schemas.get(rootId), baseId: rootId }, [...basePath]);
  }

  /** Follows `$ref`s; a `default` next to a `$ref` wins over one in the target. */
  private deref(at: SchemaAt): { at: SchemaAt; defaultValue: unknown } {
    let cur = at;
    let defaultValue: unknown;
    for (let hops = 0; typeof cur.schema.$ref === 'string'; hops++) {
      if (hops > 64) throw new Error('$ref cycle');
      if (defaultValue === undefined && 'default' in cur.schema) defaultValue = cur.schema.default;
      cur = this.schemas.resolve(cur.schema.$ref, cur.baseId);
    }
    if (defaultValue === undefined && 'default' in cur.schema) defaultValue = cur.schema.default;
    return { at: cur, defaultValue };
  }

  private walk(value: unknown, at: SchemaAt, path: PathSegment[]): unknown {
    const { at: resolved } = this.deref(at);
    const s = resolved.schema;

    const branches = this.discriminatedBranches(resolved);
    if (branches) {
      if (!isPlainObject(value)) return value;
      return this.walk(value, this.pickBranch(value, branches, path), path);
    }
    if (s.type === 'object' || isPlainObject(s.properties)) {
      return isPlainObject(value) ? this.walkObject(value, resolved, path) : value;
    }
    if (s.type === 'array' || s.items !== undefined) {
      if (!Array.isArray(value) || !isPlainObject(s.items)) return value;
      const items: SchemaAt = { schema: s.items, baseId: resolved.baseId };
      return value.map((item, i) => this.walk(item, items, [...path, i]));
    }
    return this.normalizeScalar(value, resolved);
  }

  private walkObject(value: Record<string, unknown>, at: SchemaAt, path: PathSegment[]): Record<string, unknown> {
    const s = at.schema;
    const props = (isPlainObject(s.properties) ? s.properties : {}) as Record<string, JsonSchema>;
    const keyByLower = this.keyMap(s, props);
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      const v = value[key];
      if (v === null || v === undefined) continue;
      const canonical = keyByLower.get(key.toLowerCase());
      if (canonical !== undefined) {
        if (Object.prototype.hasOwnProperty.call(out, canonical)) {
          throw propertyError('PropertyDuplicate', `Property '${canonical}' is given more than once (names are case-insensitive).`, [...path, canonical]);
        }
        setOwn(out, canonical, this.walk(v, { schema: props[canonical]!, baseId: at.baseId }, [...path, canonical]));
        continue;
      }
      const extra = s.additionalProperties;
      if (extra === false) {
        throw propertyError(
          'PropertyNotAllowed',
          `Unknown property '${truncate(key)}' at ${formatTarget(path)}; allowed: ${Object.keys(props).join(', ') || 'none'}.`,
          [...path, truncate(key)],
        );
      }
      setOwn(out, key, isPlainObject(extra) ? this.walk(v, { schema: extra, baseId: at.baseId }, [...path, key]) : v);
    }
    for (const [name, propSchema] of Object.entries(props)) {
      if (Object.prototype.hasOwnProperty.call(out, name)) continue;
      const { defaultValue } = this.deref({ schema: propSchema, baseId: at.baseId });
      if (defaultValue !== undefined) setOwn(out, name, structuredClone(defaultValue));
    }
    return out;
  }

  private keyMap(s: JsonSchema, props: Record<string, JsonSchema>): Map<string, string> {
    let m = this.keyCache.get(s);
    if (!m) {
      m = new Map(Object.keys(props).map((k) => [k.toLowerCase(), k]));
      this.keyCache.set(s, m);
    }
    return m;
  }

  /** For a `oneOf` whose every branch fixes `@type` with `const`: lower-case `@type` → branch. */
  private discriminatedBranches(at: SchemaAt): Map<string, SchemaAt> | null {
    const s = at.schema;
    if (!Array.isArray(s.oneOf)) return null;
    if (this.branchCache.has(s)) return this.branchCache.get(s)!;
    let map: Map<string, SchemaAt> | null = new Map();
    for (const branch of s.oneOf as JsonSchema[]) {
      const { at: b } = this.deref({ schema: branch, baseId: at.baseId });
      const tag = (b.schema.properties as Record<string, JsonSchema> | undefined)?.['@type']?.const;
      if (typeof tag !== 'string') {
        map = null;
        break;
      }
      map.set(tag.toLowerCase(), b);
    }
    this.branchCache.set(s, map);
    return map;
  }

  private pickBranch(value: Record<string, unknown>, branches: Map<string, SchemaAt>, path: PathSegment[]): SchemaAt {
    const typeKey = Object.keys(value).find((k) => k.toLowerCase() === '@type');
    const tag = typeKey === undefined ? undefined : value[typeKey];
    const allowed = [...branches.values()].map((b) => (b.schema.properties as Record<string, JsonSchema>)['@type']!.const as string);
    if (tag === undefined || tag === null) {
      throw propertyError('PropertyRequired', `Property '@type' is required at ${formatTarget(path)}; one of: ${allowed.join(', ')}.`, [...path, '@type']);
    }
    const branch = typeof tag === 'string' ? branches.get(tag.toLowerCase()) : undefined;
    if (!branch) {
      throw propertyError(
        'PropertyValueInvalid',
        `Unsupported @type ${quote(tag)} at ${formatTarget(path)}; expected one of: ${allowed.join(', ')}.`,
        [...path, '@type'],
      );
    }
    return branch;
  }

  private normalizeScalar(value: unknown, at: SchemaAt): unknown {
    const info = this.scalarInfo(at);
    if ((typeof value === 'number' && !info.acceptsNumber) || (typeof value === 'boolean' && !info.acceptsBoolean)) {
      if (info.acceptsString && (typeof value === 'boolean' || Number.isFinite(value))) value = String(value);
    }
    if (typeof value === 'string' && info.enumByLower.size > 0) {
      return info.enumByLower.get(value.toLowerCase()) ?? value;
    }
    return value;
  }

  private scalarInfo(at: SchemaAt): ScalarInfo {
    const cached = this.scalarCache.get(at.schema);
    if (cached) return cached;
    const info: ScalarInfo = { acceptsString: false, acceptsNumber: false, acceptsBoolean: false, enumByLower: new Map() };
    const visit = (cur: SchemaAt, depth: number): void => {
      if (depth > 16) return;
      const { at: r } = this.deref(cur);
      const s = r.schema;
      const types = Array.isArray(s.type) ? s.type : s.type === undefined ? [] : [s.type];
      if (types.includes('string')) info.acceptsString = true;
      if (types.includes('number') || types.includes('integer')) info.acceptsNumber = true;
      if (types.includes('boolean')) info.acceptsBoolean = true;
      const enums = Array.isArray(s.enum) ? s.enum : 'const' in s ? [s.const] : [];
      for (const e of enums) {
        if (typeof e !== 'string') continue;
        info.acceptsString = true;
        if (!info.enumByLower.has(e.toLowerCase())) info.enumByLower.set(e.toLowerCase(), e);
      }
      for (const kw of ['anyOf', 'oneOf']) {
        const list = s[kw];
        if (Array.isArray(list)) for (const b of list as JsonSchema[]) visit({ schema: b, baseId: r.baseId }, depth + 1);
      }
    };
    visit(at, 0);
    this.scalarCache.set(at.schema, info);
    return info;
  }
}

function truncate(key: string): string {
  return key.length > 64 ? `${key.slice(0, 64)}…` : key;
}

function propertyError(code: string, message: string, path: PathSegment[]) {
  return invalidResource(message, [{ code, message, target: formatTarget(path) }]);
}
