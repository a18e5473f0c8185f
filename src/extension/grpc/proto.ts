import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/**
 * Loads protos/*.proto (LVA's gRPC extension contract, lva-spec §5.3) once, for the client node and
 * the reference server alike. Field names stay snake_case as in the .proto (keepCase), 64-bit
 * integers become JS numbers (90 kHz timestamps and byte offsets stay far below 2^53), enums
 * travel as their names, and `oneofs` adds which member of each oneof is set.
 */

export const PROTO_PACKAGE = 'microsoft.azure.media.live_video_analytics.extensibility.grpc.v1';
const PROTO_DIR = fileURLToPath(new URL('../../../protos/', import.meta.url));

export type Encoding = 'BMP' | 'JPG' | 'PNG' | 'RAW';
export type PixelFormat = 'NONE' | 'YUV420P' | 'RGB565BE' | 'RGB565LE' | 'RGB555BE' | 'RGB555LE' | 'RGB24' | 'BGR24' | 'ARGB' | 'RGBA' | 'ABGR' | 'BGRA';

export interface PbRectangle { l?: number; t?: number; w?: number; h?: number }
export interface PbTag { value?: string; confidence?: number }
export interface PbAttribute { name?: string; value?: string; confidence?: number }
export interface PbInference {
  type?: 'AUTO' | 'CLASSIFICATION' | 'MOTION' | 'ENTITY' | 'TEXT' | 'EVENT' | 'OTHER' | number;
  subtype?: string;
  inference_id?: string;
  related_inferences?: string[];
  sequence_id?: string;
  classification?: { tag?: PbTag; attributes?: PbAttribute[] };
  motion?: { box?: PbRectangle };
  entity?: { tag?: PbTag; attributes?: PbAttribute[]; box?: PbRectangle; id?: string };
  text?: { value?: string; language?: string; start_timestamp?: number; end_timestamp?: number };
  event?: { name?: string; properties?: Record<string, string> };
  other?: { content_type?: string; content_bytes?: Buffer | Uint8Array };
  extensions?: Record<string, string>;
  /** Set by the loader on decode: which member of `value` is present. */
  value?: string;
}

export interface PbVideoFrameSampleFormat {
  encoding?: Encoding;
  pixel_format?: PixelFormat;
  dimensions?: { width?: number; height?: number };
  stride_bytes?: number;
}

export interface PbMediaStreamDescriptor {
  graph_identifier?: { media_services_arm_id?: string; graph_instance_name?: string; graph_node_name?: string };
  extension_identifier?: string;
  extension_configuration?: string;
  media_descriptor?: { timescale?: number; video_frame_sample_format?: PbVideoFrameSampleFormat };
  shared_memory_buffer_transfer_properties?: { handle_name?: string; length_bytes?: number };
  stream_identifier?: string;
  data_transfer_properties?: string;
}

export interface PbMediaSample {
  timestamp?: number;
  content_bytes?: { bytes?: Buffer | Uint8Array };
  content_reference?: { address_offset?: number; length_bytes?: number };
  inferences?: PbInference[];
  content?: string;
}

export interface PbMediaStreamMessage {
  sequence_number?: number;
  ack_sequence_number?: number;
  media_stream_descriptor?: PbMediaStreamDescriptor;
  media_sample?: PbMediaSample;
  /** Set by the loader on decode: 'media_stream_descriptor' | 'media_sample'. */
  payload?: string;
}

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: false,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

let loaded: { definition: protoLoader.PackageDefinition; service: grpc.ServiceDefinition; client: grpc.ServiceClientConstructor } | undefined;

function load() {
  if (!loaded) {
    const definition = protoLoader.loadSync(['extension.proto'], LOADER_OPTIONS);
    const pkg = grpc.loadPackageDefinition(definition) as unknown as Record<string, unknown>;
    let ns: any = pkg;
    for (const part of PROTO_PACKAGE.split('.')) ns = ns[part];
    const client = ns.MediaGraphExtension as grpc.ServiceClientConstructor;
    loaded = { definition, service: client.service, client };
  }
  return loaded;
}

/** The MediaGraphExtension service (for grpc.Server.addService). */
export function extensionService(): grpc.ServiceDefinition {
  return load().service;
}

/** The generated client class of MediaGraphExtension. */
export function extensionClientClass(): grpc.ServiceClientConstructor {
  return load().client;
}

/** MediaStreamMessage → protobuf bytes (what goes on the wire, framing aside). */
export function encodeMessage(m: PbMediaStreamMessage): Buffer {
  return load().service.ProcessMediaStream!.requestSerialize(m);
}

/** Protobuf bytes → MediaStreamMessage; throws on bytes that are not one. */
export function decodeMessage(b: Buffer): PbMediaStreamMessage {
  return load().service.ProcessMediaStream!.responseDeserialize(b) as PbMediaStreamMessage;
}
