import type { ExtensionConfig } from '../../src/graph/model.js';
import { NodeTypes } from '../../src/graph/model.js';
import type { Item, NodeContext } from '../../src/nodes/node.js';
import { GrpcExtensionNode } from '../../src/nodes/processors/grpc-extension.js';
import { imageRequestKey } from '../../src/nodes/node.js';
import type { EncodedImage, Frame } from '../../src/media/sample.js';
import { MediaClock } from '../../src/runtime/media-clock.js';
import { resolveSettings } from '../../src/config/settings.js';

/**
 * A GrpcExtensionNode outside a graph: the real node, client and session, its context recording what
 * it emits and publishes. For failure tests that need no ffmpeg (servers down, garbage, timeouts).
 * Replay semantics by default: `frame()` resolves when the answer (or failure) has been handled.
 */
export interface DrivenGrpcExtension {
  node: GrpcExtensionNode;
  emitted: Item[];
  published: Array<{ eventClass: string; name: string; body: Record<string, unknown> }>;
  frame(pts90k: number, image?: EncodedImage): Promise<void> | void;
}

/** A w×h 24-bit bottom-up BMP, gray with a red square in the middle. */
export function redSquareBmp(w = 32, h = 32): EncodedImage {
  const stride = Math.ceil((w * 3) / 4) * 4;
  const b = Buffer.alloc(54 + stride * h);
  b.write('BM', 0, 'latin1');
  b.writeUInt32LE(b.length, 2);
  b.writeUInt32LE(54, 10);
  b.writeUInt32LE(40, 14);
  b.writeInt32LE(w, 18);
  b.writeInt32LE(h, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(24, 28);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const inside = x >= w / 4 && x < (3 * w) / 4 && y >= h / 4 && y < (3 * h) / 4;
      const o = 54 + (h - 1 - y) * stride + x * 3;
      b[o] = inside ? 0 : 128; // B
      b[o + 1] = inside ? 0 : 128; // G
      b[o + 2] = inside ? 230 : 128; // R
    }
  }
  return { width: w, height: h, contentType: 'image/bmp', content: { l: 0, t: 0, w: 1, h: 1 }, data: b };
}

export function driveGrpcExtension(
  config: Partial<ExtensionConfig> & { url: string },
  opts: { replay?: boolean; shmDir?: string } = {},
): DrivenGrpcExtension {
  const full: ExtensionConfig = {
    type: NodeTypes.GrpcExtension, name: 'grpcExt',
    endpoint: config.endpoint ?? { url: config.url },
    image: config.image ?? { format: { encoding: 'Bmp' } },
    samplingOptions: config.samplingOptions ?? { skipSamplesWithoutAnnotation: false },
    ...(config.dataTransfer ? { dataTransfer: config.dataTransfer } : {}),
    ...(config.extensionConfiguration !== undefined ? { extensionConfiguration: config.extensionConfiguration } : {}),
  };
  const emitted: Item[] = [];
  const published: DrivenGrpcExtension['published'] = [];
  const silent = { warn() {}, info() {}, debug() {}, error() {}, child() { return silent; } };
  const ctx = {
    instanceName: 'inst', topologyName: 't',
    node: { config: full, inputs: [{ nodeName: 'src' }], role: 'processor', target: '' },
    log: silent,
    clock: new MediaClock(Date.now, 0),
    settings: resolveSettings({ allowUnsecuredEndpoints: true }),
    inputs: {},
    upstreamType: () => NodeTypes.RtspSource,
    wantsAudio: false,
    backlog: () => 0,
    replayInput: opts.replay === false ? undefined : { path: '/dev/null', realtime: false },
    publish: (eventClass: string, name: string, body: Record<string, unknown>) => published.push({ eventClass, name, body }),
    publishAs: () => {},
    emit: (item: Item) => emitted.push(item),
    fail: () => {},
  } as unknown as NodeContext;
  const node = new GrpcExtensionNode(full, ctx, opts.shmDir ? { shmDir: opts.shmDir } : {});
  const key = imageRequestKey(full.image);
  return {
    node, emitted, published,
    frame: (pts90k, image) => {
      const img = image ?? redSquareBmp();
      const frame: Frame = { pts90k, width: img.width, height: img.height, format: 'none', data: new Uint8Array(0), images: new Map([[key, img]]) };
      return node.handle(0, { kind: 'frame', frame });
    },
  };
}
