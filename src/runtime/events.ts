import { EventEmitter } from 'node:events';

/**
 * LVA events (lva-spec §4) in the one line format every outlet shares (interfaces.md "Event lines"):
 * IoT Edge outputs, the SSE stream and replay's events.jsonl.
 */

export type EventClass = 'Analytics' | 'Diagnostics' | 'Operational';

export interface ApplicationProperties {
  topic: string;
  subject: string;
  eventType: string;
  eventTime: string;
  dataVersion: '1.0';
}

export interface EventLine {
  output: string | null;
  applicationProperties: ApplicationProperties;
  body: Record<string, unknown>;
}

export interface PublishRequest {
  eventClass: EventClass;
  /** Short name, e.g. `RecordingStarted`, `Inference`, `MediaSessionEstablished`. */
  name: string;
  /** `/graphInstances/{instance}` or `/graphInstances/{instance}/{sources|processors|sinks}/{node}`. */
  subject: string;
  body: Record<string, unknown>;
  /** ISO 8601 with milliseconds; defaults to the publisher's clock. */
  eventTime?: string;
  /** For Analytics events: the IoT Hub message sink's hubOutputName. */
  output?: string;
  /** Module-level events use the `Microsoft.Media.Edge` namespace (e.g. RuntimeError). */
  namespace?: 'Graph' | 'Edge';
}

export interface OutputNames {
  topic: string;
  diagnosticsEventsOutputName?: string;
  operationalEventsOutputName?: string;
}

/** Fan-out of event lines to every outlet. Outlets never throw into the publisher. */
export class EventBus {
  private readonly emitter = new EventEmitter();
  private published = 0;

  constructor(private outputs: () => OutputNames, private readonly clock: () => Date = () => new Date()) {
    this.emitter.setMaxListeners(0);
  }

  publish(req: PublishRequest): EventLine {
    const o = this.outputs();
    const output = req.eventClass === 'Analytics' ? (req.output ?? null)
      : req.eventClass === 'Diagnostics' ? (o.diagnosticsEventsOutputName ?? null)
        : (o.operationalEventsOutputName ?? null);
    const line: EventLine = {
      output,
      applicationProperties: {
        topic: o.topic,
        subject: req.subject,
        eventType: `Microsoft.Media.${req.namespace ?? 'Graph'}.${req.eventClass}.${req.name}`,
        eventTime: req.eventTime ?? this.clock().toISOString(),
        dataVersion: '1.0',
      },
      body: req.body,
    };
    this.published++;
    for (const l of this.emitter.listeners('event')) {
      try {
        (l as (e: EventLine) => void)(line);
      } catch {
        // An outlet's failure must not stop the graph or the other outlets.
      }
    }
    return line;
  }

  subscribe(fn: (e: EventLine) => void): () => void {
    this.emitter.on('event', fn);
    return () => this.emitter.off('event', fn);
  }

  get count(): number {
    return this.published;
  }
}

/** Renders a 90 kHz epoch timestamp as LVA's eventTime (ISO 8601 UTC with milliseconds). */
export function ticksToIso(ticks90k: number): string {
  return new Date(Math.round(ticks90k / 90)).toISOString();
}
