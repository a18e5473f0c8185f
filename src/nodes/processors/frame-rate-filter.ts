import { NodeTypes, type FrameRateFilterConfig } from '../../graph/model.js';
import { RateLimiter } from '../../extension/sampling.js';
import { caps, kinds, MediaNode, type Item, type NodeContext, type NodeFactory } from '../node.js';

/**
 * `#Microsoft.Media.MediaGraphFrameRateFilterProcessor` (API 1.0, lva-spec §2.3): passes at most
 * `maximumFps` frames per second of media time to what follows (typically an HTTP extension). Its
 * rate also caps what the source's ffmpeg decodes and encodes for the consumers behind it
 * (NodeFactory.maxFps), so dropped frames mostly never get made. Events pass through unchanged;
 * a watermark follows every frame looked at.
 */
export class FrameRateFilterNode extends MediaNode<FrameRateFilterConfig> {
  private readonly limiter: RateLimiter;
  override readonly stats = { frames: 0, passed: 0 };

  constructor(config: FrameRateFilterConfig, ctx: NodeContext) {
    super(config, ctx);
    this.limiter = new RateLimiter(config.maximumFps);
  }

  handle(_pad: number, item: Item): void {
    switch (item.kind) {
      case 'frame':
        this.stats.frames++;
        if (this.limiter.take(item.frame.pts90k)) {
          this.stats.passed++;
          this.ctx.emit(item);
        }
        this.ctx.emit({ kind: 'watermark', pts90k: item.frame.pts90k });
        return;
      case 'event':
      case 'watermark':
        this.ctx.emit(item);
        return;
      default:
        return;
    }
  }
}

export const frameRateFilterFactory: NodeFactory = {
  type: NodeTypes.FrameRateFilter,
  outputCaps: (inputCaps) => (inputCaps.some((c) => c.has('events')) ? caps('frames', 'events') : caps('frames')),
  checkInputs: (inputCaps) => (inputCaps.some((c) => c.has('frames')) ? undefined : 'A frame-rate filter needs video frames from the RTSP source or a motion detector.'),
  accepts: () => kinds('frame', 'event', 'watermark', 'eos'),
  maxFps: (node) => (node.config as FrameRateFilterConfig).maximumFps,
  create: (node, ctx) => new FrameRateFilterNode(node.config as FrameRateFilterConfig, ctx),
};
