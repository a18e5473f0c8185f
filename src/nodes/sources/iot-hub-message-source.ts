import { NodeTypes, type IoTHubMessageSourceConfig } from '../../graph/model.js';
import type { InputMessage } from '../../runtime/inputs.js';
import { caps, kinds, MediaNode, type Item, type NodeFactory } from '../node.js';

/**
 * `#Microsoft.Media.MediaGraphIoTHubMessageSource`: messages routed to module input `hubInputName`
 * become events inside the graph (typically signal-gate triggers). The `eventTime` application
 * property, when present and valid, places the event on the media timeline (the official trigger
 * sample copies it from the originating LVA event); otherwise the arrival time is used.
 */
export class IoTHubMessageSourceNode extends MediaNode<IoTHubMessageSourceConfig> {
  private unlisten?: () => void;
  private stopped = false;
  received = 0;

  override async start(): Promise<void> {
    this.unlisten = this.ctx.inputs.listen(this.config.hubInputName, (m) => this.onMessage(m));
  }

  private onMessage(m: InputMessage): void {
    if (this.stopped) return;
    this.received++;
    const eventTime = findProperty(m.applicationProperties, 'eventTime');
    let ms = eventTime !== undefined ? Date.parse(eventTime) : NaN;
    if (!Number.isFinite(ms)) ms = m.receivedAt.getTime();
    this.ctx.emit({
      kind: 'event',
      event: {
        pts90k: this.ctx.clock.wallToMedia(ms),
        message: { body: m.body, applicationProperties: m.applicationProperties },
        producer: { name: this.name, role: 'sources' },
      },
    });
  }

  handle(_pad: number, _item: Item): void {}

  override async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.unlisten?.();
    this.ctx.emit({ kind: 'eos' });
  }

  override destroy(): void {
    this.stopped = true;
    this.unlisten?.();
  }
}

function findProperty(props: Record<string, string>, name: string): string | undefined {
  for (const [k, v] of Object.entries(props)) if (k.toLowerCase() === name.toLowerCase()) return v;
  return undefined;
}

export const iotHubMessageSourceFactory: NodeFactory = {
  type: NodeTypes.IoTHubMessageSource,
  outputCaps: () => caps('events'),
  accepts: () => kinds(),
  create: (node, ctx) => new IoTHubMessageSourceNode(node.config as IoTHubMessageSourceConfig, ctx),
};
