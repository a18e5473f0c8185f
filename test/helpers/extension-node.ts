import type { ExtensionConfig } from '../../src/graph/model.js';
import { NodeTypes } from '../../src/graph/model.js';
import type { Item, NodeContext } from '../../src/nodes/node.js';
import { HttpExtensionNode } from '../../src/nodes/processors/http-extension.js';
import { imageRequestKey } from '../../src/nodes/node.js';
import type { EncodedImage, Frame } from '../../src/media/sample.js';
import { MediaClock } from '../../src/runtime/media-clock.js';
import { resolveSettings } from '../../src/config/settings.js';

/**
 * An HttpExtensionNode outside a graph: the real node and client, its context recording what it
 * emits and publishes. For tests that drive many replies quickly (no ffmpeg, no runner).
 */
export interface DrivenExtension {
  node: HttpExtensionNode;
  emitted: Item[];
  published: Array<{ eventClass: string; name: string; body: Record<string, unknown> }>;
  frame(pts90k: number, image?: EncodedImage): Promise<void> | void;
}

export function driveExtension(config: Partial<ExtensionConfig> & { url: string }, opts: { replay?: boolean } = {}): DrivenExtension {
  const full: ExtensionConfig = {
    type: NodeTypes.HttpExtension, name: 'ext',
    endpoint: config.endpoint ?? { url: config.url },
    image: config.image ?? { format: { encoding: 'Jpeg' } },
    samplingOptions: config.samplingOptions ?? { skipSamplesWithoutAnnotation: false },
  };
  const emitted: Item[] = [];
  const published: DrivenExtension['published'] = [];
  const silent = { warn() {}, info() {}, debug() {}, error() {}, child() { return silent; } };
  const ctx = {
    instanceName: 'i', topologyName: 't',
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
  const node = new HttpExtensionNode(full, ctx);
  const key = imageRequestKey(full.image);
  return {
    node, emitted, published,
    frame: (pts90k, image) => {
      const img: EncodedImage = image ?? { width: 2, height: 2, contentType: 'image/jpeg', content: { l: 0, t: 0, w: 1, h: 1 }, data: Buffer.from('jpeg') };
      const frame: Frame = { pts90k, width: 2, height: 2, format: 'none', data: new Uint8Array(0), images: new Map([[key, img]]) };
      return node.handle(0, { kind: 'frame', frame });
    },
  };
}
