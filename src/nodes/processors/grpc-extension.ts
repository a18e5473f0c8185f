import { NodeTypes, type ExtensionConfig } from '../../graph/model.js';
import type { EncodedImage, Frame } from '../../media/sample.js';
import { DEFAULT_GRPC_TIMEOUT_MS, GrpcExtensionClient } from '../../extension/grpc/client.js';
import type { ExtensionOutcome } from '../../extension/reply.js';
import type { Inference, NodeContext, NodeFactory } from '../node.js';
import { ExtensionNode } from './extension-node.js';
import { extensionFactoryParts } from './http-extension.js';

/**
 * `#Microsoft.Media.MediaGraphGrpcExtension` (lva-spec §2.3, §5.3): the pictures the source's ffmpeg
 * made for it (scale + format of `image`) go over one ProcessMediaStream session, embedded in the
 * messages or through a /dev/shm file (dataTransfer), with the inferences upstream nodes attached
 * (so a second extension sees what the first found); the extensionConfiguration string travels in
 * the session's descriptor. Sampling, one-in-flight, watermarks, results and diagnostics are the
 * HTTP extension's (extension-node.ts); the session, reconnection with back-off and shared memory
 * are extension/grpc/client.ts.
 */

function timeoutMs(): number {
  const v = Number(process.env.LVA_GRPC_EXTENSION_TIMEOUT_MS);
  return Number.isInteger(v) && v > 0 ? v : DEFAULT_GRPC_TIMEOUT_MS;
}

export class GrpcExtensionNode extends ExtensionNode {
  readonly client: GrpcExtensionClient;
  protected readonly displayUrl: string;
  protected readonly protocolName = 'grpc' as const;

  constructor(config: ExtensionConfig, ctx: NodeContext, opts: { shmDir?: string } = {}) {
    super(config, ctx);
    const shm = config.dataTransfer?.mode === 'SharedMemory' ? (config.dataTransfer.sharedMemorySizeMiB ?? 64) * 1024 * 1024 : undefined;
    this.client = new GrpcExtensionClient({
      endpoint: config.endpoint,
      graphInstanceName: ctx.instanceName,
      graphNodeName: config.name,
      ...(config.extensionConfiguration !== undefined ? { extensionConfiguration: config.extensionConfiguration } : {}),
      ...(shm !== undefined ? { sharedMemoryBytes: shm } : {}),
      timeoutMs: timeoutMs(),
      ...(opts.shmDir ? { shmDir: opts.shmDir } : {}),
    });
    this.displayUrl = this.client.displayUrl;
  }

  override async start(): Promise<void> {
    if (!this.config.endpoint.tls && !this.ctx.settings.allowUnsecuredEndpoints) {
      throw new Error(`Node '${this.name}': unsecured endpoint ${this.displayUrl} is not allowed (allowUnsecuredEndpoints is false).`);
    }
  }

  protected send(frame: Frame, image: EncodedImage, upstream: Inference[] | undefined): Promise<ExtensionOutcome> {
    return this.client.process(image, this.ctx.clock.toEpoch90k(frame.pts90k), upstream);
  }

  override destroy(): void {
    this.client.close();
  }
}

export const grpcExtensionFactory: NodeFactory = {
  type: NodeTypes.GrpcExtension,
  ...extensionFactoryParts('A gRPC extension'),
  create: (node, ctx) => new GrpcExtensionNode(node.config as ExtensionConfig, ctx),
};
