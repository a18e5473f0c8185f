import type { Inference } from '../../nodes/node.js';
import type { PbAttribute, PbInference, PbRectangle, PbTag } from './proto.js';

/**
 * Protobuf Inference (inferencing.proto) ⇄ the JSON inference LVA publishes (lva-spec §5.2), pure.
 *
 * Protobuf floats are 32-bit: 0.3 arrives as 0.30000001…, so boxes and confidences are rounded to
 * 6 decimals (the JSON an HTTP extension would have sent). AUTO takes its type from whichever value
 * is set. Optional strings that are empty are left out (proto3 cannot tell "" from absent).
 */

const TYPE_NAMES: Record<string, string> = {
  CLASSIFICATION: 'classification', MOTION: 'motion', ENTITY: 'entity', TEXT: 'text', EVENT: 'event', OTHER: 'other',
};
const TYPE_NUMBERS: Record<number, string> = { 1: 'classification', 2: 'motion', 3: 'entity', 4: 'text', 5: 'event', 15: 'other' };
const VALUE_KEYS = ['classification', 'motion', 'entity', 'text', 'event', 'other'] as const;

const round6 = (v: number | undefined) => Math.round((v ?? 0) * 1e6) / 1e6;

function rect(r: PbRectangle | undefined) {
  return { l: round6(r?.l), t: round6(r?.t), w: round6(r?.w), h: round6(r?.h) };
}

function tag(t: PbTag | undefined) {
  return { value: t?.value ?? '', confidence: round6(t?.confidence) };
}

function attributes(a: PbAttribute[] | undefined) {
  return (a ?? []).map((x) => ({ name: x.name ?? '', value: x.value ?? '', confidence: round6(x.confidence) }));
}

/** The JSON type of a protobuf inference, or undefined when it carries no usable value. */
function jsonType(p: PbInference): string | undefined {
  const declared = typeof p.type === 'number' ? TYPE_NUMBERS[p.type] : p.type ? TYPE_NAMES[p.type] : undefined;
  if (declared && p[declared as (typeof VALUE_KEYS)[number]]) return declared;
  // AUTO (or a type that disagrees with the value): the value decides.
  return VALUE_KEYS.find((k) => p[k] !== undefined && p[k] !== null);
}

/** Protobuf → JSON; inferences without a value are dropped (counted by the caller via length). */
export function inferenceFromProto(p: PbInference): Inference | undefined {
  const type = jsonType(p);
  if (!type) return undefined;
  const out: Inference = { type };
  if (p.subtype) out.subtype = p.subtype;
  if (p.inference_id) out.inferenceId = p.inference_id;
  if (p.related_inferences && p.related_inferences.length > 0) out.relatedInferences = [...p.related_inferences];
  if (p.sequence_id) out.sequenceId = p.sequence_id;
  switch (type) {
    case 'classification': {
      const c = p.classification!;
      out.classification = { tag: tag(c.tag), ...(c.attributes?.length ? { attributes: attributes(c.attributes) } : {}) };
      break;
    }
    case 'motion':
      out.motion = { box: rect(p.motion!.box) };
      break;
    case 'entity': {
      const e = p.entity!;
      out.entity = { tag: tag(e.tag), ...(e.attributes?.length ? { attributes: attributes(e.attributes) } : {}), box: rect(e.box), ...(e.id ? { id: e.id } : {}) };
      break;
    }
    case 'text': {
      const t = p.text!;
      out.text = {
        value: t.value ?? '', ...(t.language ? { language: t.language } : {}),
        ...(t.start_timestamp ? { startTimestamp: Number(t.start_timestamp) } : {}), ...(t.end_timestamp ? { endTimestamp: Number(t.end_timestamp) } : {}),
      };
      break;
    }
    case 'event':
      out.event = { name: p.event!.name ?? '', properties: { ...(p.event!.properties ?? {}) } };
      break;
    case 'other':
      out.other = { contentType: p.other!.content_type ?? '', contentBytes: Buffer.from(p.other!.content_bytes ?? []).toString('base64') };
      break;
  }
  if (p.extensions && Object.keys(p.extensions).length > 0) out.extensions = { ...p.extensions };
  return out;
}

const PROTO_TYPES: Record<string, PbInference['type']> = {
  classification: 'CLASSIFICATION', motion: 'MOTION', entity: 'ENTITY', text: 'TEXT', event: 'EVENT', other: 'OTHER',
};

type Json = Record<string, any>;

/** JSON → protobuf (upstream inferences sent along with a sample; the reference server's answers).
 * A JSON inference of an unknown type travels as AUTO with no value. */
export function inferenceToProto(i: Inference): PbInference {
  const out: PbInference = { type: PROTO_TYPES[i.type] ?? 'AUTO' };
  const j = i as Json;
  if (typeof j.subtype === 'string') out.subtype = j.subtype;
  if (typeof j.inferenceId === 'string') out.inference_id = j.inferenceId;
  if (Array.isArray(j.relatedInferences)) out.related_inferences = j.relatedInferences.map(String);
  if (typeof j.sequenceId === 'string') out.sequence_id = j.sequenceId;
  if (j.extensions && typeof j.extensions === 'object') out.extensions = stringMap(j.extensions);
  const v = j[i.type] as Json | undefined;
  if (!v || typeof v !== 'object') return out;
  switch (i.type) {
    case 'classification':
      out.classification = { tag: v.tag, attributes: v.attributes ?? [] };
      break;
    case 'motion':
      out.motion = { box: v.box };
      break;
    case 'entity':
      out.entity = { tag: v.tag, attributes: v.attributes ?? [], box: v.box, ...(typeof v.id === 'string' ? { id: v.id } : {}) };
      break;
    case 'text':
      out.text = { value: v.value, language: v.language, start_timestamp: v.startTimestamp, end_timestamp: v.endTimestamp };
      break;
    case 'event':
      out.event = { name: v.name, properties: stringMap(v.properties ?? {}) };
      break;
    case 'other':
      out.other = { content_type: v.contentType, content_bytes: Buffer.from(String(v.contentBytes ?? ''), 'base64') };
      break;
  }
  return out;
}

function stringMap(o: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (o && typeof o === 'object') for (const [k, v] of Object.entries(o)) out[k] = String(v);
  return out;
}
