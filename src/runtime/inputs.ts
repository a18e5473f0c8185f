/**
 * Messages arriving on module inputs (IoT Edge `inputMessage`, or `POST /v1/inputs/{name}` locally)
 * are routed to the IoT Hub message source nodes that listen on that `hubInputName`.
 */
export interface InputMessage {
  inputName: string;
  body: unknown;
  applicationProperties: Record<string, string>;
  /** Wall-clock arrival time. */
  receivedAt: Date;
}

export class InputRouter {
  private readonly handlers = new Map<string, Set<(m: InputMessage) => void>>();

  listen(inputName: string, fn: (m: InputMessage) => void): () => void {
    let set = this.handlers.get(inputName);
    if (!set) this.handlers.set(inputName, (set = new Set()));
    set.add(fn);
    return () => {
      set!.delete(fn);
      if (set!.size === 0) this.handlers.delete(inputName);
    };
  }

  /** Returns how many nodes received the message (0 = nobody listens on that input). */
  deliver(m: InputMessage): number {
    const set = this.handlers.get(m.inputName);
    if (!set) return 0;
    for (const fn of set) {
      try {
        fn(m);
      } catch {
        // A node's failure to take a message must not affect other listeners.
      }
    }
    return set.size;
  }
}
