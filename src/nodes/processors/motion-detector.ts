import { NodeTypes, type MotionDetectionConfig } from '../../graph/model.js';
import { MotionDetector } from '../../media/motion.js';
import { MotionEventAggregator } from '../../media/motion-aggregator.js';
import { caps, kinds, MediaNode, type Inference, type Item, type NodeFactory } from '../node.js';

/**
 * `#Microsoft.Media.MediaGraphMotionDetectionProcessor` (lva-spec §2.3): analyses the source's small
 * gray frames with the pure MotionDetector, aggregates per `eventAggregationWindow` into LVA
 * Analytics.Inference bodies (`{type:'motion', motion:{box}}`), passes frames with motion downstream
 * annotated, and reports a watermark after every analysed frame so a signal gate knows how far
 * analysis has got.
 */

/**
 * Analysis resolution and rate. perf.md §3: decoding dominates and does not depend on the output size;
 * everything after it (scaling, the pipe, parsing, the detector) scales with frames analysed, so the
 * detector looks at up to 10 frames/s — onset latency stays ~0.1–0.2 s, far inside LVA's 1 s window.
 * Each analysed frame keeps the exact pts of the encoded sample it was decoded from.
 */
export const MOTION_FRAME = { width: 320, height: 180, fps: 10 } as const;

export class MotionDetectorNode extends MediaNode<MotionDetectionConfig> {
  private detector?: MotionDetector;
  private readonly aggregator = new MotionEventAggregator({
    windowMs: this.config.eventAggregationWindowMs,
    outputMotionRegion: this.config.outputMotionRegion,
  });
  override readonly stats = { frames: 0, motionFrames: 0, events: 0 };
  /** Start of the aggregation window still open (its event is not out yet), mirrored from the aggregator. */
  private pendingSince: number | null = null;

  handle(_pad: number, item: Item): void {
    if (item.kind === 'eos') {
      this.emitEvents(this.aggregator.flush());
      return;
    }
    if (item.kind !== 'frame') return;
    const f = item.frame;
    if (!this.detector) this.detector = new MotionDetector({ sensitivity: this.config.sensitivity, width: f.width, height: f.height });
    this.stats.frames++;
    const r = this.detector.process(f);
    const events = this.aggregator.add(f.pts90k, r.motion ? r.regions : []);
    this.emitEvents(events);
    if (this.config.eventAggregationWindowMs > 0) {
      if (events.length > 0) this.pendingSince = r.motion ? f.pts90k : null;
      else if (r.motion && this.pendingSince === null) this.pendingSince = f.pts90k;
    }
    if (r.motion) {
      this.stats.motionFrames++;
      const inferences: Inference[] = r.regions.map((box) => ({ type: 'motion', motion: { box } }));
      this.ctx.emit({ kind: 'frame', frame: f, inferences });
    }
    // While an aggregation window is open its event (dated at the window's start) is still to come:
    // hold the watermark just before that start so a gate does not release the media it is about.
    this.ctx.emit({ kind: 'watermark', pts90k: this.pendingSince === null ? f.pts90k : Math.min(f.pts90k, this.pendingSince - 1) });
  }

  private emitEvents(events: ReturnType<MotionEventAggregator['flush']>): void {
    for (const e of events) {
      this.stats.events++;
      this.ctx.emit({
        kind: 'event',
        event: { pts90k: e.timestamp90k, inferences: e.inferences as unknown as Inference[], producer: { name: this.name, role: 'processors' } },
      });
    }
  }
}

export const motionDetectorFactory: NodeFactory = {
  type: NodeTypes.MotionDetection,
  outputCaps: () => caps('frames', 'events'),
  checkInputs: (inputCaps) => (inputCaps.some((c) => c.has('frames')) ? undefined : 'A motion detector needs video from the RTSP source.'),
  accepts: () => kinds('frame', 'eos'),
  decode: () => ({ ...MOTION_FRAME }),
  create: (node, ctx) => new MotionDetectorNode(node.config as MotionDetectionConfig, ctx),
};
