import { NodeTypes, type IoTHubMessageSinkConfig } from '../../graph/model.js';
import { ticksToIso } from '../../runtime/events.js';
import { kinds, MediaNode, caps, type Item, type NodeFactory } from '../node.js';

/**
 * `#Microsoft.Media.MediaGraphIoTHubMessageSink`: publishes the analytics events of its inputs on
 * module output `hubOutputName` as `Microsoft.Media.Graph.Analytics.Inference` (lva-spec §4.2–4.4).
 * The subject is the producing processor, not the sink; `timestamp` is the analysed frame's media
 * time in 90 kHz ticks since the Unix epoch and `eventTime` is the same instant.
 */
export class IoTHubMessageSinkNode extends MediaNode<IoTHubMessageSinkConfig> {
  published = 0;

  handle(_pad: number, item: Item): void {
    if (item.kind !== 'event' || !item.event.inferences || item.event.inferences.length === 0) return;
    const timestamp = this.ctx.clock.toEpoch90k(item.event.pts90k);
    const producer = item.event.producer;
    this.published++;
    this.ctx.publishAs(
      `/graphInstances/${this.ctx.instanceName}/${producer.role}/${producer.name}`,
      'Analytics', 'Inference',
      { timestamp, inferences: item.event.inferences },
      { eventTime: ticksToIso(timestamp), output: this.config.hubOutputName },
    );
  }
}

export const iotHubMessageSinkFactory: NodeFactory = {
  type: NodeTypes.IoTHubMessageSink,
  outputCaps: () => caps(),
  checkInputs: (inputCaps) =>
    inputCaps.some((c) => c.has('events')) ? undefined : 'An IoT Hub message sink needs an input that produces events (a motion detector or an extension).',
  accepts: () => kinds('event', 'eos'),
  create: (node, ctx) => new IoTHubMessageSinkNode(node.config as IoTHubMessageSinkConfig, ctx),
};
