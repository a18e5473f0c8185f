import { NodeTypes, type ExtensionConfig } from '../../graph/model.js';
import type { EncodedImage, Frame } from '../../media/sample.js';
import { HttpExtensionClient, DEFAULT_TIMEOUT_MS } from '../../extension/client.js';
import type { ExtensionOutcome } from '../../extension/reply.js';
import { caps, imageRequestKey, kinds, type NodeContext, type NodeFactory } from '../node.js';
import { ExtensionNode } from './extension-node.js';

/**
 * `#Microsoft.Media.MediaGraphHttpExtension` (lva-spec §2.3, §5.1): POSTs the image the source's
 * ffmpeg made for it (scale + format of `image`) for sampled frames, one request in flight. What it
 * shares with the gRPC extension (sampling, busy handling, watermarks, results, diagnostics) lives
 * in extension-node.ts; here: the HTTP client, 204 = nothing, 503 = back off for Retry-After, and
 * down/slow/garbage/401/403/TLS problems as diagnostics.
 */

function timeoutMs(): number {
  const v = Number(process.env.LVA_HTTP_EXTENSION_TIMEOUT_MS);
  return Number.isInteger(v) && v > 0 ? v : DEFAULT_TIMEOUT_MS;
}

export class HttpExtensionNode extends ExtensionNode {
  private readonly client: HttpExtensionClient;
  protected readonly displayUrl: string;
  protected readonly protocolName = 'http' as const;

  constructor(config: ExtensionConfig, ctx: NodeContext) {
    super(config, ctx);
    this.client = new HttpExtensionClient({ endpoint: config.endpoint, timeoutMs: timeoutMs() });
    this.displayUrl = this.client.displayUrl;
  }

  override async start(): Promise<void> {
    if (new URL(this.config.endpoint.url).protocol === 'http:' && !this.ctx.settings.allowUnsecuredEndpoints) {
      throw new Error(`Node '${this.name}': unsecured endpoint ${this.client.displayUrl} is not allowed (allowUnsecuredEndpoints is false).`);
    }
  }

  protected send(_frame: Frame, image: EncodedImage): Promise<ExtensionOutcome> {
    return this.client.post(image);
  }

  override destroy(): void {
    this.client.close();
  }
}

/** Factory parts both extension kinds share: frames in, frames and events out, one image request. */
export function extensionFactoryParts(kindName: string): Omit<NodeFactory, 'type' | 'create'> {
  return {
    outputCaps: () => caps('frames', 'events'),
    checkInputs: (inputCaps) => (inputCaps.some((c) => c.has('frames'))
      ? undefined
      : `${kindName} needs video frames (from the RTSP source, a motion detector, a frame-rate filter or another extension).`),
    accepts: () => kinds('frame', 'watermark', 'eos'),
    image: (node) => {
      const c = node.config as ExtensionConfig;
      return { key: imageRequestKey(c.image), ...(c.image.scale ? { scale: c.image.scale } : {}), format: c.image.format };
    },
    maxFps: (node) => (node.config as ExtensionConfig).samplingOptions.maximumSamplesPerSecond,
  };
}

export const httpExtensionFactory: NodeFactory = {
  type: NodeTypes.HttpExtension,
  ...extensionFactoryParts('An HTTP extension'),
  create: (node, ctx) => new HttpExtensionNode(node.config as ExtensionConfig, ctx),
};
